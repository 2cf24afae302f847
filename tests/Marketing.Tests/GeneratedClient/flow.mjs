// Generates a TypeScript client from the served OpenAPI document with @hey-api/openapi-ts, the way a newcomer's
// front end would, and runs one flow through its generated functions: an operator creates and submits a campaign,
// an approver (someone else) approves it, the operator publishes it, a customer claims a coupon. Prints the claim's body
// as JSON on the last line.
// Usage: node flow.mjs SPEC_FILE WORK_DIR BASE_URL OPERATOR_TOKEN CUSTOMER_TOKEN TERMS_JSON APPROVER_TOKEN
// Node 20 cannot run TypeScript, so the generated files are transpiled to CommonJS with the typescript compiler:
// CommonJS resolves the generator's extensionless imports ('./client.gen'), ES modules would not.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const [spec, work, baseUrl, operatorToken, customerToken, termsJson, approverToken] = process.argv.slice(2);
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const require = createRequire(join(root, "package.json"));
const ts = require("typescript");

const generated = join(work, "ts");
execFileSync(process.execPath, [join(root, "node_modules", "@hey-api", "openapi-ts", "bin", "run.js"), "-i", spec, "-o", generated],
  { stdio: ["ignore", "ignore", "inherit"] });

const compiled = join(work, "js");
const files = (dir) => readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]);
for (const file of files(generated).filter((f) => f.endsWith(".ts"))) {
  const js = ts.transpileModule(readFileSync(file, "utf8"), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const target = join(compiled, relative(generated, file)).replace(/\.ts$/, ".js");
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, js);
}
writeFileSync(join(compiled, "package.json"), JSON.stringify({ type: "commonjs" }));
const load = createRequire(join(compiled, "package.json"));
const { client } = load("./client.gen.js");
const sdk = load("./sdk.gen.js");
const missing = ["createCampaign", "submitCampaign", "approveCampaign", "publishCampaign", "claimCoupon"].filter((name) => typeof sdk[name] !== "function");
if (missing.length) throw new Error(`generated sdk lacks ${missing.join(", ")}; it has ${Object.keys(sdk).join(", ")}`);

client.setConfig({ baseUrl });
const as = (token) => ({ Authorization: `Bearer ${token}` });
const ok = (what, result) => {
  if (result.error !== undefined || !result.response.ok)
    throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  return result.data;
};

const created = ok("create", await sdk.createCampaign({ body: JSON.parse(termsJson), headers: as(operatorToken) }));
ok("submit", await sdk.submitCampaign({ path: { id: created.id }, headers: as(operatorToken) }));
ok("approve", await sdk.approveCampaign({ path: { id: created.id }, headers: as(approverToken) }));
ok("publish", await sdk.publishCampaign({ path: { id: created.id }, headers: as(operatorToken) }));
const claim = ok("claim", await sdk.claimCoupon({
  path: { id: created.id }, body: { channel: "app" }, headers: { ...as(customerToken), "Idempotency-Key": randomUUID() },
}));
console.log(JSON.stringify({ campaignId: created.id, claim }));
