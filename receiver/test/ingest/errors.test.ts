// Every error case of SPEC §5.1 against the real receiver and Postgres: status, Content-Type and the
// google.rpc.Status body in the request's encoding; nothing of a refused request is stored; bombs
// are cut off at the limit with bounded memory; partial_success counts exactly what was dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import Long from 'long';
import { startTestReceiver, makeKey, hex, DEFAULT_PROJECT_ID } from '../helpers.js';
import { createApiKey } from '../../src/auth/keys.js';
import { ExportRequest, ExportResponse, decodeStatus, type WireFormat } from '../../src/ingest/otlp-wire.js';

const LIMIT = 65_536;
const r = await startTestReceiver({ STRATHON_MAX_BODY_BYTES: String(LIMIT), STRATHON_RATE_LIMIT_ENABLED: 'false' });

// ---------------------------------------------------------------------------------------------
// Clients and fixtures

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer; sent: number }
interface SendOptions {
  method?: string; headers?: Record<string, string | number>; body?: Buffer | string;
  /** Stream this many bytes (chunked, no Content-Length) unless the answer comes first. */
  streamBytes?: number;
  /** Send only the headers and wait for the answer without ever sending the body. */
  headersOnly?: boolean;
}

/** One request on its own connection (node:http, so Content-Length and chunking are ours to choose). */
function send(url: string, o: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let answered = false;
    let sent = 0;
    const req = http.request(`${url}/v1/traces`, { method: o.method ?? 'POST', headers: o.headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), sent });
        if (!req.writableEnded) req.destroy();
      });
      res.on('error', reject);
    });
    // Once answered, a write error (server closed after its 413) is expected, not a failure.
    req.on('error', (err) => { if (!answered) reject(err); });
    if (o.headersOnly) {
      req.flushHeaders();
      return;
    }
    if (o.streamBytes !== undefined) {
      const total = o.streamBytes;
      const chunk = Buffer.alloc(16 * 1024, 0x41);
      const pump = () => {
        while (!answered && sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        if (!answered) req.end();
      };
      pump();
      return;
    }
    if (o.body !== undefined) sent = Buffer.byteLength(o.body);
    req.end(o.body);
  });
}

const MEDIA: Record<WireFormat, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };

function post(body: Buffer | string, format: WireFormat, headers: Record<string, string | number> = {}, key: string | null = r.key, url = r.url) {
  return send(url, {
    body,
    headers: { 'content-type': MEDIA[format], 'content-length': Buffer.byteLength(body), ...(key ? { 'x-api-key': key } : {}), ...headers },
  });
}

/** The answer is a google.rpc.Status in `format` with this HTTP status, gRPC code and message. */
function assertRpcError(res: Reply, status: number, format: WireFormat, code: number, message: RegExp) {
  assert.equal(res.status, status, `HTTP status (body: ${res.body.toString('utf8').slice(0, 200)})`);
  const ct = res.headers['content-type'] ?? '';
  assert.match(ct, new RegExp(`^${MEDIA[format]}(;|$)`), `Content-Type ${ct} is ${MEDIA[format]}`);
  const st = decodeStatus(format, res.body);
  assert.equal(st.code, code, `google.rpc.Status code (message: ${st.message})`);
  assert.match(st.message, message);
  if (format === 'json') assert.deepEqual(Object.keys(JSON.parse(res.body.toString('utf8'))).sort(), ['code', 'message']);
}

const T0 = 1_700_000_000_000_000_000n;

interface JsonSpan { traceId?: unknown; spanId?: unknown; name?: unknown; startTimeUnixNano?: unknown; endTimeUnixNano?: unknown; [k: string]: unknown }

function validSpan(name = 'ok', traceId = hex(16)): JsonSpan {
  return { traceId, spanId: hex(8), name, startTimeUnixNano: String(T0), endTimeUnixNano: String(T0 + 1000n) };
}

function jsonBody(spans: JsonSpan[]): string {
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'errors-test' } }] }, scopeSpans: [{ scope: { name: 'errors' }, spans }] }] });
}

/** The same spans as protobuf: hex ids → bytes, decimal times → fixed64. */
function pbBody(spans: JsonSpan[]): Buffer {
  const pbSpans = spans.map((s) => ({
    ...s,
    traceId: typeof s.traceId === 'string' ? Buffer.from(s.traceId, 'hex') : s.traceId,
    spanId: typeof s.spanId === 'string' ? Buffer.from(s.spanId, 'hex') : s.spanId,
    startTimeUnixNano: s.startTimeUnixNano === undefined ? undefined : Long.fromString(String(s.startTimeUnixNano), true),
    endTimeUnixNano: s.endTimeUnixNano === undefined ? undefined : Long.fromString(String(s.endTimeUnixNano), true),
  }));
  const msg = ExportRequest.fromObject({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'errors-test' } }] }, scopeSpans: [{ scope: { name: 'errors' }, spans: pbSpans }] }] });
  return Buffer.from(ExportRequest.encode(msg).finish());
}

