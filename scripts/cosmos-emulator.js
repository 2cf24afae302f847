#!/usr/bin/env node
// Starts the npm Cosmos DB emulator (@vercel/cosmosdb-server) on 127.0.0.1 over plain HTTP,
// with load-time fixes for the gaps that matter to us (see docs/local-emulators.md):
//   * reading a document that does not exist answers 404 (the stock server throws and answers 500,
//     which the SDK would retry and then surface as an internal error instead of NotFound);
//   * a patch's filter predicate is evaluated against the target document only, as Cosmos DB does.
//     The stock server matches it against every document with the same id in any partition, and
//     lower-cases the whole predicate (string literals included), so "c.remaining > 0" could be
//     satisfied by another campaign's counter;
//   * writes sent with "Prefer: return=minimal" (EnableContentResponseOnWrite = false) answer without the
//     document, as Cosmos DB does, instead of echoing it back.
// Usage: node scripts/cosmos-emulator.js --port 8081
"use strict";

const path = require("path");
const lib = path.dirname(require.resolve("@vercel/cosmosdb-server/package.json")) + "/lib";

// Patch handlers before routes.js captures them (it builds its route table at load time).
const readDocument = require(`${lib}/handler/read-document`);
const originalRead = readDocument.default;
readDocument.default = (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  if (collection.read()) {
    const { parsePartitionKey, default: partitionFromHeader } = require(`${lib}/utils/get-partition-from-header`);
    const key = parsePartitionKey(partitionFromHeader(req), params.docId);
    if (!collection.document(params.docId, key).read()) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
    }
  }
  return originalRead(account, req, res, params);
};

const patchOperations = require(`${lib}/handler/_patch-operations`);
const originalPatch = patchOperations.patchOperation;
const createQuery = require(path.dirname(require.resolve("@zeit/cosmosdb-query/package.json")) + "/lib").default;
patchOperations.patchOperation = (collection, input) => {
  if (!input.condition) return originalPatch(collection, input);
  const { parsePartitionKey } = require(`${lib}/utils/get-partition-from-header`);
  const doc = collection.document(input.id, parsePartitionKey(input.partitionKey, input.id)).read();
  if (doc && !(input.ifMatch && input.ifMatch !== doc._etag)) {
    let matches;
    try {
      const text = input.condition.trim();
      const query = /^select\s/i.test(text) ? text : `SELECT * ${text}`;
      matches = createQuery(query).exec([doc], {}).result.length > 0;
    } catch (err) {
      return { statusCode: 400, body: { code: "BadRequest", message: `Invalid condition in patch request: ${err.message}` } };
    }
    if (!matches) {
      return { statusCode: 412, body: { code: "PreconditionFailed", message: "Condition specified in the patch request is not satisfied." } };
    }
  }
  // Synchronous from here: node runs this whole check-and-apply without interleaving another request.
  return originalPatch(collection, { ...input, condition: undefined });
};

for (const name of ["create-document", "patch-document", "replace-document", "upsert-document"]) {
  const handler = require(`${lib}/handler/${name}`);
  const original = handler.default;
  handler.default = async (account, req, res, params) => {
    const body = await original(account, req, res, params);
    const minimal = String(req.headers.prefer || "").toLowerCase().includes("return=minimal");
    if (!(minimal && res.statusCode < 300 && body && body._etag)) return body;
    res.setHeader("etag", body._etag);
    return undefined; // an empty body, like Cosmos DB
  };
}

// The emulator has one partition range, so every query runs whole in it: say so (Cosmos DB sends this header for
// optimistic direct execution), or the SDK drops to its full pipeline on the first continuation token and asks
// for a query plan, which the emulator cannot give (ORDER BY pages then fail with a NullReferenceException).
{
  const handler = require(`${lib}/handler/query-documents`);
  const original = handler.default;
  handler.default = async (account, req, res, params) => {
    const body = await original(account, req, res, params);
    if (res.statusCode < 300 && !res.headersSent) res.setHeader("x-ms-cosmos-query-requiresdistribution", "false");
    return body;
  };
}

const { createHttpServer } = require(lib);

const args = process.argv.slice(2);
const portIndex = args.indexOf("--port");
const port = portIndex >= 0 ? parseInt(args[portIndex + 1], 10) : 8081;
const host = "127.0.0.1"; // loopback only, never all interfaces

const server = createHttpServer({ keepAlive: true }).listen(port, host, () => {
  console.log(`Cosmos DB emulator ready at http://${host}:${server.address().port}/`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
