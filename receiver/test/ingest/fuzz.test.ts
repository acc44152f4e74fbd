// Property and fuzz tests of the OTLP/HTTP decoders against the real receiver and Postgres (SPEC §15):
// arbitrary bytes, mutated valid requests, deep nesting, huge strings, wrong JSON types, invalid
// UTF-8, NUL and lone surrogates never produce a 5xx; every answer is a well-formed OTLP answer;
// /health keeps answering; the receiver's RSS stays bounded; and what is acknowledged is really stored.
// The receiver runs as its own process (`node receiver/dist/main.js`), so its RSS is not mixed with
// fast-check's generated inputs in this process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import Long from 'long';
import { createTestDatabase, makeKey } from '../helpers.js';
import { createPool } from '../../src/db/pool.js';
import { ExportRequest, ExportResponse, decodeStatus, type WireFormat } from '../../src/ingest/otlp-wire.js';
import { spawnReceiver } from '../../../bench/lib/receiver.mjs';
import { rssBytes, sleep } from '../../../bench/lib/proc.mjs';

const LIMIT = 1024 * 1024;
// Fixed seed and 300 runs in the test suite; bench/fuzz.mjs raises both (FUZZ_RUNS, FUZZ_SEED) for the
// 10^5-case run over the byte-level properties (and the random wrong-typed JSON value).
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x5eed_0715; // each property adds its own offset
const RUNS = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : 300;
// Requests in flight at once for those properties: 1 here; bench/fuzz.mjs raises it (FUZZ_CONCURRENCY) so
// 10^5 cases fit in minutes. Each of the N shards runs RUNS / N cases with its own seed (shard 0 keeps SEED + offset).
const CONCURRENCY = Math.max(1, Math.floor(Number(process.env.FUZZ_CONCURRENCY ?? 1)) || 1);
// Peak VmRSS of the receiver process over the whole run: the spec's 250 MB class (its RSS target at
// max ingest load, bench/ingest.mjs); idle after boot it is about 100 MB.
const RSS_BOUND = 250 * 1024 * 1024;

const dir = mkdtempSync(path.join(tmpdir(), 'strathon-fuzz-'));
const logPath = path.join(dir, 'receiver.log');
const heapFile = path.join(dir, 'heap.json');
// Loaded into the receiver: on SIGUSR2, a full GC, then the heap still in use written to heapFile.
const gcOnSignal = `data:text/javascript,${encodeURIComponent(`import { renameSync, writeFileSync } from 'node:fs';
process.on('SIGUSR2', () => { globalThis.gc(); writeFileSync(${JSON.stringify(`${heapFile}.tmp`)}, String(process.memoryUsage().heapUsed)); renameSync(${JSON.stringify(`${heapFile}.tmp`)}, ${JSON.stringify(heapFile)}); });`)}`;
const databaseUrl = await createTestDatabase();
const pool = createPool(databaseUrl, { max: 4 });
const key = await makeKey(pool, ['*']);
const receiver = await spawnReceiver({
  env: { DATABASE_URL: databaseUrl, STRATHON_MAX_BODY_BYTES: String(LIMIT), STRATHON_LOG_LEVEL: 'warn' },
  nodeArgs: ['--expose-gc', '--import', gcOnSignal], logPath,
});
after(async () => {
  clearInterval(rssSampler);
  await receiver.stop(10_000);
  await pool.end();
  rmSync(dir, { recursive: true, force: true });
});
const r = { url: receiver.url, key, pool };
/** The receiver's JSON log lines (warn and above) so far. */
const logLines = () => readFileSync(logPath, 'utf8').split('\n').filter((l) => l.startsWith('{'));

/** The receiver's heap in use right after a full GC (the receiver runs with --expose-gc and gcOnSignal). */
async function receiverHeapAfterGc(): Promise<number> {
  rmSync(heapFile, { force: true });
  process.kill(receiver.pid as number, 'SIGUSR2');
  for (let i = 0; i < 1000; i++) {
    try {
      return Number(readFileSync(heapFile, 'utf8'));
    } catch {
      await sleep(10);
    }
  }
  throw new Error('the receiver wrote no heap figure within 10 s');
}

/** Heap in use after a full GC once the first property has warmed up every code path (set by assertHealthy). */
let heapAfterWarmup: number | undefined;
const rssAtStart = rssBytes(receiver.pid as number) as number;
let rssPeak = rssAtStart;
const sampleRss = () => {
  rssPeak = Math.max(rssPeak, rssBytes(receiver.pid as number) ?? 0);
};
const rssSampler = setInterval(sampleRss, 20);

const MEDIA: Record<WireFormat, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };

interface Answer { status: number; contentType: string; body: Buffer; rejected: number; errorMessage: string }