function body(format: WireFormat, spans: JsonSpan[]): Buffer | string {
  return format === 'json' ? jsonBody(spans) : pbBody(spans);
}

async function storedSpanIds(traceIds: string[], pool: pg.Pool = r.pool): Promise<Set<string>> {
  const q = await pool.query<{ s: string }>(`SELECT encode(span_id, 'hex') s FROM telemetry.spans WHERE trace_id = ANY($1::bytea[])`, [traceIds.map((t) => Buffer.from(t, 'hex'))]);
  return new Set(q.rows.map((x) => x.s));
}

async function totals(pool: pg.Pool = r.pool): Promise<{ spans: number; traces: number; events: number }> {
  const q = await pool.query(`SELECT (SELECT count(*) FROM telemetry.spans)::int spans, (SELECT count(*) FROM telemetry.traces)::int traces, (SELECT count(*) FROM telemetry.span_events)::int events`);
  return q.rows[0];
}

/** A successful answer: 200, same Content-Type, an ExportTraceServiceResponse; returns its partial_success. */
function assertExportOk(res: Reply, format: WireFormat): { rejectedSpans: number; errorMessage: string } | undefined {
  assert.equal(res.status, 200, `HTTP status (body: ${res.body.toString('utf8').slice(0, 300)})`);
  assert.match(res.headers['content-type'] ?? '', new RegExp(`^${MEDIA[format]}(;|$)`));
  if (format === 'json') {
    const doc = JSON.parse(res.body.toString('utf8')) as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } };
    if (!doc.partialSuccess) return undefined;
    return { rejectedSpans: Number(doc.partialSuccess.rejectedSpans ?? 0), errorMessage: doc.partialSuccess.errorMessage ?? '' };
  }
  const msg = ExportResponse.toObject(ExportResponse.decode(res.body), { longs: String }) as { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } };
  if (!msg.partialSuccess) return undefined;
  return { rejectedSpans: Number(msg.partialSuccess.rejectedSpans ?? 0), errorMessage: msg.partialSuccess.errorMessage ?? '' };
}

/** Peak growth of this process's RSS (the receiver runs in it) while `fn` runs. */
async function rssGrowthDuring(fn: () => Promise<void>): Promise<number> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 2);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage().rss) - base;
}

function zstdCli(input: { zeroBytes: number } | Buffer, args: string[] = []): Buffer {
  if (Buffer.isBuffer(input)) return execFileSync('zstd', ['-19', '--stdout', '-q', ...args], { input, maxBuffer: 64 * 1024 * 1024 });
  // Zeros streamed from /dev/zero through the CLI: the test process never holds the inflated size.
  return execFileSync('sh', ['-c', `head -c ${input.zeroBytes} /dev/zero | zstd -19 --stdout -q ${args.join(' ')}`], { maxBuffer: 64 * 1024 * 1024 });
}

const FORMATS: WireFormat[] = ['protobuf', 'json'];

// ---------------------------------------------------------------------------------------------
// 405, 415

// SPEC §7.3 also routes GET /v1/traces (the trace list, traces:read), so GET is not a 405 here and
// Allow lists it next to POST; every other method is refused in the request's encoding.
test('405 with Allow naming POST for PUT, DELETE and PATCH on /v1/traces, in the encoding of the request', async () => {
  for (const [method, format] of [['PUT', 'protobuf'], ['DELETE', 'json'], ['PATCH', undefined], ['DELETE', 'protobuf']] as const) {
    const headers: Record<string, string> = { 'x-api-key': r.key };
    if (format) headers['content-type'] = MEDIA[format];
    const res = await send(r.url, { method, headers, body: '' });
    assertRpcError(res, 405, format ?? 'json', 12, /method not allowed.*POST/);
    assert.ok((res.headers.allow ?? '').split(/,\s*/).includes('POST'), `${method}: Allow: ${res.headers.allow}`);
  }
  const list = await send(r.url, { method: 'GET', headers: { 'x-api-key': r.key } });
  assert.equal(list.status, 200, 'GET /v1/traces is the REST trace list of §7.3');
});

