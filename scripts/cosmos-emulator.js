#!/usr/bin/env node
// Starts the npm Cosmos DB emulator (@vercel/cosmosdb-server) on 127.0.0.1 over plain HTTP,
// with load-time fixes for the gaps that matter to us (see docs/local-emulators.md):
//   * reading a document that does not exist answers 404 (the stock server throws and answers 500,
//     which the SDK would retry and then surface as an internal error instead of NotFound), and so does a
//     write into a container or database that does not exist;
//   * a patch's filter predicate is evaluated against the target document only, as Cosmos DB does.
//     The stock server matches it against every document with the same id in any partition, and
//     lower-cases the whole predicate (string literals included), so "c.remaining > 0" could be
//     satisfied by another campaign's counter;
//   * writes sent with "Prefer: return=minimal" (EnableContentResponseOnWrite = false) answer without the
//     document, as Cosmos DB does, instead of echoing it back;
//   * writes Azure Cosmos DB refuses are refused here too, so a test finds them before Azure does: an item over
//     2 MB (413, also when a patch would grow it past 2 MB), a patch of more than 10 operations (400), an id
//     longer than 255 characters or with / \ ? # (400), and an integer beyond ±2^53 anywhere in the body
//     (400: Cosmos DB stores numbers as IEEE 754 doubles and would silently round it), and an item "ttl" that is
//     not a nonzero positive integer up to 2^31 - 1 or -1 (400; also when a patch sets it).
//   * resource ids (_rid) are written in Cosmos DB's alphabet, base64 with "-" for "/": the stock server writes
//     plain base64, so every 64th database's id held a "/" and the SDK's id-based requests for it (a query's
//     partition key ranges) went to a path that does not exist (404), failing whichever test got that database.
// It does not implement time to live itself: an item past its "ttl" stays readable here (docs/local-emulators.md).
// Usage: node scripts/cosmos-emulator.js --port 8081
"use strict";

const path = require("path");
const lib = path.dirname(require.resolve("@vercel/cosmosdb-server/package.json")) + "/lib";

// ---- Limits of Azure Cosmos DB that the npm emulator does not enforce (docs/cosmos-limits.md) ----
const limits = {
  itemBytes: 2 * 1024 * 1024, // an item's JSON, UTF-8
  patchOperations: 10,
  idLength: 255, // the project's id budget (see docs/cosmos-limits.md); the service's own cap is 1,023 bytes
  safeInteger: 9007199254740991n, // 2^53 - 1: beyond it an IEEE 754 double cannot hold every integer
};
const invalidIdCharacter = /[\/\\?#]/;

// An item's time to live, as Cosmos DB accepts it: -1 (never expires) or 1 to 2^31 - 1 seconds; null, 0, a fraction,
// a string... are refused with 400 (to use the container's default, an item leaves "ttl" out).
const validTtl = value => value === -1 || (Number.isInteger(value) && value >= 1 && value <= 2147483647);
const invalidTtl = value => badRequest(`The input ttl '${JSON.stringify(value)}' is invalid. Ensure to provide a nonzero positive integer less than or equal to '2147483647', or '-1' which means never expire.`);

const tooLarge = detail => ({ code: "RequestEntityTooLarge", message: `Request size is too large. ${detail}` });
const badRequest = message => ({ code: "BadRequest", message });

// The first integer literal outside strings whose magnitude is beyond 2^53 - 1 (for a literal with a fraction, its
// integer part), or null. Read from the raw text, because JSON.parse would already have rounded it.
function unsafeInteger(text) {
  const number = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      continue;
    }
    if (ch !== "-" && (ch < "0" || ch > "9")) continue;
    number.lastIndex = i;
    const match = number.exec(text);
    if (!match) continue;
    i += match[0].length - 1;
    if (match[2]) continue; // an exponent: written as a double on purpose
    const integer = BigInt(match[0].split(".")[0]);
    if ((integer < 0n ? -integer : integer) > limits.safeInteger) return match[0];
  }
  return null;
}

// Handlers read their body through lib/json; when a check below has read it already, parse that text instead.
const jsonModule = require(`${lib}/json`);
const readJson = jsonModule.default;
jsonModule.default = req => (req.checkedBody !== undefined ? Promise.resolve(JSON.parse(req.checkedBody)) : readJson(req));
const rawBody = require(require.resolve("raw-body", { paths: [lib] }));

