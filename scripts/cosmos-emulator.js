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
//   * the change feed (latest-version mode, the SDK's pull model) works as in Cosmos DB: every write gets the next
//     log sequence number (LSN) of its collection; the feed answers, in LSN order, each document whose latest version
//     is newer than the LSN in If-None-Match (none: from the beginning; "*": "now"), once and at that latest version,
//     with "_lsn", at most x-ms-max-item-count of them, for one partition key when the request names one; ETag is the
//     LSN to resume from, and 304 Not Modified answers when nothing is newer. Deleted documents do not appear. The
//     stock server answered the whole container with ETag "1", then 304 forever;
//   * transactional batches are read and answered in the .NET SDK's HybridRow format (the stock server only read
//     JSON: every .NET batch answered 500) and are atomic: a failed operation undoes the ones before it (the same
//     versions, etags and LSNs come back), answers its status with 424 for the others (HTTP 207, as Cosmos DB),
//     patches (with filter, If-Match and the checks above) are supported, every operation must carry the batch's
//     partition key, more than 100 operations are 400 and a body over 2 MB is 413. A batch's writes share one LSN.
//   * queries take time linear in the documents they read: the query compiler copied its whole working array once per
//     document, so a query over 60,000 documents took 26 s (now 20 ms).
// It does not implement time to live itself: an item past its "ttl" stays readable here (docs/local-emulators.md),
// nor the all-versions-and-deletes change feed mode, nor feed ranges smaller than its one partition key range.
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

// What Azure Cosmos DB refuses in the body of a write ("create-document", "patch-document", "replace-document",
// "upsert-document"), read from its raw text: { refusal: { status, body } }, or { body } (the parsed JSON) when it passes.
// The single-item handlers and the operations of a transactional batch share it.
function checkWrite(name, text) {
  const refuse = (status, body) => ({ refusal: { status, body } });
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
  return { body };
}

// In the emulator's log too: a refusal the app swallows would otherwise go unseen.
const logRefusal = (what, status, body) => console.error(`refused like Azure Cosmos DB: ${what} ${status} ${body.message.slice(0, 300)}`);