test('415 for an unknown or missing Content-Type, answered as JSON', async () => {
  const before = await totals();
  const payload = jsonBody([validSpan()]);
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/grpc', 'application/jsonx', undefined]) {
    const headers: Record<string, string | number> = { 'x-api-key': r.key, 'content-length': Buffer.byteLength(payload) };
    if (ct) headers['content-type'] = ct;
    const res = await send(r.url, { headers, body: payload });
    assertRpcError(res, 415, 'json', 3, /Content-Type.*application\/x-protobuf.*application\/json/);
  }
  assert.deepEqual(await totals(), before, 'nothing stored');
});

test('415 for an unknown Content-Encoding, in both encodings', async () => {
  const before = await totals();
  for (const format of FORMATS) {
    for (const enc of ['br', 'compress', 'gzip, br', 'lz4']) {
      const res = await post(body(format, [validSpan()]), format, { 'content-encoding': enc });
      assertRpcError(res, 415, format, 3, /Content-Encoding.*gzip/);
    }
  }
  assert.deepEqual(await totals(), before, 'nothing stored');
});

// ---------------------------------------------------------------------------------------------
// 413

test('413 when Content-Length is over the limit, answered before any body byte is sent', async () => {
  for (const format of FORMATS) {
    const res = await send(r.url, { headersOnly: true, headers: { 'content-type': MEDIA[format], 'x-api-key': r.key, 'content-length': LIMIT + 1 } });
    assertRpcError(res, 413, format, 3, /exceeds the limit of 65536 bytes/);
    assert.equal(res.sent, 0);
  }
});

test('413 for a chunked body (no Content-Length) that streams past the limit; the receiver stops reading', async () => {
  const total = 64 * 1024 * 1024;
  for (const format of FORMATS) {
    const res = await send(r.url, { streamBytes: total, headers: { 'content-type': MEDIA[format], 'x-api-key': r.key } });
    assertRpcError(res, 413, format, 3, /exceeds the limit of 65536 bytes/);
    assert.ok(res.sent < total, `answered after ${res.sent} of ${total} bytes: the receiver did not read the whole stream`);
  }
  // The receiver is still healthy and takes the next request.
  const ok = await post(jsonBody([validSpan()]), 'json');
  assertExportOk(ok, 'json');
});

test('a client that sends its whole too-large body (fetch, with and without Content-Length) reads the 413, not a reset', async () => {
  for (const size of [LIMIT + 1, 2 * 1024 * 1024, 6 * 1024 * 1024]) {
    for (const format of FORMATS) {
      const payload = Buffer.alloc(size, 0x20);
      const chunked = new ReadableStream<Uint8Array>({
        start(c) {
          for (let off = 0; off < size; off += 256 * 1024) c.enqueue(payload.subarray(off, off + 256 * 1024));
          c.close();
        },
      });
      for (const body of [payload, chunked]) {
        const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': MEDIA[format], 'x-api-key': r.key }, body, duplex: 'half' } as RequestInit);
        const reply: Reply = { status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()), sent: size };
        assertRpcError(reply, 413, format, 3, /exceeds the limit of 65536 bytes/);
      }
    }
  }
  // The receiver is still healthy and takes the next request.
  assertExportOk(await post(jsonBody([validSpan()]), 'json'), 'json');
});

test('413 for a body that is exactly one byte over the limit; exactly at the limit is read', async () => {
  // A span whose name pads the request to the exact size.
  const sized = (n: number) => {
    const s = validSpan('');
    const base = Buffer.byteLength(jsonBody([s]));
    return jsonBody([{ ...s, name: 'x'.repeat(n - base) }]);
  };
  const atLimit = sized(LIMIT);
  assert.equal(Buffer.byteLength(atLimit), LIMIT);
  assertExportOk(await post(atLimit, 'json'), 'json');
  const over = sized(LIMIT + 1);
  assertRpcError(await post(over, 'json'), 413, 'json', 3, /exceeds the limit/);
  // Same with chunked transfer: the limit applies to what is read, not only to the header.
  const res = await send(r.url, { headers: { 'content-type': 'application/json', 'x-api-key': r.key, 'transfer-encoding': 'chunked' }, body: over });
  assertRpcError(res, 413, 'json', 3, /exceeds the limit/);
});

const BOMB_ZEROS = 56 * 1024 * 1024; // compresses under the 64 KiB wire limit at gzip's ~1000:1 ceiling