/** POST and check the answer is well-formed OTLP: 200 → ExportTraceServiceResponse, else a google.rpc.Status. */
async function send(format: WireFormat, body: Uint8Array | string, headers: Record<string, string> = {}, label = ''): Promise<Answer> {
  const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': MEDIA[format], 'x-api-key': r.key, ...headers }, body });
  const buf = Buffer.from(await res.arrayBuffer());
  const contentType = res.headers.get('content-type') ?? '';
  const where = `${label} → ${res.status} ${buf.toString('utf8').slice(0, 300)}`;
  assert.ok([200, 400, 413].includes(res.status), `never a 5xx or anything else: ${where}`);
  assert.match(contentType, new RegExp(`^${MEDIA[format]}(;|$)`), where);
  if (res.status !== 200) {
    const st = decodeStatus(format, buf);
    assert.equal(st.code, 3, where);
    assert.ok(st.message.length > 0, where);
    return { status: res.status, contentType, body: buf, rejected: 0, errorMessage: '' };
  }
  let partial: { rejectedSpans?: string | number; errorMessage?: string } | undefined;
  if (format === 'json') partial = (JSON.parse(buf.toString('utf8')) as { partialSuccess?: typeof partial }).partialSuccess;
  else partial = (ExportResponse.toObject(ExportResponse.decode(buf), { longs: String }) as { partialSuccess?: typeof partial }).partialSuccess;
  return { status: 200, contentType, body: buf, rejected: Number(partial?.rejectedSpans ?? 0), errorMessage: partial?.errorMessage ?? '' };
}

/** Requests the receiver has counted (strathon_http_requests_total) by status class ('2', '4', '5'), whoever sent them. */
async function receiverAnswers(): Promise<Record<string, number>> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^strathon_http_requests_total\{[^}]*status="(\d)\d\d"[^}]*\} (\d+)$/gm)) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[2]);
  return out;
}

async function assertHealthy() {
  assert.equal(receiver.child.exitInfo, undefined, `the receiver is running (${JSON.stringify(receiver.child.exitInfo)})`);
  heapAfterWarmup ??= await receiverHeapAfterGc();
  const h = await fetch(`${r.url}/health`);
  assert.equal(h.status, 200);
  await h.arrayBuffer();
  sampleRss();
  assert.ok(rssPeak < RSS_BOUND, `receiver RSS peaked at ${(rssPeak / 1048576).toFixed(1)} MiB`);
}

const T0 = 1_700_000_000_000_000_000n;
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Distinct (trace_id, span_id) pairs of the listed spans that are stored. */
async function storedPairs(pairs: { traceId: string; spanId: string }[]): Promise<number> {
  if (pairs.length === 0) return 0;
  const q = await r.pool.query<{ n: number }>(
    `SELECT count(*)::int n FROM telemetry.spans s JOIN unnest($1::text[], $2::text[]) AS p(t, sp)
       ON s.trace_id = decode(p.t, 'hex') AND s.span_id = decode(p.sp, 'hex')`,
    [pairs.map((p) => p.traceId), pairs.map((p) => p.spanId)]);
  return q.rows[0]?.n ?? 0;
}

/** The spans a protobuf body decodes to, as the receiver sees them (undefined when it does not decode). */
function decodedPairs(body: Uint8Array): { traceId: string; spanId: string }[] | undefined {
  let m: { resourceSpans?: { scopeSpans?: { spans?: { traceId?: Uint8Array; spanId?: Uint8Array }[] }[] }[] };
  try {
    m = ExportRequest.decode(body) as unknown as typeof m;
  } catch {
    return undefined;
  }
  return (m.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((s) => ({ traceId: hexOf(s.traceId ?? new Uint8Array()), spanId: hexOf(s.spanId ?? new Uint8Array()) }))));
}

/** 200 means: every decoded span is either counted as rejected or stored. */
async function assertAccounted(a: Answer, pairs: { traceId: string; spanId: string }[]) {
  if (a.status !== 200) return;
  const distinct = new Set(pairs.map((p) => `${p.traceId}/${p.spanId}`));
  assert.ok(a.rejected <= pairs.length, `rejected ${a.rejected} of ${pairs.length}`);
  if (distinct.size !== pairs.length) return; // duplicates are stored once; the sum no longer adds up
  assert.equal(await storedPairs(pairs), pairs.length - a.rejected, `stored + rejected = sent (${a.errorMessage})`);
}

/** fc.assert of `property()` RUNS times, split over CONCURRENCY shards in flight at once (a fresh property per shard). */
async function assertRuns<Ts extends [unknown, ...unknown[]]>(property: () => fc.IAsyncProperty<Ts>, seed: number): Promise<void> {
  const base = Math.floor(RUNS / CONCURRENCY);
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, k) => base + (k < RUNS % CONCURRENCY ? 1 : 0))
    .filter((numRuns) => numRuns > 0)
    .map((numRuns, k) => fc.assert(property(), { seed: seed + k * 1000, numRuns })));
}

const idArb = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).filter((b) => b.some((x) => x !== 0));

