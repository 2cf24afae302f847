#!/usr/bin/env node
// A local stand-in for the notification providers: listens on 127.0.0.1 (NOTIFICATION_SINK_PORT, default 7079),
// checks each call's X-Signature (HMAC-SHA256 over "<X-Timestamp>.<body>" with NotificationDelivery__WebhookSecret,
// default the sample's), prints it, keeps it in .emulators/notification-sink.jsonl, and answers 200 (401 when the
// signature is wrong; SINK_STATUS=503 makes it answer that, to watch redeliveries). A repeated Idempotency-Key is
// answered 200 and marked "repeat", as a real provider drops it. Usage: node scripts/notification-sink.mjs
import { createServer } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const port = Number(process.env.NOTIFICATION_SINK_PORT || 7079);
const secret = process.env.NotificationDelivery__WebhookSecret || 'local-notification-sink-secret-NOT-A-SECRET-never-use-in-azure';
const forced = Number(process.env.SINK_STATUS || 0);
const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '.emulators');
mkdirSync(dir, { recursive: true });
const kept = join(dir, 'notification-sink.jsonl');
const seen = new Set();

createServer((req, res) => {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const timestamp = String(req.headers['x-timestamp'] || '');
    const expected = Buffer.from('sha256=' + createHmac('sha256', secret).update(timestamp + '.').update(body).digest('hex'));
    const given = Buffer.from(String(req.headers['x-signature'] || ''));
    const valid = given.length === expected.length && timingSafeEqual(given, expected);
    const key = String(req.headers['idempotency-key'] || '');
    const repeat = seen.has(key);
    if (valid && !forced) seen.add(key);
    const status = !valid ? 401 : forced || 200;
    const entry = { at: new Date().toISOString(), channel: req.url, idempotencyKey: key, signatureValid: valid, repeat, status, message: body.toString('utf8') };
    appendFileSync(kept, JSON.stringify(entry) + '\n');
    console.log(`${entry.at} ${req.method} ${req.url} key=${key} signature=${valid ? 'ok' : 'BAD'}${repeat ? ' (repeat)' : ''} -> ${status}\n  ${entry.message}`);
    res.writeHead(status).end();
  });
}).listen(port, '127.0.0.1', () => console.log(`Notification sink on http://127.0.0.1:${port}/ (kept in ${kept})`));