function bombs(): { name: string; encoding: string; data: Buffer }[] {
  const zeros = Buffer.alloc(BOMB_ZEROS);
  const small = Buffer.alloc(4 * 1024 * 1024);
  // A zstd frame whose header declares 1 TiB of content, then a single 1-byte RLE block.
  const hugeFcs = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), Buffer.from(new BigUint64Array([1n << 40n]).buffer), Buffer.from([0x0b, 0x00, 0x00, 0x00])]);
  // A frame without content size but with a 2 GiB window (window log 31).
  const hugeWindow = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3]), Buffer.from([0x0b, 0x00, 0x00, 0x00])]);
  const list = [
    { name: 'gzip 4 KB → 4 MiB', encoding: 'gzip', data: zlib.gzipSync(small, { level: 9 }) },
    { name: 'gzip max ratio', encoding: 'gzip', data: zlib.gzipSync(zeros, { level: 9 }) },
    { name: 'deflate (zlib) max ratio', encoding: 'deflate', data: zlib.deflateSync(zeros, { level: 9 }) },
    { name: 'deflate (raw) max ratio', encoding: 'deflate', data: zlib.deflateRawSync(zeros, { level: 9 }) },
    { name: 'zstd -19, no content size', encoding: 'zstd', data: zstdCli({ zeroBytes: 1024 * 1024 * 1024 }) },
    { name: 'zstd -19, declared content size', encoding: 'zstd', data: zstdCli({ zeroBytes: 256 * 1024 * 1024 }, ['--stream-size=268435456']) },
    { name: 'zstd hand-made 1 TiB content size header', encoding: 'zstd', data: hugeFcs },
    { name: 'zstd hand-made 2 GiB window', encoding: 'zstd', data: hugeWindow },
  ];
  for (const b of list) assert.ok(b.data.length < LIMIT, `${b.name}: ${b.data.length} wire bytes fit the limit`);
  return list;
}

test('decompression bombs (gzip, deflate zlib/raw, zstd) are cut off at the limit with 413 and bounded memory', async (t) => {
  const list = bombs();
  const before = await totals();
  for (const b of list) {
    for (const format of FORMATS) {
      const res = await post(b.data, format, { 'content-encoding': b.encoding });
      assertRpcError(res, 413, format, 3, /decompressed request body exceeds the limit of 65536 bytes/);
    }
  }
  // Eight of each at once: inflating any of them fully would add ≥ 8 × 56 MiB to RSS.
  for (const b of list) {
    const growth = await rssGrowthDuring(async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, () => post(b.data, 'protobuf', { 'content-encoding': b.encoding })));
      for (const a of answers) assert.equal(a.status, 413, b.name);
    });
    t.diagnostic(`${b.name}: ${b.data.length} wire bytes × 8, peak RSS growth ${(growth / 1024 / 1024).toFixed(1)} MiB`);
    assert.ok(growth < 48 * 1024 * 1024, `${b.name}: RSS grew by ${Math.round(growth / 1024 / 1024)} MiB`);
  }
  assert.deepEqual(await totals(), before, 'nothing stored');
  assert.equal((await fetch(`${r.url}/health`)).status, 200);
});

test('a compressed body that inflates to exactly the limit is accepted; one byte more is 413', async () => {
  const s = validSpan('');
  const base = Buffer.byteLength(jsonBody([s]));
  const exact = Buffer.from(jsonBody([{ ...s, name: 'y'.repeat(LIMIT - base) }]));
  const over = Buffer.from(jsonBody([{ ...s, name: 'y'.repeat(LIMIT - base + 1) }]));
  for (const [enc, fn] of [['gzip', zlib.gzipSync], ['deflate', zlib.deflateSync], ['zstd', (b: Buffer) => zstdCli(b)]] as const) {
    assertExportOk(await post(fn(exact), 'json', { 'content-encoding': enc }), 'json');
    assertRpcError(await post(fn(over), 'json', { 'content-encoding': enc }), 413, 'json', 3, /decompressed request body exceeds/);
  }
  assert.equal((await storedSpanIds([s.traceId as string])).size, 1);
});

// ---------------------------------------------------------------------------------------------
// 400