/** A valid, rich protobuf request (all value types, events, links) with ids drawn by fast-check. */
const validPbArb = fc.array(fc.tuple(idArb(16), idArb(8), fc.string({ maxLength: 20 })), { minLength: 1, maxLength: 4 }).map((spans) => {
  const msg = ExportRequest.fromObject({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fuzz' } }], droppedAttributesCount: 1 },
      schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
      scopeSpans: [{
        scope: { name: 'fuzz', version: '1', attributes: [{ key: 'sc', value: { boolValue: true } }] },
        spans: spans.map(([traceId, spanId, name], i) => ({
          traceId: Buffer.from(traceId), spanId: Buffer.from(spanId), parentSpanId: Buffer.from('0102030405060708', 'hex'), traceState: 'k=v', flags: 1,
          name, kind: 1 + (i % 5), startTimeUnixNano: Long.fromString(String(T0 + BigInt(i)), true), endTimeUnixNano: Long.fromString(String(T0 + 1000n + BigInt(i)), true),
          attributes: [
            { key: 's', value: { stringValue: 'v' } }, { key: 'i', value: { intValue: Long.fromString('-9007199254740993') } }, { key: 'd', value: { doubleValue: 0.5 } },
            { key: 'b', value: { boolValue: true } }, { key: 'y', value: { bytesValue: Buffer.from([0, 255]) } },
            { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: 1 }] } } },
            { key: 'k', value: { kvlistValue: { values: [{ key: 'n', value: { doubleValue: 1 } }] } } },
            { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o' } }, { key: 'gen_ai.usage.input_tokens', value: { intValue: 10 } },
          ],
          droppedAttributesCount: 2, droppedEventsCount: 3, droppedLinksCount: 4,
          events: [{ timeUnixNano: Long.fromString(String(T0 + 500n), true), name: 'ev', attributes: [{ key: 'e', value: { intValue: 7 } }], droppedAttributesCount: 1 }],
          links: [{ traceId: Buffer.from(traceId), spanId: Buffer.from('1111111111111111', 'hex'), traceState: 'l=1', attributes: [{ key: 'l', value: { stringValue: 'x' } }], flags: 1 }],
          status: { code: 2, message: 'boom' },
        })),
      }],
    }],
  });
  return Buffer.from(ExportRequest.encode(msg).finish());
});

// ---------------------------------------------------------------------------------------------

test('arbitrary bytes as protobuf and as JSON: 200 or 400, never a 5xx', async () => {
  await assertRuns(() => fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), async (bytes) => {
    const a = await send('protobuf', bytes);
    const pairs = decodedPairs(bytes);
    if (pairs === undefined) assert.equal(a.status, 400);
    else await assertAccounted(a, pairs);
  }), SEED + 1);
  await assertRuns(() => fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 4096 }), fc.json({ maxDepth: 6 }), fc.string({ unit: 'binary', maxLength: 300 })), async (body) => {
    const a = await send('json', body);
    assert.ok(a.status === 200 || a.status === 400);
  }), SEED + 2);
  await assertHealthy();
});

test('truncated and bit-flipped valid protobuf requests: 200 or 400; a 200 accounts for every span', async () => {
  await assertRuns(() => fc.asyncProperty(validPbArb, fc.double({ min: 0, max: 1, noNaN: true }), async (body, at) => {
    const cut = body.subarray(0, Math.min(body.length - 1, Math.floor(at * body.length)));
    const a = await send('protobuf', cut);
    const pairs = decodedPairs(cut);
    if (pairs === undefined) assert.equal(a.status, 400, 'what protobufjs cannot decode is a 400');
    else await assertAccounted(a, pairs);
  }), SEED + 3);
  await assertRuns(() => fc.asyncProperty(validPbArb, fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), async (body, flips) => {
    const mutated = Buffer.from(body);
    for (const f of flips) mutated[(f >> 3) % mutated.length] = (mutated[(f >> 3) % mutated.length] as number) ^ (1 << (f & 7));
    const a = await send('protobuf', mutated);
    const pairs = decodedPairs(mutated);
    if (pairs === undefined) assert.equal(a.status, 400);
    else await assertAccounted(a, pairs);
  }), SEED + 4);
  await assertHealthy();
});