// Wraps a write handler: refuses what Azure Cosmos DB refuses before the emulator sees it.
function refuseWhatAzureRefuses(name, handler) {
  return async (account, req, res, params) => {
    const text = (await rawBody(req)).toString("utf8");
    req.checkedBody = text;
    const { refusal } = checkWrite(name, text);
    if (refusal) {
      logRefusal(`${req.method} ${req.url}`, refusal.status, refusal.body);
      res.statusCode = refusal.status;
      return refusal.body;
    }
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

const { default: partitionFromHeader, parsePartitionKey } = require(`${lib}/utils/get-partition-from-header`);
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

// Queries in linear time. The query compiler (@zeit/cosmosdb-query) gathers the documents with
// reduce(($, c) => [...$, { c }], []), which copies the whole accumulator once per document: a query over 60,000
// documents took 26 s here (a filtered point query included), so anything that keeps many small documents in one
// container (the statistics' fact marks) timed out. The generated code is rewritten to push onto the accumulator
// instead: [...$, x, ...y] becomes ($.push(x, ...y), $). Same results, in the same order.
{
  const transformer = require(require.resolve("@zeit/cosmosdb-query/lib/transformer", { paths: [lib] }));
  const original = transformer.default;
  const linear = (node) => {
    if (Array.isArray(node)) return node.map(linear);
    if (!node || typeof node !== "object") return node;
    for (const key of Object.keys(node)) node[key] = linear(node[key]);
    const [first, ...rest] = node.type === "ArrayExpression" ? node.elements : [];
    if (first && first.type === "SpreadElement" && first.argument.type === "Identifier" && first.argument.name === "$") {
      const accumulator = { type: "Identifier", name: "$" };
      return {
        type: "SequenceExpression",
        expressions: [
          { type: "CallExpression", callee: { type: "MemberExpression", object: accumulator, property: { type: "Identifier", name: "push" }, computed: false }, arguments: rest },
          { type: "Identifier", name: "$" },
        ],
      };
    }
    return node;
  };
  transformer.default = (ast) => linear(original(ast));
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
  const queryDocuments = (account, req, res, { dbId, collId }) =>
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
  handler.default = (account, req, res, params) => {
    // A change feed with a query (A-IM and a query body) would otherwise run as a plain query over everything.
    if (req.headers["a-im"]) {
      delete req.headers["a-im"];
      res.statusCode = 400;
      return { code: "BadRequest", message: "A change feed with a query is not supported by the local emulator." };
    }
    return queryDocuments(account, req, res, params);
  };
}

// ---- Change feed (latest-version mode, pull model) ----
// Cosmos DB numbers the writes of a partition (the log sequence number, LSN); the change feed answers, in LSN order,
// each document whose latest version is newer than the LSN the client names in If-None-Match, once, at that latest
// version, and its ETag header is the LSN to resume from. The stock emulator answered every such request with the
// whole container, status 200 and ETag "1" (or 304 whenever If-None-Match was set), so a reader could neither page
// nor resume. Here every collection counts its writes, each stored version remembers its LSN (shown as "_lsn" on
// the documents of the feed, as Cosmos DB does) and a log in LSN order serves the feed from any point.
const Documents = require(`${lib}/account/documents`).default;
{
  const Items = require(`${lib}/account/items`).default;
  const set = Items.prototype._set;
  Documents.prototype._nextLsn = function () {
    this._lsn = (this._lsn || 0) + 1;
    return this._lsn;
  };
  // Every create, replace, upsert and patch ends here (a replace deletes the old version and sets the new one).
  Documents.prototype._set = function (data) {
    delete data._lsn; // a system property: a client that writes back a document read from the feed does not set it
    const stored = set.call(this, data);
    const lsn = this._batchLsn || this._nextLsn(); // the writes of one transactional batch share its LSN, as in Cosmos DB
    this._data.get(stored._rid).lsn = lsn;
    const log = (this._changeLog = this._changeLog || []);
    log.push({ lsn, rid: stored._rid });
    // Superseded and deleted versions stay in the log until it is mostly stale; never during a batch, which may
    // still restore one of them.
    if (!this._batchLsn && log.length > 1000 && log.length > 2 * this._data.size)
      this._changeLog = log.filter(entry => this._isLatest(entry));
    return stored;
  };
  Documents.prototype._isLatest = function ({ lsn, rid }) {
    const item = this._data.get(rid);
    return item !== undefined && item.lsn === lsn;
  };
  // The documents changed after `since` (an LSN), in LSN order, each once at its latest version; at most `max`
  // of them, except that the changes of one LSN (one batch) are never split across pages, since the next page
  // starts after the last LSN returned.
  Documents.prototype._changesSince = function (since, max, keep) {
    const log = this._changeLog || [];
    let low = 0;
    let high = log.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (log[mid].lsn <= since) low = mid + 1;
      else high = mid;
    }
    const changes = [];
    const seen = new Set();
    for (let i = low; i < log.length; i++) {
      const entry = log[i];
      if (changes.length >= max && entry.lsn !== changes[changes.length - 1].lsn) break;
      if (!this._isLatest(entry) || seen.has(entry.rid)) continue;
      const doc = this._data.get(entry.rid).read();
      if (!keep(doc)) continue;
      seen.add(entry.rid);
      changes.push({ lsn: entry.lsn, doc });
    }
    return changes;
  };
}
{
  const handler = require(`${lib}/handler/read-documents`);
  const readFeed = handler.default;
  const unquote = text => String(text).trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  const fail = (res, status, message) => {
    res.statusCode = status;
    return { code: status === 404 ? "NotFound" : "BadRequest", message };
  };
  handler.default = (account, req, res, params) => {
    const mode = req.headers["a-im"];
    if (!mode) return readFeed(account, req, res, params); // a plain read feed: unchanged
    // The server's generic code answers any A-IM request 304 with ETag "1" once a handler returns: not for this one.
    delete req.headers["a-im"];
    if (String(mode).toLowerCase() !== "incremental feed")
      return fail(res, 400, `Change feed mode '${mode}' is not supported by the local emulator: latest version ("Incremental feed") only.`);
    const collection = account.database(params.dbId).collection(params.collId);
    if (!collection.read()) return fail(res, 404, "Resource Not Found.");
    const documents = collection.documents;
    // The emulator has one partition key range ("0", the whole key space): a request for it, for a partition key,
    // or for the container is answered; a part of the range (an EPK sub-range of a split feed range) is not.
    const range = req.headers["x-ms-documentdb-partitionkeyrangeid"];
    if (range !== undefined) {
      const id = String(range).split(",").pop();
      const ids = [...collection.partitionKeyRanges._data.values()].map(item => String(item.read().id));
      if (!ids.includes(id)) return fail(res, 400, `Partition key range '${id}' does not exist here (the emulator has ${ids.join(", ")}).`);
    }
    if (req.headers["x-ms-start-epk"] || req.headers["x-ms-end-epk"])
      return fail(res, 400, "A change feed over part of a partition key range (an EPK sub-range) is not supported by the local emulator.");
    const current = documents._lsn || 0;
    const ifNoneMatch = req.headers["if-none-match"];
    const notModified = etag => {
      res.statusCode = 304;
      res.setHeader("etag", `"${etag}"`);
      res.setHeader("x-ms-item-count", "0");
      return undefined;
    };
    // "Now": nothing yet, and the current LSN to continue from.
    if (ifNoneMatch !== undefined && unquote(ifNoneMatch) === "*") return notModified(current);
    let since = 0;
    if (ifNoneMatch !== undefined) {
      since = Number(unquote(ifNoneMatch));
      if (!Number.isSafeInteger(since) || since < 0) return fail(res, 400, `Invalid continuation (If-None-Match) '${ifNoneMatch}'.`);
    }
    // "Time" (If-Modified-Since), when not resuming from a continuation: the documents last written at or after it.
    // _ts has whole seconds, so a document of the same second is included (delivery is at least once anyway).
    let from = -Infinity;
    const modifiedSince = req.headers["if-modified-since"];
    if (modifiedSince !== undefined && ifNoneMatch === undefined) {
      from = Math.floor(Date.parse(modifiedSince) / 1000);
      if (Number.isNaN(from)) return fail(res, 400, `Invalid If-Modified-Since '${modifiedSince}'.`);
    }
    const requested = parseInt(req.headers["x-ms-max-item-count"], 10);
    const max = Number.isNaN(requested) ? 100 : requested <= 0 ? Infinity : requested; // Cosmos DB's default page: 100
    const partition = partitionOf(req);
    const changes = documents._changesSince(since, max, doc =>
      (partition === undefined || documents._getPartition(doc) === partition) && doc._ts >= from);
    if (changes.length === 0) return notModified(since);
    res.setHeader("etag", `"${changes[changes.length - 1].lsn}"`);
    res.setHeader("x-ms-item-count", String(changes.length));
    return { _rid: collection.read()._rid, Documents: changes.map(({ lsn, doc }) => ({ ...doc, _lsn: lsn })), _count: changes.length };
  };
}

// ---- Transactional batch ----
// The .NET SDK sends a batch as HybridRow records (RecordIO: a segment row, then a record header and a row per
// operation, schemas in the SDK's Batch/HybridRowBatchSchemas.json) and reads the answer in the same form; the stock
// emulator only read JSON (500 for every .NET batch), stopped at a failed operation without undoing the ones
// before it, and had no patch. Here a batch is all or nothing, as in Cosmos DB.
const hybridRow = (() => {
  const version = 0x81;
  const schema = { segment: 2147473648, record: 2147473649, operation: 2145473648, result: 2145473649 };
  const code = { booleanFalse: 2, boolean: 3, int32: 7, uint32: 11, float64: 16, utf8: 20, binary: 21 };
  const crcTable = new Int32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  const crc32 = bytes => {
    let c = -1;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
  const readVarUInt = (buf, at) => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = buf[at.pos++];
      if (b === undefined) throw new Error("truncated varint");
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
      shift += 7;
    }
  };
  const varUInt = value => {
    const bytes = [];
    do {
      let b = value % 128;
      value = Math.floor(value / 128);
      if (value > 0) b |= 0x80;
      bytes.push(b);
    } while (value > 0);
    return Buffer.from(bytes);
  };
  // BatchOperation: presence bits (operationType, resourceType, then the 5 variable columns), 2 fixed int32,
  // variable columns (length-prefixed) in schema order, then sparse columns (type code, path token, value).
  const operationVariable = ["partitionKey", "effectivePartitionKey", "id", "binaryId", "resourceBody"];
  const operationPaths = [, "operationType", "resourceType", "partitionKey", "effectivePartitionKey", "id", "binaryId",
    "resourceBody", "indexingDirective", "ifMatch", "ifNoneMatch", "timeToLiveInSeconds", "minimalReturnPreference"];
  const readOperation = row => {
    if (row[0] !== version || row.readInt32LE(1) !== schema.operation) throw new Error("not a BatchOperation row");
    const bits = row[5];
    const op = {};
    if (bits & 1) op.operationType = row.readInt32LE(6);
    if (bits & 2) op.resourceType = row.readInt32LE(10);
    const at = { pos: 14 };
    operationVariable.forEach((name, i) => {
      if (!(bits & (1 << (i + 2)))) return;
      const length = readVarUInt(row, at);
      const bytes = row.subarray(at.pos, at.pos + length);
      at.pos += length;
      op[name] = name === "partitionKey" || name === "id" ? bytes.toString("utf8") : bytes;
    });
    while (at.pos < row.length) {
      const type = row[at.pos++];
      const token = readVarUInt(row, at);
      let path = operationPaths[token];
      if (token >= operationPaths.length) {
        const length = token - operationPaths.length;
        path = row.toString("utf8", at.pos, at.pos + length);
        at.pos += length;
      }
      let value;
      if (type === code.utf8 || type === code.binary) {
        const length = readVarUInt(row, at);
        value = row.subarray(at.pos, at.pos + length);
        at.pos += length;
        if (type === code.utf8) value = value.toString("utf8");
      } else if (type === code.int32) {
        value = row.readInt32LE(at.pos);
        at.pos += 4;
      } else if (type === code.boolean || type === code.booleanFalse) {
        value = type === code.boolean;
      } else throw new Error(`unexpected HybridRow type code ${type} for '${path}'`);
      op[path] = value;
    }
    return op;
  };
  // A RecordIO stream: segment rows (skipped) and records, each a header (length, CRC-32) and a row.
  const readRecords = buf => {
    const rows = [];
    let pos = 0;
    while (pos < buf.length) {
      if (buf[pos] !== version) throw new Error("not a HybridRow");
      const id = buf.readInt32LE(pos + 1);
      if (id === schema.segment) {
        pos += buf.readInt32LE(pos + 6); // the segment row's own length
      } else if (id === schema.record) {
        const length = buf.readInt32LE(pos + 5);
        const crc = buf.readUInt32LE(pos + 9);
        const row = buf.subarray(pos + 13, pos + 13 + length);
        if (row.length !== length || crc32(row) !== crc) throw new Error("corrupt record");
        rows.push(row);
        pos += 13 + length;
      } else throw new Error(`unexpected HybridRow schema ${id}`);
    }
    return rows.map(readOperation);
  };
  // BatchResult: presence bits (statusCode, subStatusCode, eTag, resourceBody), 2 fixed int32, eTag and
  // resourceBody when present, then requestCharge as a sparse float64 (path token 6).
  const resultRow = ({ statusCode, subStatusCode = 0, eTag, resourceBody, requestCharge }) => {
    const head = Buffer.alloc(14);
    head[0] = version;
    head.writeInt32LE(schema.result, 1);
    head[5] = 1 | 2 | (eTag !== undefined ? 4 : 0) | (resourceBody !== undefined ? 8 : 0);
    head.writeInt32LE(statusCode, 6);
    head.writeInt32LE(subStatusCode, 10);
    const parts = [head];
    for (const value of [eTag, resourceBody]) {
      if (value === undefined) continue;
      const bytes = Buffer.from(value, "utf8");
      parts.push(varUInt(bytes.length), bytes);
    }
    const charge = Buffer.alloc(10);
    charge[0] = code.float64;
    charge[1] = 6;
    charge.writeDoubleLE(requestCharge, 2);
    parts.push(charge);
    return Buffer.concat(parts);
  };
  const writeResults = results => {
    const segment = Buffer.from([version, 0, 0, 0, 0, 1, 10, 0, 0, 0]);
    segment.writeInt32LE(schema.segment, 1);
    const parts = [segment];
    for (const result of results) {
      const row = resultRow(result);
      const header = Buffer.alloc(13);
      header[0] = version;
      header.writeInt32LE(schema.record, 1);
      header.writeInt32LE(row.length, 5);
      header.writeUInt32LE(crc32(row), 9);
      parts.push(header, row);
    }
    return Buffer.concat(parts);
  };
  return { readRecords, writeResults, version };
})();