test('400 INVALID_ARGUMENT for malformed and truncated protobuf', async () => {
  const valid = pbBody([validSpan(), validSpan()]);
  const cases: [string, Buffer][] = [
    ['garbage', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['invalid wire type', Buffer.from([0x0f, 0x01])],
    ['text', Buffer.from('this is not protobuf at all')],
    ['length beyond the end', Buffer.from([0x0a, 0xff, 0x01, 0x00])],
    ['truncated to half', valid.subarray(0, valid.length >> 1)],
    ['truncated by one byte', valid.subarray(0, valid.length - 1)],
  ];
  const before = await totals();
  for (const [name, data] of cases) {
    const res = await post(data, 'protobuf');
    assertRpcError(res, 400, 'protobuf', 3, /malformed protobuf/);
    assert.ok(res.status === 400, name);
  }
  assert.deepEqual(await totals(), before, 'nothing of a malformed request is stored');
});

test('400 INVALID_ARGUMENT for malformed JSON and JSON of the wrong shape', async () => {
  const valid = jsonBody([validSpan()]);
  const cases: [string, string, RegExp][] = [
    ['truncated', valid.slice(0, valid.length - 5), /malformed JSON/],
    ['not JSON', 'hello', /malformed JSON/],
    ['empty body', '', /malformed JSON/],
    ['trailing garbage', `${valid}}`, /malformed JSON/],
    ['array', '[]', /expected an ExportTraceServiceRequest object/],
    ['null', 'null', /expected an ExportTraceServiceRequest object/],
    ['string', '"resourceSpans"', /expected an ExportTraceServiceRequest object/],
    ['resourceSpans not an array', '{"resourceSpans":{"scopeSpans":[]}}', /resourceSpans: expected an array/],
    ['resourceSpans a string', '{"resourceSpans":"x"}', /resourceSpans: expected an array/],
    ['resourceSpans entry not an object', '{"resourceSpans":[1]}', /resourceSpans\[0\]: expected an object/],
    ['scopeSpans not an array', '{"resourceSpans":[{"scopeSpans":7}]}', /scopeSpans: expected an array/],
    ['spans not an array', '{"resourceSpans":[{"scopeSpans":[{"spans":{}}]}]}', /spans: expected an array/],
    ['resource not an object', '{"resourceSpans":[{"resource":[],"scopeSpans":[]}]}', /resource: expected an object/],
    ['resource attributes wrong type', '{"resourceSpans":[{"resource":{"attributes":[{"key":1}]},"scopeSpans":[]}]}', /resource\.attributes\[0\]\.key: expected a string/],
  ];
  const before = await totals();
  for (const [name, text, message] of cases) {
    const res = await post(text, 'json');
    assert.equal(res.status, 400, name);
    assertRpcError(res, 400, 'json', 3, message);
  }
  assert.deepEqual(await totals(), before, 'nothing stored');
});

test('400 INVALID_ARGUMENT for corrupt gzip, deflate and zstd bodies, in the request encoding', async () => {
  const before = await totals();
  for (const format of FORMATS) {
    const plain = Buffer.from(body(format, [validSpan(), validSpan()]));
    const gz = zlib.gzipSync(plain);
    const flipped = Buffer.from(gz);
    flipped[gz.length >> 1] = (flipped[gz.length >> 1] as number) ^ 0xff;
    const badCrc = Buffer.from(gz);
    badCrc[gz.length - 6] = (badCrc[gz.length - 6] as number) ^ 0x01; // CRC32 of the trailer
    const cases: [string, string, Buffer, RegExp][] = [
      ['gzip: not gzip at all', 'gzip', plain, /not valid gzip/],
      ['gzip: truncated', 'gzip', gz.subarray(0, gz.length - 10), /not valid gzip/],
      ['gzip: bit flipped', 'gzip', flipped, /not valid gzip/],
      ['gzip: bad CRC', 'gzip', badCrc, /not valid gzip/],
      ['deflate: not deflate', 'deflate', Buffer.from('definitely not deflate data'), /not valid deflate/],
      ['deflate: truncated', 'deflate', zlib.deflateSync(plain).subarray(0, 10), /not valid deflate/],
      ['zstd: bad magic', 'zstd', plain, /not valid zstd/],
      ['zstd: truncated', 'zstd', zstdCli(plain).subarray(0, 12), /not valid zstd/],
    ];
    for (const [name, enc, data, message] of cases) {
      const res = await post(data, format, { 'content-encoding': enc });
      assert.equal(res.status, 400, `${format} ${name}`);
      assertRpcError(res, 400, format, 3, message);
    }
  }
  assert.deepEqual(await totals(), before, 'nothing stored');
});

// ---------------------------------------------------------------------------------------------
// 401, 403

test('401 UNAUTHENTICATED for a missing, unknown, malformed, revoked or expired key; 403 PERMISSION_DENIED without traces:write', async () => {
  const revoked = await createApiKey(r.pool, { projectId: DEFAULT_PROJECT_ID, name: 'revoked', scopes: ['traces:write'] });
  await r.pool.query('UPDATE core.api_keys SET revoked_at = now() WHERE id = $1', [revoked.id]);
  const expired = await createApiKey(r.pool, { projectId: DEFAULT_PROJECT_ID, name: 'expired', scopes: ['traces:write'] });
  await r.pool.query(`UPDATE core.api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1`, [expired.id]);
  const readOnly = await makeKey(r.pool, ['traces:read']);
  const before = await totals();
  for (const format of FORMATS) {
    const payload = body(format, [validSpan()]);
    const cases: [string, Record<string, string>, number, number, RegExp][] = [
      ['missing', {}, 401, 16, /Invalid API key/],
      ['empty Bearer', { authorization: 'Bearer ' }, 401, 16, /Invalid API key/],
      ['Basic scheme', { authorization: `Basic ${Buffer.from(`u:${r.key}`).toString('base64')}` }, 401, 16, /Invalid API key/],
      ['unknown', { 'x-api-key': `stra_${Buffer.alloc(32, 7).toString('base64url')}` }, 401, 16, /Invalid API key/],
      ['not a stra_ key', { authorization: 'Bearer abc.def.ghi' }, 401, 16, /Invalid API key/],
      ['revoked (Bearer)', { authorization: `Bearer ${revoked.key}` }, 401, 16, /Invalid API key/],
      ['revoked (x-api-key)', { 'x-api-key': revoked.key }, 401, 16, /Invalid API key/],
      ['expired', { authorization: `Bearer ${expired.key}` }, 401, 16, /expired/],
      ['traces:read only (Bearer)', { authorization: `Bearer ${readOnly}` }, 403, 7, /traces:write/],
      ['traces:read only (x-api-key)', { 'x-api-key': readOnly }, 403, 7, /traces:write/],
    ];
    for (const [name, headers, status, code, message] of cases) {
      const res = await post(payload, format, headers, null);
      assert.equal(res.status, status, `${format} ${name}`);
      assertRpcError(res, status, format, code, message);
      if (status === 401) assert.equal(res.headers['www-authenticate'], 'Bearer');
    }
  }
  assert.deepEqual(await totals(), before, 'nothing stored');
});

test('both header forms are accepted: Authorization: Bearer and x-api-key', async () => {
  const writer = await makeKey(r.pool, ['traces:write']);
  for (const format of FORMATS) {
    const forms: Record<string, string>[] = [{ authorization: `Bearer ${writer}` }, { authorization: `bearer   ${writer}` }, { 'x-api-key': writer }];
    for (const headers of forms) {
      const s = validSpan();
      assert.equal(assertExportOk(await post(body(format, [s]), format, headers, null), format), undefined);
      assert.deepEqual(await storedSpanIds([s.traceId as string]), new Set([s.spanId]));
    }
  }
});

// ---------------------------------------------------------------------------------------------
// 429

test('429 RESOURCE_EXHAUSTED with Retry-After and X-RateLimit-*; the bucket is per credential', async () => {
  const rl = await startTestReceiver({ STRATHON_RATE_LIMIT_BURST: '3', STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND: '1' });
  const other = await makeKey(rl.pool, ['traces:write']);
  const stored: string[] = [];
  const refused: string[] = [];
  for (let i = 0; i < 3; i++) {
    const s = validSpan();
    const res = await post(pbBody([s]), 'protobuf', {}, rl.key, rl.url);
    assertExportOk(res, 'protobuf');
    assert.equal(res.headers['x-ratelimit-limit'], '3');
    assert.equal(res.headers['x-ratelimit-remaining'], String(2 - i));
    stored.push(s.traceId as string);
  }
  for (const format of FORMATS) {
    const s = validSpan();
    // The same key in the other header form is the same credential, so the same bucket.
    const res = await post(body(format, [s]), format, { authorization: `Bearer ${rl.key}` }, null, rl.url);
    assertRpcError(res, 429, format, 8, /rate limit exceeded, retry in \d+s/);
    assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
    assert.equal(res.headers['x-ratelimit-limit'], '3');
    assert.equal(res.headers['x-ratelimit-remaining'], '0');
    refused.push(s.traceId as string);
  }
  // Another credential has its own bucket.
  const s = validSpan();
  const res = await post(jsonBody([s]), 'json', {}, other, rl.url);
  assertExportOk(res, 'json');
  assert.equal(res.headers['x-ratelimit-remaining'], '2');
  stored.push(s.traceId as string);
  assert.equal((await storedSpanIds(stored, rl.pool)).size, stored.length);
  assert.equal((await storedSpanIds(refused, rl.pool)).size, 0, 'a 429 stores nothing');
});

// ---------------------------------------------------------------------------------------------
// 503

test('503 UNAVAILABLE with Retry-After when the ingest queue is full; every 200 is stored, no 503 is', async () => {
  const q = await startTestReceiver({ STRATHON_INGEST_QUEUE_MAX_SPANS: '4', STRATHON_RATE_LIMIT_ENABLED: 'false' });
  const blocker = new pg.Client({ connectionString: q.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE telemetry.traces IN ACCESS EXCLUSIVE MODE');
    const requests = Array.from({ length: 16 }, (_, i) => {
      const format: WireFormat = i % 2 ? 'json' : 'protobuf';
      const s = validSpan(`q${i}`);
      let settled = false;
      const reply = post(body(format, [s]), format, {}, q.key, q.url).finally(() => { settled = true; });
      return { format, traceId: s.traceId as string, reply, settled: () => settled };
    });
    // The queue holds 4 spans: 12 requests are refused at once while 4 wait for their commit.
    const deadline = Date.now() + 10_000;
    while (requests.filter((x) => x.settled()).length < 12 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    await new Promise((res) => setTimeout(res, 200));
    const early = requests.filter((x) => x.settled());
    assert.equal(early.length, 12, 'refused at once, not after a wait');
    for (const x of early) {
      const res = await x.reply;
      assertRpcError(res, 503, x.format, 14, /queue full/);
      assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
    }
    await blocker.query('COMMIT');
    const answers = await Promise.all(requests.map(async (x) => ({ ...x, res: await x.reply })));
    const ok = answers.filter((x) => x.res.status === 200);
    const unavailable = answers.filter((x) => x.res.status === 503);
    assert.equal(ok.length, 4);
    assert.equal(unavailable.length, 12);
    for (const x of ok) assertExportOk(x.res, x.format);
    assert.equal((await storedSpanIds(ok.map((x) => x.traceId), q.pool)).size, ok.length, 'every acknowledged span is stored');
    assert.equal((await storedSpanIds(unavailable.map((x) => x.traceId), q.pool)).size, 0, 'no refused span is stored');
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    await blocker.end();
  }
});

// ---------------------------------------------------------------------------------------------
// 200

test('an empty request is a 200 with an ExportTraceServiceResponse and no partial_success', async () => {
  const before = await totals();
  const cases: [WireFormat, Buffer | string][] = [
    ['protobuf', Buffer.alloc(0)],
    ['protobuf', Buffer.from(ExportRequest.encode(ExportRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [] }] }] })).finish())],
    ['json', '{}'],
    ['json', '{"resourceSpans":[]}'],
    ['json', '{"resource_spans":[{"scope_spans":[{"spans":[]}]}]}'],
    ['json', '{"resourceSpans":null}'],
  ];
  for (const [format, data] of cases) {
    const res = await post(data, format);
    assert.equal(assertExportOk(res, format), undefined, `${format} ${String(data)}: no partial_success`);
    if (format === 'json') assert.deepEqual(JSON.parse(res.body.toString('utf8')), {});
    else assert.equal(res.body.length, 0, 'an empty ExportTraceServiceResponse encodes to no bytes');
  }
  assert.deepEqual(await totals(), before);
});