test('deeply nested JSON (100k brackets, deep AnyValue arrays and kvlists) is a 400 or a rejected span, never a crash', async () => {
  const span = (value: string) => `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"deep","startTimeUnixNano":"${T0}","attributes":[{"key":"deep","value":${value}}]}]}]}]}`;
  const deepArray = (n: number) => `${'{"arrayValue":{"values":['.repeat(n)}{"stringValue":"x"}${']}}'.repeat(n)}`;
  const deepKv = (n: number) => `${'{"kvlistValue":{"values":[{"key":"k","value":'.repeat(n)}{"intValue":"1"}${'}]}}'.repeat(n)}`;
  const cases: [string, string, number[]][] = [
    ['100k [', '['.repeat(100_000), [400]],
    ['100k [ closed', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, [400]],
    ['100k {"a": (an unknown field: ignored)', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`, [200]],
    ['50k {"resourceSpans":', `${'{"resourceSpans":'.repeat(50_000)}1${'}'.repeat(50_000)}`, [400]],
    ['100k [ in an ignored field', `{"resourceSpans":[],"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, [200]],
    ['100k [ with a big int (lossless parser)', `{"n":12345678901234567890,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, [200, 400]],
    ['AnyValue arrays 32 deep', span(deepArray(32)), [200]],
    ['AnyValue arrays 40 deep', span(deepArray(40)), [200]],
    ['AnyValue arrays 5000 deep', span(deepArray(5000)), [200]],
    ['AnyValue arrays 5000 deep, lossless parser', span(deepArray(5000)).replace('{', '{"n":12345678901234567890,'), [200, 400]],
    ['AnyValue kvlists 5000 deep', span(deepKv(5000)), [200]],
  ];
  for (const [name, text, expected] of cases) {
    assert.ok(Buffer.byteLength(text) <= LIMIT, `${name} fits the body limit`);
    const a = await send('json', text);
    assert.ok(expected.includes(a.status), `${name}: ${a.status} ${a.body.toString('utf8').slice(0, 200)}`);
  }
  // Within the depth limit the span is stored; beyond it, it is rejected and the request still answered.
  const ok = await send('json', span(deepArray(32)).replace('b7ad6b7169203331', 'b7ad6b7169203332'));
  assert.equal(ok.rejected, 0);
  const deep = await send('json', span(deepArray(40)).replace('b7ad6b7169203331', 'b7ad6b7169203333'));
  assert.equal(deep.rejected, 1);
  assert.match(deep.errorMessage, /nested more than 32 levels/);
  await assertHealthy();
});

// Protobuf wire helpers for hand-built deep messages (protobufjs's encoder recurses).
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
const lenField = (field: number, payload: Buffer) => Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);

/** An ExportTraceServiceRequest whose one span carries `attr` (KeyValue bytes) next to valid ids and times. */
function pbWithAttribute(traceId: string, spanId: string, attr: Buffer): Buffer {
  const base = Buffer.from(ExportRequest.encode(ExportRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from(spanId, 'hex'), name: 'deep', startTimeUnixNano: Long.fromString(String(T0), true) }] }] }] })).finish());
  // Re-wrap: Span ‖ attributes(9), inside ScopeSpans.spans(2), ResourceSpans.scope_spans(2), request.resource_spans(1).
  const m = ExportRequest.decode(base) as unknown as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
  const spanType = ExportRequest.lookupType('opentelemetry.proto.trace.v1.Span');
  const spanBytes = Buffer.concat([Buffer.from(spanType.encode(m.resourceSpans[0]!.scopeSpans[0]!.spans[0] as object).finish()), lenField(9, attr)]);
  return lenField(1, lenField(2, lenField(2, spanBytes)));
}

/** KeyValue{key: "deep", value: AnyValue nested `depth` times}, built prefix by prefix (no quadratic copying). */
function deepAnyValue(depth: number, kind: 'array' | 'kvlist'): Buffer {
  const inner = lenField(1, Buffer.from('x')); // AnyValue.string_value
  const prefixes: Buffer[] = [];
  let size = inner.length;
  const push = (p: Buffer) => {
    prefixes.push(p);
    size += p.length;
  };
  const wrap = (field: number) => push(Buffer.concat([varint((field << 3) | 2), varint(size)]));
  for (let i = 0; i < depth; i++) {
    if (kind === 'array') {
      wrap(1); // ArrayValue.values
      wrap(5); // AnyValue.array_value
    } else {
      wrap(2); // KeyValue.value
      push(lenField(1, Buffer.from('k'))); // KeyValue.key (precedes the value)
      wrap(1); // KeyValueList.values
      wrap(6); // AnyValue.kvlist_value
    }
  }
  const value = Buffer.concat([...prefixes.reverse(), inner]);
  return Buffer.concat([lenField(1, Buffer.from('deep')), lenField(2, value)]); // KeyValue
}

/** The same KeyValue as protobufjs encodes it (small depths only: its encoder recurses). */
function deepAnyValueReference(depth: number, kind: 'array' | 'kvlist'): Buffer {
  let v: object = { stringValue: 'x' };
  for (let i = 0; i < depth; i++) v = kind === 'array' ? { arrayValue: { values: [v] } } : { kvlistValue: { values: [{ key: 'k', value: v }] } };
  const KeyValue = ExportRequest.lookupType('opentelemetry.proto.common.v1.KeyValue');
  return Buffer.from(KeyValue.encode(KeyValue.fromObject({ key: 'deep', value: v })).finish());
}

test('deeply nested AnyValue arrays and kvlists in protobuf: 200 (stored or rejected) or 400, never a 5xx', async () => {
  let n = 0;
  for (const kind of ['array', 'kvlist'] as const) {
    for (const depth of [1, 10, 30, 32, 33, 40, 45, 60, 100, 1000, 10_000, kind === 'array' ? 100_000 : 50_000]) {
      const traceId = `0af7651916cd43dd8448eb211c8${(n++).toString(16).padStart(5, '0')}`;
      const spanId = 'b7ad6b7169203331';
      const body = pbWithAttribute(traceId, spanId, deepAnyValue(depth, kind));
      assert.ok(body.length <= LIMIT, `${kind} ${depth}: ${body.length} bytes fit the limit`);
      if (depth <= 20) assert.deepEqual(deepAnyValue(depth, kind), deepAnyValueReference(depth, kind), 'hand-built bytes = protobufjs bytes');
      const a = await send('protobuf', body);
      assert.ok(a.status === 200 || a.status === 400, `${kind} ${depth}`);
      if (a.status === 400) assert.match(decodeStatus('protobuf', a.body).message, /depth|nested/);
      if (a.status === 200) {
        const stored = await storedPairs([{ traceId, spanId }]);
        assert.equal(stored + a.rejected, 1, `${kind} ${depth}: stored or rejected (${a.errorMessage})`);
      }
    }
  }
  await assertHealthy();
});

test('huge strings near the body limit are stored whole; over the limit is 413, compressed or not', async () => {
  for (const format of ['json', 'protobuf'] as WireFormat[]) {
    for (const [i, ch] of ['a', 'é', '日', '😀'].entries()) {
      const traceId = `aa${format === 'json' ? '1' : '2'}${i}${'0'.repeat(27)}1`;
      const make = (x: string) => (format === 'json' ? jsonSpan(traceId, x) : pbString(traceId, x));
      // The string is both the span name and an attribute value; leave a little room for length prefixes.
      const room = (LIMIT - Buffer.byteLength(make('')) - 64) / 2;
      const s = ch.repeat(Math.floor(room / Buffer.byteLength(ch)));
      const body = make(s);
      assert.ok(Buffer.byteLength(body) <= LIMIT && Buffer.byteLength(body) > LIMIT - 128, `${Buffer.byteLength(body)}`);
      const a = await send(format, body);
      assert.equal(a.status, 200, `${format} ${ch}`);
      assert.equal(a.rejected, 0);
      const q = await r.pool.query(`SELECT length(name) n, attributes->'big'->>'stringValue' = name same FROM telemetry.spans WHERE trace_id = decode($1, 'hex')`, [traceId]);
      assert.deepEqual(q.rows[0], { n: [...s].length, same: true }, `${format} ${ch}: stored whole`);
      const over = make(`${s}${'z'.repeat(64)}`);
      assert.equal((await send(format, over)).status, 413);
      // Compressed, the same body is far under the wire limit; the decompressed limit still holds.
      assert.equal((await send(format, zlib.gzipSync(over), { 'content-encoding': 'gzip' })).status, 413);
    }
  }
  await assertHealthy();
});

function jsonSpan(traceId: string, s: string): string {
  return JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: '0102030405060708', name: s, startTimeUnixNano: String(T0), attributes: [{ key: 'big', value: { stringValue: s } }] }] }] }] });
}
function pbString(traceId: string, s: string): Buffer {
  return Buffer.from(ExportRequest.encode(ExportRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from('0102030405060708', 'hex'), name: s, startTimeUnixNano: Long.fromString(String(T0), true), attributes: [{ key: 'big', value: { stringValue: s } }] }] }] }] })).finish());
}

// ---------------------------------------------------------------------------------------------
// Wrong JSON types in every field

function richJsonRequest(ids: { t1: string; s1: string; t2: string; s2: string }) {
  const kv = (key: string, value: unknown) => ({ key, value });
  return {
    resourceSpans: [{
      resource: { attributes: [kv('service.name', { stringValue: 'fuzz-json' }), kv('r.int', { intValue: '5' })], droppedAttributesCount: 1 },
      schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
      scopeSpans: [{
        scope: { name: 'scope', version: '1.0', attributes: [kv('sc', { boolValue: true })], droppedAttributesCount: 0 },
        schemaUrl: 'https://s',
        spans: [
          {
            traceId: ids.t1, spanId: ids.s1, parentSpanId: '0102030405060708', traceState: 'a=b', flags: 1, name: 'rich', kind: 2,
            startTimeUnixNano: String(T0), endTimeUnixNano: String(T0 + 1000n),
            attributes: [
              kv('s', { stringValue: 'v' }), kv('i', { intValue: '-12' }), kv('d', { doubleValue: 1.5 }), kv('b', { boolValue: false }),
              kv('y', { bytesValue: 'AAE=' }), kv('a', { arrayValue: { values: [{ stringValue: 'x' }, { intValue: 3 }] } }),
              kv('k', { kvlistValue: { values: [kv('n', { doubleValue: 2 })] } }), kv('gen_ai.usage.input_tokens', { intValue: '100' }),
              kv('gen_ai.request.model', { stringValue: 'gpt-4o' }),
            ],
            droppedAttributesCount: 0,
            events: [{ timeUnixNano: String(T0 + 10n), name: 'ev', attributes: [kv('e', { stringValue: 'x' })], droppedAttributesCount: 0 }],
            droppedEventsCount: 0,
            links: [{ traceId: ids.t2, spanId: ids.s2, traceState: 'c=d', attributes: [kv('l', { intValue: 1 })], droppedAttributesCount: 0, flags: 1 }],
            droppedLinksCount: 0,
            status: { code: 'STATUS_CODE_ERROR', message: 'bad' },
          },
          { traceId: ids.t2, spanId: ids.s2, name: 'plain', startTimeUnixNano: String(T0), endTimeUnixNano: String(T0 + 1n) },
        ],
      }],
    }],
  };
}

type JsonPath = (string | number)[];
function paths(v: unknown, at: JsonPath = []): JsonPath[] {
  const out: JsonPath[] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}
function setPath(doc: unknown, p: JsonPath, value: unknown): unknown {
  if (p.length === 0) return value;
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let o = copy;
  for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[p[p.length - 1] as string | number] = value;
  return copy;
}

/** Spans the receiver will see in a (possibly mangled) OTLP JSON document, with their ids as sent. */
function jsonPairs(doc: unknown): { traceId: string; spanId: string }[] {
  const out: { traceId: string; spanId: string }[] = [];
  const rs = (doc as { resourceSpans?: unknown })?.resourceSpans;
  for (const r1 of Array.isArray(rs) ? rs : []) {
    const ss = (r1 as { scopeSpans?: unknown })?.scopeSpans;
    for (const s1 of Array.isArray(ss) ? ss : []) {
      const spans = (s1 as { spans?: unknown })?.spans;
      for (const sp of Array.isArray(spans) ? spans : []) {
        const o = (sp ?? {}) as { traceId?: unknown; spanId?: unknown };
        const hexOrNone = (v: unknown) => (typeof v === 'string' && /^([0-9a-fA-F]{2})*$/.test(v) ? v : '');
        out.push({ traceId: hexOrNone(o.traceId), spanId: hexOrNone(o.spanId) });
      }
    }
  }
  return out;
}

const WRONG: unknown[] = [null, -1, 1.5, 1e308, 'x', '99999999999999999999999', [1], { x: 1 }];

test('wrong JSON types in every field: 200 (spans stored or rejected) or 400, never a 5xx', async () => {
  let seq = 0;
  const ids = () => {
    const n = (seq++).toString(16).padStart(12, '0');
    return { t1: `f1f1${n}0000000000000001`, s1: `5151${n}`, t2: `f2f2${n}0000000000000002`, s2: `5252${n}` };
  };
  const all = paths(richJsonRequest(ids()));
  const jobs = all.flatMap((p) => WRONG.map((w) => ({ p, w })));
  const statuses = new Map<number, number>();
  // Eight at a time: the writer batches concurrent requests, which this also exercises.
  for (let i = 0; i < jobs.length; i += 8) {
    await Promise.all(jobs.slice(i, i + 8).map(async ({ p, w }) => {
      const doc = setPath(richJsonRequest(ids()), p, w);
      const a = await send('json', JSON.stringify(doc), {}, `${p.join('.')} = ${JSON.stringify(w)}`);
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      await assertAccounted(a, jsonPairs(doc));
    }));
  }
  assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, JSON.stringify([...statuses]));
  await assertHealthy();
});

test('a random wrong-typed value at a random path: 200 accounts for every span, or 400', async () => {
  let seq = 0;
  const ids = () => {
    const n = (seq++).toString(16).padStart(12, '0');
    return { t1: `e1e1${n}0000000000000001`, s1: `4141${n}`, t2: `e2e2${n}0000000000000002`, s2: `4242${n}` };
  };
  const all = paths(richJsonRequest(ids()));
  await assertRuns(() => fc.asyncProperty(fc.constantFrom(...all), fc.jsonValue({ maxDepth: 3 }), async (p, value) => {
    const doc = setPath(richJsonRequest(ids()), p, value);
    const a = await send('json', JSON.stringify(doc));
    await assertAccounted(a, jsonPairs(doc));
  }), SEED + 5);
  await assertHealthy();
});

test('uint32 counts at their maximum and out-of-range event times do not fail the whole request (regression)', async () => {
  const traceId = 'c0ffee00000000000000000000000001';
  const good = { traceId, spanId: '0000000000000001', name: 'max-counts', startTimeUnixNano: String(T0), droppedAttributesCount: 4294967295, droppedEventsCount: 4294967295, droppedLinksCount: 4294967295, flags: 4294967295, events: [{ timeUnixNano: String(T0), name: 'e', droppedAttributesCount: 4294967295 }] };
  const badEvent = { traceId, spanId: '0000000000000002', name: 'bad-event-time', startTimeUnixNano: String(T0), events: [{ timeUnixNano: '18446744073709551615', name: 'e' }] };
  const doc = { resourceSpans: [{ resource: { attributes: [], droppedAttributesCount: 4294967295 }, scopeSpans: [{ scope: { name: 's', droppedAttributesCount: 4294967295 }, spans: [good, badEvent] }] }] };
  const a = await send('json', JSON.stringify(doc));
  assert.equal(a.status, 200, a.body.toString('utf8'));
  assert.equal(a.rejected, 1);
  assert.match(a.errorMessage, /time_unix_nano/);
  const q = await r.pool.query(`SELECT dropped_attributes_count a, dropped_events_count e, dropped_links_count l, resource_dropped_attributes_count r, scope_dropped_attributes_count s, flags FROM telemetry.spans WHERE trace_id = decode($1, 'hex') AND span_id = decode('0000000000000001', 'hex')`, [traceId]);
  assert.deepEqual(q.rows[0], { a: 2147483647, e: 2147483647, l: 2147483647, r: 2147483647, s: 2147483647, flags: '4294967295' }, 'counts saturate at the column maximum');
  // The same in protobuf, where these are uint32 and fixed64 fields.
  const pb = ExportRequest.fromObject({
    resourceSpans: [{
      resource: { droppedAttributesCount: 4294967295 },
      scopeSpans: [{
        spans: [
          { traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from('0000000000000003', 'hex'), name: 'max-counts', startTimeUnixNano: Long.fromString(String(T0), true), droppedAttributesCount: 4294967295, droppedEventsCount: 4294967295, droppedLinksCount: 4294967295, flags: 4294967295 },
          { traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from('0000000000000004', 'hex'), name: 'bad-event-time', startTimeUnixNano: Long.fromString(String(T0), true), events: [{ timeUnixNano: Long.MAX_UNSIGNED_VALUE, name: 'e' }] },
        ],
      }],
    }],
  });
  const b = await send('protobuf', ExportRequest.encode(pb).finish());
  assert.equal(b.status, 200);
  assert.equal(b.rejected, 1);
  assert.equal(await storedPairs([{ traceId, spanId: '0000000000000003' }]), 1);
});

test('int64 number tokens beyond 2^53 stay exact in pretty-printed JSON (the lossless-parser switch)', async () => {
  const traceId = 'e0a0000000000000000000000000000e';
  const text = `{\n  "resourceSpans" : [ {\n "scopeSpans" :\n[ { "spans" : [ { "traceId" : "${traceId}", "spanId" : "0102030405060708", "name" : "exact 12345678901234567890",
    "startTimeUnixNano" :\n\t1700000000123456789, "endTimeUnixNano": 1700000000123456799,
    "attributes" : [ { "key" : "n", "value" : { "intValue" :   -9007199254740993 } }, {"key":"a","value":{"arrayValue":{"values":[{"intValue"\r\n: 9223372036854775807}]}}} ] } ] } ] } ]\n}`;
  const a = await send('json', text);
  assert.equal(a.status, 200);
  assert.equal(a.rejected, 0, a.errorMessage);
  const q = await r.pool.query(`SELECT start_time_unix_nano s, end_time_unix_nano e, attributes FROM telemetry.spans WHERE trace_id = decode($1, 'hex')`, [traceId]);
  assert.deepEqual(q.rows[0], {
    s: '1700000000123456789', e: '1700000000123456799',
    attributes: { n: { intValue: '-9007199254740993' }, a: { arrayValue: { values: [{ intValue: '9223372036854775807' }] } } },
  });
});

// ---------------------------------------------------------------------------------------------
// Text that Postgres cannot take as is

/** What the receiver stores for a string: NUL and lone surrogates become U+FFFD, nothing else changes. */
const storedForm = (s: string) => s.replaceAll('\u0000', '\uFFFD').toWellFormed();

const nastyString = fc.array(fc.oneof(
  fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ude00', '\ufffd', '\u0000\u0000', 'a\ud800b', '"', '\\'),
  fc.string({ unit: 'binary', maxLength: 6 }),
), { maxLength: 12 }).map((parts) => parts.join(''));

test('NUL and lone surrogates in JSON strings: accepted spans are stored, with only those characters replaced', async () => {
  let seq = 0;
  await fc.assert(fc.asyncProperty(nastyString, nastyString, nastyString, async (name, key, value) => {
    const traceId = `d0d0${(seq++).toString(16).padStart(28, '0')}`;
    const span = {
      traceId, spanId: '0102030405060708', name, startTimeUnixNano: String(T0), traceState: value,
      attributes: [{ key: `k${key}`, value: { stringValue: value } }, { key: 'arr', value: { arrayValue: { values: [{ stringValue: name }] } } }],
      events: [{ timeUnixNano: String(T0), name: value }], status: { code: 2, message: name },
    };
    // Both JSON readers: the plain one, and the lossless one that a 16+ digit number token switches on.
    for (const big of [false, true]) {
      const doc = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: key } }] }, scopeSpans: [{ scope: { name: key }, spans: [{ ...span, spanId: big ? '0102030405060709' : span.spanId }] }] }] };
      const text = big ? `{"n":12345678901234567890,${JSON.stringify(doc).slice(1)}` : JSON.stringify(doc);
      const a = await send('json', text);
      assert.equal(a.status, 200, a.body.toString('utf8'));
      assert.equal(a.rejected, 0, a.errorMessage);
      const q = await r.pool.query(
        `SELECT name, status_message, trace_state, attributes, scope_name, service_name,
                (SELECT name FROM telemetry.span_events e WHERE e.trace_id = s.trace_id AND e.span_id = s.span_id) ev
         FROM telemetry.spans s WHERE trace_id = decode($1, 'hex') AND span_id = decode($2, 'hex')`, [traceId, big ? '0102030405060709' : '0102030405060708']);
      assert.equal(q.rows.length, 1, 'the acknowledged span is stored');
      const row = q.rows[0];
      assert.equal(row.name, storedForm(name));
      assert.equal(row.status_message, name === '' ? null : storedForm(name));
      assert.equal(row.trace_state, value === '' ? null : storedForm(value));
      assert.equal(row.ev, storedForm(value));
      assert.deepEqual(row.attributes[storedForm(`k${key}`)], { stringValue: storedForm(value) });
      assert.deepEqual(row.attributes.arr, { arrayValue: { values: [{ stringValue: storedForm(name) }] } });
      assert.equal(row.scope_name, key === '' ? null : storedForm(key));
      assert.equal(row.service_name, storedForm(key));
    }
  }), { seed: SEED + 6, numRuns: 100 });
  await assertHealthy();
});

// proto3 requires string fields to be valid UTF-8: like the OpenTelemetry Collector, the receiver refuses
// a request carrying invalid UTF-8 (400, never retried); valid UTF-8 with NUL is stored with U+FFFD.
test('invalid UTF-8 in protobuf strings is a 400 naming UTF-8; NUL bytes are stored as U+FFFD', async () => {
  let seq = 0;
  const strict = new TextDecoder('utf-8', { fatal: true });
  const isUtf8 = (b: Uint8Array) => {
    try {
      strict.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const utf8ish = fc.array(fc.oneof(
    { arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map((x) => Buffer.from(x)), weight: 6 },
    { arbitrary: fc.constantFrom(Buffer.from([0]), Buffer.from('\u0000\u0000'), Buffer.from('ok ✓')), weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 6 }), weight: 1 },
    { arbitrary: fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xc0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80])), weight: 1 },
  ), { maxLength: 4 }).map((parts) => Buffer.concat(parts));
  let accepted = 0;
  let refused = 0;
  await fc.assert(fc.asyncProperty(utf8ish, utf8ish, async (nameBytes, valueBytes) => {
    const traceId = `b0b0${(seq++).toString(16).padStart(28, '0')}`;
    const spanId = '0102030405060708';
    // Span{trace_id(1), span_id(2), name(5), start(7)} ‖ attributes(9) {key(1), value(2){string_value(1)}} ‖ status(15){message(2)}.
    const fixed64 = Buffer.alloc(8);
    fixed64.writeBigUInt64LE(T0);
    const span = Buffer.concat([
      lenField(1, Buffer.from(traceId, 'hex')), lenField(2, Buffer.from(spanId, 'hex')), lenField(5, nameBytes),
      Buffer.from([(7 << 3) | 1]), fixed64,
      lenField(9, Buffer.concat([lenField(1, valueBytes), lenField(2, lenField(1, valueBytes))])),
      lenField(15, lenField(2, nameBytes)),
    ]);
    const a = await send('protobuf', lenField(1, lenField(2, lenField(2, span))));
    const q = await r.pool.query(`SELECT name, status_message, attributes FROM telemetry.spans WHERE trace_id = decode($1, 'hex')`, [traceId]);
    if (!isUtf8(nameBytes) || !isUtf8(valueBytes)) {
      refused++;
      assert.equal(a.status, 400);
      assert.match(decodeStatus('protobuf', a.body).message, /utf-8/i);
      assert.equal(q.rows.length, 0);
      return;
    }
    accepted++;
    assert.equal(a.status, 200, a.body.toString('utf8'));
    assert.equal(a.rejected, 0, a.errorMessage);
    assert.equal(q.rows.length, 1, 'the acknowledged span is stored');
    const name = storedForm(nameBytes.toString('utf8'));
    const value = storedForm(valueBytes.toString('utf8'));
    assert.equal(q.rows[0].name, name);
    assert.equal(q.rows[0].status_message, name === '' ? null : name);
    assert.deepEqual(q.rows[0].attributes, { [value]: { stringValue: value } });
  }), { seed: SEED + 7, numRuns: 300 });
  assert.ok(accepted > 20 && refused > 20, `both kinds exercised (${accepted} valid, ${refused} invalid)`);
  await assertHealthy();
});

test('rejection reasons cannot mint unbounded metric label values (regression)', async (t) => {
  // Distinct kinds, status codes, enum garbage and path shapes: each used to become its own `reason` series.
  const spans = Array.from({ length: 200 }, (_, i) => ({
    traceId: `abcd${i.toString(16).padStart(28, '0')}`, spanId: '0102030405060708', name: 'label', startTimeUnixNano: String(T0),
    ...[{ kind: 6 + i }, { status: { code: 3 + i } }, { kind: { [`k${i}`]: [i] } }, { kind: `SPAN_KIND_${i}` }][i % 4],
  }));
  assert.equal((await send('json', JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }))).rejected, spans.length);
  const pb = ExportRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: spans.slice(0, 100).map((s, i) => ({ traceId: Buffer.from(s.traceId, 'hex'), spanId: Buffer.from(s.spanId, 'hex'), name: 'label', startTimeUnixNano: Long.fromString(String(T0), true), kind: 1000 + i })) }] }] });
  assert.equal((await send('protobuf', ExportRequest.encode(pb).finish())).rejected, 100);
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  const series = metrics.split('\n').filter((l) => l.startsWith('strathon_spans_rejected_total{'));
  t.diagnostic(`${series.length} rejection reason series after the whole fuzz run`);
  assert.ok(series.length > 0 && series.length <= 40, series.slice(0, 50).join('\n'));
});

test('the receiver is still healthy, its RSS stayed bounded, nothing leaked, and it exits cleanly', async (t) => {
  await assertHealthy();
  const heapGrowth = (await receiverHeapAfterGc()) - (heapAfterWarmup ?? 0);
  const answers = await receiverAnswers();
  const serverErrors = answers['5'] ?? 0;
  sampleRss();
  t.diagnostic(`receiver peak RSS ${(rssPeak / 1048576).toFixed(1)} MiB (growth ${((rssPeak - rssAtStart) / 1048576).toFixed(1)} MiB from ${(rssAtStart / 1048576).toFixed(1)} MiB after boot); heap retained after GC since warm-up ${(heapGrowth / 1048576).toFixed(1)} MiB; answers by status class ${JSON.stringify(answers)} (body limit ${LIMIT / 1048576} MiB)`);
  assert.ok(rssPeak < RSS_BOUND, `receiver RSS peaked at ${(rssPeak / 1048576).toFixed(1)} MiB`);
  assert.ok(heapGrowth < 32 * 1024 * 1024, 'no per-request state is retained');
  assert.ok((answers['2'] ?? 0) > 0 && (answers['4'] ?? 0) > 0, `the receiver counted its answers: ${JSON.stringify(answers)}`);
  assert.equal(serverErrors, 0, 'the receiver answered no request with a 5xx');
  clearInterval(rssSampler);
  assert.deepEqual(await receiver.stop(10_000), { code: 0, signal: null }, 'SIGTERM: a clean shutdown, not a crash');
  // Every 400 came from the decoders: none from Postgres refusing normalized rows (a normalization gap).
  const lines = logLines();
  for (const line of lines) t.diagnostic(line.slice(0, 300));
  assert.deepEqual(lines.filter((l) => /refused by Postgres|unexpected ingest error|ingest batch failed|uncaught|unhandled/i.test(l)), []);
});
