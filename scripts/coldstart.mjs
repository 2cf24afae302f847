#!/usr/bin/env node
// Times process start → first HTTP 200, the way the Functions host meets a custom handler: started with
// FUNCTIONS_CUSTOMHANDLER_PORT set to a free loopback port, working directory = the app's folder, and its
// first request sent as soon as the port accepts connections. Driven by scripts/coldstart.sh.
//
// Usage: node scripts/coldstart.mjs [--runs N] --case NAME EXE PATH [--case ...]
//   The first case is the yardstick; every other case's median is reported as a ratio to it.
//   Cases alternate (A B C, A B C, ...) after one unmeasured warm-up run each (file cache, emulator).
//   COLDSTART_TOKEN, if set, is sent as a bearer token with every request.
import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const args = process.argv.slice(2);
let runs = 7;
const cases = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--runs") runs = Number(args[++i]);
  else if (args[i] === "--case") { cases.push({ name: args[i + 1], exe: args[i + 2], path: args[i + 3], ready: [], first: [] }); i += 3; }
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}
if (cases.length === 0 || !(runs >= 1)) {
  console.error("usage: node scripts/coldstart.mjs [--runs N] --case NAME EXE PATH [--case NAME EXE PATH ...]");
  process.exit(2);
}
const token = process.env.COLDSTART_TOKEN;
const logDir = process.env.COLDSTART_LOG_DIR ?? tmpdir();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// One GET; resolves { status, connectedAt } or rejects (connection refused while the app starts).
function get(port, path) {
  return new Promise((resolve, reject) => {
    let connectedAt;
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const req = request({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, connectedAt }));
      res.on("error", reject);
    });
    req.on("socket", (s) => s.once("connect", () => { connectedAt = performance.now(); }));
    req.on("error", reject);
    req.setTimeout(60_000, () => req.destroy(new Error("no answer within 60 s")));
    req.end();
  });
}

async function once(c, label) {
  const port = await freePort();
  const logFile = join(logDir, `coldstart-${c.name.replace(/\W+/g, "-")}-${label}.log`);
  const log = openSync(logFile, "w");
  const started = performance.now();
  const child = spawn(c.exe, [], {
    cwd: dirname(c.exe),
    env: { ...process.env, FUNCTIONS_CUSTOMHANDLER_PORT: String(port) },
    stdio: ["ignore", log, log],
  });
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  let gone = null;
  exited.then((e) => { gone = e; });
  try {
    for (;;) {
      if (gone) throw new Error(`${c.name} exited (${gone.code ?? gone.signal}) before answering; log: ${logFile}`);
      if (performance.now() - started > 60_000) throw new Error(`${c.name} did not answer within 60 s; log: ${logFile}`);
      let answer;
      try {
        answer = await get(port, c.path);
      } catch (e) {
        if (e.code === "ECONNREFUSED") { await sleep(2); continue; }
        throw e;
      }
      if (answer.status !== 200)
        throw new Error(`${c.name}: first answer to GET ${c.path} was ${answer.status}, not 200; log: ${logFile}`);
      return { ready: answer.connectedAt - started, first: performance.now() - started };
    }
  } finally {
    child.kill("SIGTERM");
    const stopped = await Promise.race([exited, sleep(10_000).then(() => null)]);
    if (!stopped) { child.kill("SIGKILL"); await exited; }
    closeSync(log);
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ms = (x) => x.toFixed(0).padStart(6);

for (const c of cases) await once(c, "warmup");
for (let r = 1; r <= runs; r++) {
  const line = [];
  for (const c of cases) {
    const t = await once(c, `run${r}`);
    c.ready.push(t.ready);
    c.first.push(t.first);
    line.push(`${c.name} ${t.first.toFixed(0)} ms`);
  }
  console.error(`run ${r}/${runs}: ${line.join(", ")}`);
}

const base = median(cases[0].first);
const width = Math.max(4, ...cases.map((c) => c.name.length));
console.log(`\nProcess start → first 200, median of ${runs} alternating runs (ms; "listening" = the port first accepted a connection):`);
console.log(`${"case".padEnd(width)} ${"first 200".padStart(9)} ${"min".padStart(6)} ${"max".padStart(6)} ${"listening".padStart(9)}  ratio`);
for (const c of cases) {
  const m = median(c.first);
  console.log(`${c.name.padEnd(width)} ${ms(m).padStart(9)} ${ms(Math.min(...c.first))} ${ms(Math.max(...c.first))} ${ms(median(c.ready)).padStart(9)}  ${(m / base).toFixed(2)}`);
}
console.log(`all runs (ms): ${cases.map((c) => `${c.name}: ${c.first.map((x) => x.toFixed(0)).join(" ")}`).join("; ")}`);