test('partial_success: invalid spans are counted and named, exactly the valid ones are stored (protobuf)', async () => {
  const traceId = hex(16);
  const good = [validSpan('good-1', traceId), validSpan('good-2', traceId)];
  const bad: JsonSpan[] = [
    { ...validSpan('short-trace-id'), traceId: hex(8) },
    { ...validSpan('zero-span-id', traceId), spanId: '0'.repeat(16) },
    { ...validSpan('end-before-start', traceId), endTimeUnixNano: String(T0 - 1n) },
    { ...validSpan('no-start', traceId), startTimeUnixNano: undefined },
  ];
  const res = await post(pbBody([good[0]!, ...bad, good[1]!]), 'protobuf');
  const partial = assertExportOk(res, 'protobuf');
  assert.ok(partial, 'partial_success present');
  assert.equal(partial.rejectedSpans, bad.length);
  for (const reason of [/trace_id must be 16 bytes \(got 8\)/, /span_id must not be all zeros/, /end_time_unix_nano is before start_time_unix_nano/, /start_time_unix_nano is required/]) {
    assert.match(partial.errorMessage, reason);
  }
  assert.match(partial.errorMessage, /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]/);
  assert.deepEqual(await storedSpanIds([traceId, bad[0]!.traceId as string]), new Set(good.map((s) => s.spanId)));
  const t = await r.pool.query('SELECT span_count FROM telemetry.traces WHERE trace_id = $1', [Buffer.from(traceId, 'hex')]);
  assert.equal(t.rows[0].span_count, 2, 'the trace summary counts only stored spans');
});