// Wraps a write handler: refuses what Azure Cosmos DB refuses before the emulator sees it.
function refuseWhatAzureRefuses(name, handler) {
  return async (account, req, res, params) => {
    const text = (await rawBody(req)).toString("utf8");
    req.checkedBody = text;
    const refuse = (status, body) => {
      // In the emulator's log too: a refusal the app swallows would otherwise go unseen.
      console.error(`refused like Azure Cosmos DB: ${req.method} ${req.url} ${status} ${body.message.slice(0, 300)}`);
      res.statusCode = status;
      return body;
    };
    if (Buffer.byteLength(text) > limits.itemBytes)
      return refuse(413, tooLarge(`The request body is ${Buffer.byteLength(text)} bytes; an item may have ${limits.itemBytes}.`));
    const unsafe = unsafeInteger(text);
    if (unsafe)
      return refuse(400, badRequest(`The number ${unsafe} is beyond ±2^53: Azure Cosmos DB stores numbers as IEEE 754 doubles and would not keep it exactly.`));
    let body;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return refuse(400, badRequest(`The request body is not valid JSON: ${err.message}`));
    }
    if (name === "patch-document") {
      const operations = Array.isArray(body) ? body : body && body.operations;
      if (Array.isArray(operations) && operations.length > limits.patchOperations)
        return refuse(400, badRequest(`A patch may have at most ${limits.patchOperations} operations; this one has ${operations.length}.`));
      const ttl = (Array.isArray(operations) ? operations : []).find(o => o && o.path === "/ttl" && ["add", "set", "replace"].includes(o.op) && !validTtl(o.value));
      if (ttl) return refuse(400, invalidTtl(ttl.value));
    } else if (body && typeof body.id === "string") {
      if (body.id.length > limits.idLength || invalidIdCharacter.test(body.id))
        return refuse(400, badRequest(`The input name '${body.id}' is invalid. Ensure to provide a unique non-empty string less than '${limits.idLength + 1}' characters. Ensure to not use any of the following: '/', '\\\\', '?', '#'.`));
    }
    if (name !== "patch-document" && body && typeof body === "object" && "ttl" in body && !validTtl(body.ttl))
      return refuse(400, invalidTtl(body.ttl));
    return handler(account, req, res, params);
  };
}

