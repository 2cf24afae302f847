#!/usr/bin/env node
// Prints a signed JWT for the local dev issuer (HS256 with Auth__DevSigningKey).
// Usage: node scripts/token.mjs --sub alice --role customer [--role operator] [--minutes 60]
// Roles: every role the API's policies know (functions/Marketing.Functions/Identity/Auth.cs, Roles; a test keeps
// this list equal to it). A customer who registered as a promoter may call promoter routes with a customer token.
// Reads Auth__Issuer, Auth__Audience and Auth__DevSigningKey from the environment, else from
// local.settings.json, else from local.settings.sample.json.
import { createHmac } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const file = [join(root, "local.settings.json"), join(root, "local.settings.sample.json")].find(existsSync);
const values = file ? JSON.parse(readFileSync(file, "utf8")).Values ?? {} : {};
const setting = (name) => process.env[name] ?? values[name];

const ROLES = {
  customer: "a shopper: claims coupons, reads their wallet, quotes a cart, registers as a promoter",
  operator: "runs campaigns, budgets, commission rules and payouts",
  admin: "everything an operator may do, and approve (never their own work)",
  order_system: "the order system: quotes, locks, confirms, cancels and refunds coupons on orders",
  promoter: "a promoter (distribution): reads their own registration, commissions and balance",
  finance: "finance staff: short-lived links to payout batch CSVs",
  approver: "the checker of maker-checker: decides others' campaigns and top-ups (never their own), reads the audit trail",
};
const usage = () => {
  console.error("usage: node scripts/token.mjs --sub ID --role ROLE [--role ROLE ...] [--minutes N]\nroles:");
  for (const [role, what] of Object.entries(ROLES)) console.error(`  ${role.padEnd(13)} ${what}`);
};

const args = process.argv.slice(2);
let sub, minutes = 60;
const roles = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--sub") sub = args[++i];
  else if (args[i] === "--role") {
    const role = args[++i];
    if (!Object.hasOwn(ROLES, role ?? "")) { console.error(`unknown role ${role}`); usage(); process.exit(2); }
    roles.push(role);
  }
  else if (args[i] === "--minutes") minutes = Number(args[++i]);
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}
if (!sub || roles.length === 0) { usage(); process.exit(2); }
const key = setting("Auth__DevSigningKey");
if (!key) { console.error("Auth__DevSigningKey is not set"); process.exit(2); }

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const header = b64({ alg: "HS256", typ: "JWT" });
const payload = b64({ iss: setting("Auth__Issuer"), aud: setting("Auth__Audience"), sub, roles, iat: now, nbf: now, exp: now + minutes * 60 });
const signature = createHmac("sha256", Buffer.from(key, "utf8")).update(`${header}.${payload}`).digest("base64url");
console.log(`${header}.${payload}.${signature}`);