test('partial_success: invalid spans are counted and named, exactly the valid ones are stored (JSON)', async () => {
  const traceId = hex(16);
  const good = [validSpan('good-1', traceId), validSpan('good-2', traceId), validSpan('good-3', traceId)];
  const bad: JsonSpan[] = [
    { ...validSpan('long-trace-id'), traceId: hex(17) },
    { ...validSpan('zero-span-id', traceId), spanId: '0000000000000000' },
    { ...validSpan('end-before-start', traceId), endTimeUnixNano: String(T0 - 1000n) },
    { ...validSpan('no-start', traceId), startTimeUnixNano: undefined },
    { ...validSpan('non-hex', traceId), spanId: 'zzzzzzzzzzzzzzzz' },
    { ...validSpan('base64-id', traceId), spanId: Buffer.from(hex(8), 'hex').toString('base64') },
    { ...validSpan('wrong-type', traceId), name: 42 },
  ];
  const res = await post(jsonBody([good[0]!, ...bad.slice(0, 4), good[1]!, ...bad.slice(4), good[2]!]), 'json');
  const partial = assertExportOk(res, 'json');
  assert.ok(partial, 'partial_success present');
  assert.equal(partial.rejectedSpans, bad.length);
  // The first five reasons are spelled out, the rest summarized.
  for (const reason of [/trace_id must be 16 bytes \(got 17\)/, /span_id must not be all zeros/, /end_time_unix_nano is before start_time_unix_nano/, /start_time_unix_nano is required/, /spanId: "zzzzzzzzzzzzzzzz" is not hex/]) {
    assert.match(partial.errorMessage, reason);
  }
  assert.match(partial.errorMessage, /^7 span\(s\) rejected/);
  assert.deepEqual(await storedSpanIds([traceId, bad[0]!.traceId as string]), new Set(good.map((s) => s.spanId)));
});