// Resource ids as Cosmos DB writes them: base64 with "/" as "-" (they go into request paths), read back either way.
{
  const ResourceId = require(`${lib}/account/resource-id`).default;
  ResourceId.toBase64String = buffer => buffer.toString("base64").replace(/\//g, "-");
  ResourceId.fromBase64String = text => Buffer.from(text.replace(/-/g, "/"), "base64");
}

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
// A patch whose result would be over the item size limit is refused with 413, as Cosmos DB does, and leaves the
// document untouched: the size is checked just before the patched document replaces the stored one.
const patchWithinItemLimit = (collection, input) => {
  const documents = collection.documents;
  documents.replace = function (data, original) {
    const bytes = Buffer.byteLength(JSON.stringify(data));
    if (bytes > limits.itemBytes) throw Object.assign(new Error(`The patched item would be ${bytes} bytes.`), { tooLarge: true });
    return Object.getPrototypeOf(documents).replace.call(this, data, original);
  };
  try {
    return originalPatch(collection, input);
  } catch (err) {
    if (err.tooLarge) {
      console.error(`refused like Azure Cosmos DB: PATCH ${input.id} 413 ${err.message}`);
      return { statusCode: 413, body: tooLarge(err.message) };
    }
    throw err;
  } finally {
    delete documents.replace; // back to the prototype's
  }
};
patchOperations.patchOperation = (collection, input) => {
  if (!input.condition) return patchWithinItemLimit(collection, input);
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
  return patchWithinItemLimit(collection, { ...input, condition: undefined });
};

for (const name of ["create-document", "patch-document", "replace-document", "upsert-document"]) {
  const handler = require(`${lib}/handler/${name}`);
  const original = refuseWhatAzureRefuses(name, handler.default);
  handler.default = async (account, req, res, params) => {
    // A write into a container (or database) that does not exist is 404 in Cosmos DB; the stock server throws (500).
    if (!account.database(params.dbId).read() || !account.database(params.dbId).collection(params.collId).read()) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Resource Not Found. Learn more: https://aka.ms/cosmosdb-tsg-not-found" };
    }
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
// A query sent with a partition key (QueryRequestOptions.PartitionKey) reads that logical partition only, as in
// Cosmos DB; the emulator ignored the key and answered documents of every partition that matched the filter.
{
  const handler = require(`${lib}/handler/query-documents`);
  const Items = require(`${lib}/account/items`).default;
  const readItems = require(`${lib}/handler/_read-items`).default;
  const json = require(`${lib}/json`).default;
  const trueHeader = require(`${lib}/true-header`).default;
  const { default: partitionFromHeader } = require(`${lib}/utils/get-partition-from-header`);
  const originalQuery = Items.prototype.query;
  // Synchronous from start to end, so swapping the item map for the call cannot be seen by another request.
  Items.prototype.query = function (params, options) {
    if (!options || !("partition" in options)) return originalQuery.call(this, params, options);
    const all = this._data;
    this._data = new Map([...all].filter(([, item]) => {
      const doc = item.read();
      return doc && this._getPartition(doc) === options.partition;
    }));
    try {
      return originalQuery.call(this, params, options);
    } finally {
      this._data = all;
    }
  };
  // The key's value when the header names exactly one plain value; undefined otherwise (no key, or one the
  // emulator cannot compare: those queries run over every partition, as before).
  const partitionOf = (req) => {
    const header = partitionFromHeader(req);
    if (!header) return undefined;
    try {
      const parsed = JSON.parse(header);
      const value = Array.isArray(parsed) ? (parsed.length === 1 ? parsed[0] : undefined) : parsed;
      return ["string", "number", "boolean"].includes(typeof value) ? value : undefined;
    } catch {
      return undefined;
    }
  };
  handler.default = (account, req, res, { dbId, collId }) =>
    readItems(req, res, "Documents", async ({ continuation, maxItemCount }) => {
      const body = await json(req);
      if (!body.query) {
        res.statusCode = 400;
        return { message: "missing query" };
      }
      const collection = account.database(dbId).collection(collId);
      const partition = partitionOf(req);
      // Cosmos DB needs a query to name its partition (the key header) or to allow crossing them; the emulator
      // also insisted on the key in the filter even when the header names it.
      if (partition === undefined && !trueHeader(req, "x-ms-documentdb-query-enablecrosspartition")) {
        const { partitionKey } = collection.read() || {};
        const paths = (partitionKey || {}).paths || [];
        if (paths.length && !createQuery(body.query).containsPartitionKeys(paths)) {
          res.statusCode = 400;
          return { message: "missing partition keys" };
        }
      }
      try {
        const options = partition === undefined ? { continuation, maxItemCount } : { continuation, maxItemCount, partition };
        return collection.documents.query(body, options);
      } catch (err) {
        if (err.badRequest) {
          res.statusCode = 400;
          return { message: err.message };
        }
        throw err;
      }
    }).then((result) => {
      if (res.statusCode < 300 && !res.headersSent) res.setHeader("x-ms-cosmos-query-requiresdistribution", "false");
      return result;
    });
}

const { createHttpServer } = require(lib);

const args = process.argv.slice(2);
const portIndex = args.indexOf("--port");
const port = portIndex >= 0 ? parseInt(args[portIndex + 1], 10) : 8081;
const host = "127.0.0.1"; // loopback only, never all interfaces

const server = createHttpServer({ keepAlive: true });
// Node closes an idle keep-alive connection after 5 s; .NET keeps pooled connections for minutes. A request the client
// sends on a connection the server is closing at that moment fails with "An error occurred while sending the request"
// (a write is not retried), which loaded test runs hit now and then. Cosmos DB keeps idle connections far longer than
// the client's pool does, so the client is always the one to close: do the same.
server.keepAliveTimeout = 10 * 60 * 1000;
server.headersTimeout = server.keepAliveTimeout + 1000;
server.listen(port, host, () => {
  console.log(`Cosmos DB emulator ready at http://${host}:${server.address().port}/`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