{
  const handler = require(`${lib}/handler/batch-documents`);
  const documentOperations = require(`${lib}/handler/_document-operations`);
  const trueHeader = require(`${lib}/true-header`).default;
  const limit = { operations: 100, bytes: 2 * 1024 * 1024 };
  // Microsoft.Azure.Documents.OperationType, as the .NET SDK writes it, and the JSON SDK's names.
  const kinds = { 0: "Create", 1: "Patch", 2: "Read", 4: "Delete", 5: "Replace", 20: "Upsert" };
  const failed = (statusCode, code, message) => ({ statusCode, body: { code, message } });

  // Records every change to the collection's item and index maps while `work` runs, so that a failed batch can put
  // back exactly what was there (the same versions, etags and LSNs) and a created document disappears.
  const journaled = (documents, work) => {
    const journal = [];
    const maps = [documents._data, documents._index];
    for (const map of maps) {
      map.set = (key, value) => (journal.push([map, key, map.has(key), map.get(key)]), Map.prototype.set.call(map, key, value));
      map.delete = key => (journal.push([map, key, map.has(key), map.get(key)]), Map.prototype.delete.call(map, key));
    }
    const logLength = (documents._changeLog || []).length;
    const undo = () => {
      for (const [map, key, had, value] of journal.reverse()) {
        if (had) Map.prototype.set.call(map, key, value);
        else Map.prototype.delete.call(map, key);
      }
      if (documents._changeLog) documents._changeLog.length = logLength;
    };
    try {
      return work(undo);
    } finally {
      for (const map of maps) {
        delete map.set;
        delete map.delete;
      }
    }
  };

  // One operation, with the checks of the single-item handlers (limits, partition key, If-Match).
  const runOperation = (collection, op, batchKey, batchKeyHeader) => {
    const kind = kinds[op.operationType];
    if (!kind) return failed(400, "BadRequest", `Operation type '${op.operationType}' is not supported in a batch.`);
    if (op.partitionKey !== undefined && op.partitionKey !== batchKeyHeader) {
      let key;
      try {
        key = parsePartitionKey(op.partitionKey);
      } catch {
        key = undefined;
      }
      if (key !== batchKey) return failed(400, "BadRequest", "All operations of a transactional batch must have the batch's partition key.");
    }
    const text = op.resourceBody === undefined ? undefined : Buffer.from(op.resourceBody).toString("utf8");
    let resourceBody;
    if (["Create", "Upsert", "Replace", "Patch"].includes(kind)) {
      const checked = checkWrite(kind === "Patch" ? "patch-document" : "create-document", text === undefined ? "" : text);
      if (checked.refusal) {
        logRefusal(`batch ${kind} ${op.id || ""}`, checked.refusal.status, checked.refusal.body);
        return { statusCode: checked.refusal.status, body: checked.refusal.body };
      }
      resourceBody = checked.body;
    }
    if (["Create", "Upsert", "Replace"].includes(kind)) {
      if (!resourceBody || typeof resourceBody !== "object" || Array.isArray(resourceBody))
        return failed(400, "BadRequest", "The operation's document is not a JSON object.");
      if (collection.documents._getPartition(resourceBody) !== batchKey)
        return failed(400, "BadRequest", "PartitionKey extracted from document doesn't match the one specified in the header.");
      if (kind === "Replace" && op.id !== undefined && op.id !== resourceBody.id)
        return failed(400, "BadRequest", "The id of the document does not match the id of the replace operation.");
    }
    const input = { partitionKey: batchKeyHeader, ifMatch: op.ifMatch, id: op.id, resourceBody };
    switch (kind) {
      case "Create":
        return documentOperations.createOperation(collection, input);
      case "Upsert":
        return documentOperations.upsertOperation(collection, input);
      case "Replace":
        return documentOperations.replaceOperation(collection, input);
      case "Read":
        return documentOperations.readOperation(collection, input);
      case "Delete":
        return documentOperations.deleteOperation(collection, input);
      default: {
        const operations = Array.isArray(resourceBody) ? resourceBody : resourceBody && resourceBody.operations;
        if (!Array.isArray(operations)) return failed(400, "BadRequest", "Invalid patch request: check syntax of patch specification.");
        // The launcher's patch: the filter predicate against this document only, the 2 MB check on the result.
        return patchOperations.patchOperation(collection, {
          ...input,
          operations,
          condition: Array.isArray(resourceBody) ? undefined : resourceBody.condition,
        });
      }
    }
  };

  handler.default = async (account, req, res, { dbId, collId }) => {
    const collection = account.database(dbId).collection(collId);
    if (!collection.read()) {
      res.statusCode = 404;
      return { code: "NotFound", message: "Resource Not Found." };
    }
    const raw = await rawBody(req);
    const refuse = (status, body) => {
      logRefusal(`batch ${req.url}`, status, body);
      res.statusCode = status;
      return body;
    };
    if (raw.length > limit.bytes) return refuse(413, tooLarge(`The batch request is ${raw.length} bytes; a batch may have ${limit.bytes}.`));
    const hybrid = raw[0] === hybridRow.version;
    let operations;
    try {
      operations = hybrid ? hybridRow.readRecords(raw) : JSON.parse(raw.toString("utf8"));
    } catch (err) {
      return refuse(400, badRequest(`The batch request cannot be read: ${err.message}`));
    }
    if (!Array.isArray(operations)) return refuse(400, badRequest("Invalid request body"));
    if (!hybrid) {
      // The JSON form (the JavaScript SDK): operation names, inline documents, a partition key per operation.
      const byName = Object.fromEntries(Object.entries(kinds).map(([number, name]) => [name, Number(number)]));
      operations = operations.map(o => ({
        operationType: byName[o && o.operationType],
        id: o && (o.id !== undefined ? o.id : o.resourceBody && o.resourceBody.id),
        partitionKey: o && o.partitionKey,
        ifMatch: o && o.ifMatch,
        resourceBody: o && o.resourceBody !== undefined ? Buffer.from(JSON.stringify(o.resourceBody)) : undefined,
      }));
    }
    if (operations.length === 0) return refuse(400, badRequest("A batch must have at least one operation."));
    if (operations.length > limit.operations)
      return refuse(400, badRequest(`Batch request has more operations than what is supported: ${operations.length}; at most ${limit.operations}.`));
    const batchKeyHeader = partitionFromHeader(req);
    let batchKey;
    try {
      batchKey = parsePartitionKey(batchKeyHeader);
    } catch {
      return refuse(400, badRequest("A transactional batch needs one partition key (x-ms-documentdb-partitionkey)."));
    }
    // A transactional batch is atomic (the .NET SDK says so in x-ms-cosmos-batch-atomic); a JSON batch that does not
    // ask for it keeps the stock behaviour (stop at the first failure, or go on when asked, nothing undone).
    const atomic = trueHeader(req, "x-ms-cosmos-batch-atomic") || (hybrid && !req.headers["x-ms-cosmos-batch-atomic"]);
    const continueOnError = !atomic && trueHeader(req, "x-ms-cosmos-batch-continue-on-error");
    const documents = collection.documents;
    // Synchronous from here to the answer: no other request can see a half-applied batch.
    const results = journaled(documents, undo => {
      documents._batchLsn = documents._nextLsn();
      try {
        const answers = [];
        let failure = -1;
        for (let i = 0; i < operations.length; i++) {
          if (failure >= 0 && !continueOnError) {
            answers.push({ statusCode: 424 });
            continue;
          }
          const op = operations[i];
          const answer = runOperation(collection, op, batchKey, batchKeyHeader);
          if (answer.statusCode >= 400 && failure < 0) failure = i;
          answers.push(answer.statusCode >= 400 ? { statusCode: answer.statusCode, error: answer.body } : {
            statusCode: answer.statusCode,
            body: op.minimalReturnPreference || answer.statusCode === 204 ? undefined : answer.body,
            eTag: answer.body && answer.body._etag,
          });
        }
        if (failure >= 0 && atomic) {
          undo();
          // All or nothing: the failed operation keeps its status, every other one is 424 Failed Dependency.
          return answers.map((answer, i) => (i === failure ? answer : { statusCode: 424 }));
        }
        return answers;
      } catch (err) {
        undo();
        throw err;
      } finally {
        delete documents._batchLsn;
      }
    });
    const failedAtomically = atomic && results.some(r => r.statusCode >= 400);
    if (!hybrid) {
      return results.map(r => (r.statusCode >= 400 ? { statusCode: r.statusCode, requestCharge: 0 }
        : { statusCode: r.statusCode, requestCharge: 1, eTag: r.eTag, resourceBody: r.body }));
    }
    res.statusCode = failedAtomically ? 207 : 200; // 207 Multi-Status: the SDK promotes the failed operation's status
    const body = hybridRow.writeResults(results.map(r => ({
      statusCode: r.statusCode,
      eTag: r.eTag,
      resourceBody: r.body !== undefined ? JSON.stringify(r.body) : r.error !== undefined ? JSON.stringify(r.error) : undefined,
      requestCharge: r.statusCode === 424 ? 0 : 1,
    })));
    // The server's generic code ends every answer with JSON: send the HybridRow bytes instead.
    const end = res.end;
    res.end = () => end.call(res, body);
    return {};
  };
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