test('gzip, deflate (zlib and raw), zstd and identity bodies are accepted and stored', async () => {
  const encoders: [string, (b: Buffer) => Buffer][] = [
    ['gzip', (b) => zlib.gzipSync(b)],
    ['x-gzip', (b) => zlib.gzipSync(b)],
    ['deflate', (b) => zlib.deflateSync(b)],
    ['deflate', (b) => zlib.deflateRawSync(b)],
    ['zstd', (b) => zstdCli(b)],
    ['identity', (b) => b],
    ['GZIP', (b) => zlib.gzipSync(b)],
  ];
  for (const format of FORMATS) {
    for (const [enc, fn] of encoders) {
      const spans = [validSpan(`${enc}-a`), validSpan(`${enc}-b`)];
      const res = await post(fn(Buffer.from(body(format, spans))), format, { 'content-encoding': enc });
      assert.equal(assertExportOk(res, format), undefined, `${format} ${enc}`);
      assert.deepEqual(await storedSpanIds(spans.map((s) => s.traceId as string)), new Set(spans.map((s) => s.spanId)), `${format} ${enc}: stored`);
    }
  }
});

test('Content-Type parameters and aliases are accepted: application/json; charset=utf-8, application/protobuf', async () => {
  const cases: [string, WireFormat][] = [
    ['application/json; charset=utf-8', 'json'],
    ['Application/JSON;charset=UTF-8', 'json'],
    ['application/x-protobuf; proto=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest', 'protobuf'],
    ['application/protobuf', 'protobuf'],
  ];
  for (const [ct, format] of cases) {
    const s = validSpan();
    const res = await post(body(format, [s]), format, { 'content-type': ct });
    assertExportOk(res, format);
    assert.deepEqual(await storedSpanIds([s.traceId as string]), new Set([s.spanId]), ct);
  }
});

test('a refused request (400, 413, 415) that carries valid spans writes nothing', async () => {
  const before = await totals();
  const traceIds: string[] = [];
  const spans = () => {
    const list = [validSpan(), validSpan()];
    traceIds.push(...list.map((s) => s.traceId as string));
    return list;
  };
  const pb = pbBody(spans());
  const json = jsonBody(spans());
  const padded = jsonBody([...spans(), { ...validSpan(), name: 'p'.repeat(LIMIT) }]);
  const answers = [
    await post(pb.subarray(0, pb.length - 1), 'protobuf'), // 400 truncated
    await post(Buffer.concat([pb, Buffer.from([0x0f])]), 'protobuf'), // 400 trailing bad wire type
    await post(`${json.slice(0, -2)},`, 'json'), // 400 malformed
    await post(json.replace('"scopeSpans":[', '"scopeSpans":[1,'), 'json'), // 400 wrong shape after valid spans
    await post(padded, 'json'), // 413 wire
    await post(zlib.gzipSync(padded), 'json', { 'content-encoding': 'gzip' }), // 413 decompressed
    await post(json, 'json', { 'content-type': 'text/plain' }), // 415
    await post(zlib.gzipSync(json), 'json', { 'content-encoding': 'br' }), // 415
  ];
  assert.deepEqual(answers.map((a) => a.status), [400, 400, 400, 400, 413, 413, 415, 415]);
  assert.equal((await storedSpanIds(traceIds)).size, 0);
  assert.deepEqual(await totals(), before);
});
