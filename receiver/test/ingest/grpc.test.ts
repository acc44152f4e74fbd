// OTLP/gRPC TraceService/Export (SPEC §5.2): the real OpenTelemetry gRPC exporter round-trips traces
// exactly; auth, bad input, size limits and backpressure answer with the right gRPC status.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import zlib from 'node:zlib';
import pg from 'pg';
import protobuf from 'protobufjs';
import Long from 'long';
import grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace, type Link, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { startTestReceiver, makeKey, hex, type TestReceiver } from '../helpers.js';
import { ExportRequest, ExportResponse } from '../../src/ingest/otlp-wire.js';
import { freePort } from '../../src/db/embedded.js';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const MAX_BODY = 1024 * 1024;

const r = await startTestReceiver({ STRATHON_GRPC_ENABLED: 'true', STRATHON_GRPC_PORT: '0', STRATHON_MAX_BODY_BYTES: String(MAX_BODY) });

// ---------------------------------------------------------------------------------------------
// Clients

/** Run `fn` with a tracer whose spans go through the real OTLP/gRPC exporter; resolves after the export. */
async function withGrpcExporter(port: number, key: string, gzip: boolean, resource: Record<string, string | number | boolean>, fn: (tracer: Tracer) => void) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  const inner = new OTLPTraceExporter({ url: `http://127.0.0.1:${port}`, metadata, compression: (gzip ? 'gzip' : 'none') as never, timeoutMillis: 10_000 });
  const results: { code: number; error?: Error }[] = [];
  const recording: SpanExporter = {
    export: (spans, cb) => inner.export(spans, (res) => { results.push(res); cb(res); }),
    shutdown: () => inner.shutdown(),
  };
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(recording)] });
  fn(provider.getTracer('strathon-grpc-scope', '4.5.6'));
  await provider.forceFlush();
  await provider.shutdown();
  return results;
}

interface CallResult { err: grpc.ServiceError | null; response?: { rejected: number; errorMessage: string }; trailers?: grpc.Metadata }

const clients = new Map<number, grpc.Client>();
after(() => { for (const c of clients.values()) c.close(); });

/** A raw grpc-js call with a pass-through serializer: whatever bytes we give are the message. */
function exportRaw(port: number, message: Buffer, metadata: Record<string, string>, deadlineMs = 10_000): Promise<CallResult> {
  let client = clients.get(port);
  if (!client) {
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    clients.set(port, client);
  }
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    let result: CallResult | undefined;
    const call = client.makeUnaryRequest(EXPORT_PATH, (b: Buffer) => b, (b: Buffer) => b, message, md, { deadline: Date.now() + deadlineMs }, (err, res) => {
      const response = res ? (ExportResponse.toObject(ExportResponse.decode(res), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number; errorMessage?: string } }) : undefined;
      result = { err, response: response && { rejected: response.partialSuccess?.rejectedSpans ?? 0, errorMessage: response.partialSuccess?.errorMessage ?? '' } };
    });
    call.on('status', (s: grpc.StatusObject) => {
      // 'status' follows the callback; both carry the same trailers.
      setImmediate(() => resolve({ ...(result as CallResult), trailers: s.metadata }));
    });
  });
}

/** A hand-framed gRPC request over plain HTTP/2, for messages grpc-js would never let us send (pre-compressed bombs). */
function exportHttp2(port: number, framed: Buffer, headers: Record<string, string>): Promise<{ code: number; message: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': EXPORT_PATH, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let head: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => { head = h; });
    req.on('trailers', (t) => { head = { ...head, ...t }; });
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    req.on('close', () => {
      session.close();
      resolve({ code: Number(head['grpc-status']), message: decodeURIComponent(String(head['grpc-message'] ?? '')) });
    });
    req.end(framed);
  });
}

function frame(message: Buffer, compressed: boolean): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(compressed ? 1 : 0, 0);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

// ---------------------------------------------------------------------------------------------
// Fixtures

function span(traceId: string, spanId: string, name: string, extra: Record<string, unknown> = {}) {
  return {
    traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from(spanId, 'hex'), name, kind: 1,
    startTimeUnixNano: Long.fromString('1700000000000000001', true), endTimeUnixNano: Long.fromString('1700000000000000999', true), ...extra,
  };
}

function requestBytes(spans: ReturnType<typeof span>[]): Buffer {
  const msg = ExportRequest.fromObject({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'grpc-raw' } }] }, scopeSpans: [{ scope: { name: 'raw' }, spans }] }],
  });
  return Buffer.from(ExportRequest.encode(msg).finish());
}

async function countSpans(pool: pg.Pool, traceId: string): Promise<number> {
  const q = await pool.query(`SELECT count(*)::int n FROM telemetry.spans WHERE trace_id = decode($1,'hex')`, [traceId]);
  return q.rows[0].n;
}

const rpcTypes = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: { nested: { Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } }, Duration: { fields: { seconds: { type: 'int64', id: 1 } } } } },
        rpc: { nested: { Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } }, RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } } } },
      },
    },
  },
});

/** Decode grpc-status-details-bin: the google.rpc.Status and the RetryInfo delay inside it. */
function retryDetails(md: grpc.Metadata): { code: number; message: string; typeUrl: string; retrySeconds: number } {
  const raw = md.get('grpc-status-details-bin')[0];
  assert.ok(Buffer.isBuffer(raw), 'grpc-status-details-bin is present');
  const Status = rpcTypes.lookupType('google.rpc.Status');
  const RetryInfo = rpcTypes.lookupType('google.rpc.RetryInfo');
  const st = Status.toObject(Status.decode(raw), { longs: Number }) as { code: number; message: string; details: { type_url: string; value: Uint8Array }[] };
  const detail = st.details[0] as { type_url: string; value: Uint8Array };
  const ri = RetryInfo.toObject(RetryInfo.decode(detail.value), { longs: Number }) as { retry_delay: { seconds: number } };
  return { code: st.code, message: st.message, typeUrl: detail.type_url, retrySeconds: ri.retry_delay.seconds };
}

// ---------------------------------------------------------------------------------------------
// Round trip with the real exporter

async function spansOf(traceId: string) {
  const q = await r.pool.query(
    `SELECT encode(span_id,'hex') span_id, encode(parent_span_id,'hex') parent, name, kind, start_time_unix_nano, end_time_unix_nano,
            status_code, status_message, attributes, resource_attributes, scope_name, scope_version, service_name, event_count, link_count
     FROM telemetry.spans WHERE trace_id = decode($1,'hex') ORDER BY start_time_unix_nano`, [traceId]);
  return q.rows;
}

for (const gzip of [false, true]) {
  test(`real OTLP/gRPC exporter, gzip=${gzip}: spans round-trip field for field`, async () => {
    assert.equal(typeof r.grpcPort, 'number');
    let traceId = '';
    let rootId = '';
    let childId = '';
    const linkTarget = { traceId: 'cccccccccccccccccccccccccccccccc', spanId: 'dddddddddddddddd', traceFlags: 1 };
    const results = await withGrpcExporter(r.grpcPort as number, r.key, gzip, { 'service.name': `svc-grpc-${gzip}`, 'deployment.environment': 'test', 'host.cpus': 4 }, (tracer) => {
      const root = tracer.startSpan('agent.run', { kind: SpanKind.SERVER, startTime: [1_700_000_000, 123_456_789], attributes: { 'gen_ai.agent.name': 'planner' } });
      traceId = root.spanContext().traceId;
      rootId = root.spanContext().spanId;
      const links: Link[] = [{ context: linkTarget, attributes: { 'link.kind': 'follows' } }];
      const child = tracer.startSpan('chat gpt-4o', {
        kind: SpanKind.CLIENT,
        startTime: [1_700_000_000, 200_000_001],
        links,
        attributes: {
          'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.output_tokens': 300,
          'a.str': 'héllo', 'a.double': 1.5, 'a.bool': false, 'a.strs': ['x', 'y'], 'a.ints': [1, 2, 3], 'a.neg': -42,
        },
      }, trace.setSpan(context.active(), root));
      childId = child.spanContext().spanId;
      child.addEvent('token.first', { 'ev.n': 7, 'ev.s': 'first' }, [1_700_000_000, 300_000_000]);
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
      child.end([1_700_000_000, 999_999_999]);
      root.setStatus({ code: SpanStatusCode.OK });
      root.end([1_700_000_001, 987_654_321]);
    });
    assert.deepEqual(results.map((x) => x.code), [0, 0], `exports succeeded: ${results.map((x) => x.error?.message).join(',')}`);
    const rows = await spansOf(traceId);
    assert.equal(rows.length, 2);
    const [root, child] = rows;
    assert.equal(root.span_id, rootId);
    assert.equal(root.parent, null);
    assert.equal(root.name, 'agent.run');
    assert.equal(root.kind, 2); // SERVER
    assert.equal(root.start_time_unix_nano, '1700000000123456789');
    assert.equal(root.end_time_unix_nano, '1700000001987654321');
    assert.equal(root.status_code, 1); // OK
    assert.deepEqual(root.attributes['gen_ai.agent.name'], { stringValue: 'planner' });
    assert.deepEqual(root.resource_attributes['service.name'], { stringValue: `svc-grpc-${gzip}` });
    assert.deepEqual(root.resource_attributes['deployment.environment'], { stringValue: 'test' });
    assert.deepEqual(root.resource_attributes['host.cpus'], { intValue: '4' });
    assert.equal(root.scope_name, 'strathon-grpc-scope');
    assert.equal(root.scope_version, '4.5.6');
    assert.equal(root.service_name, `svc-grpc-${gzip}`);
    assert.equal(child.span_id, childId);
    assert.equal(child.parent, rootId);
    assert.equal(child.name, 'chat gpt-4o');
    assert.equal(child.kind, 3); // CLIENT
    assert.equal(child.start_time_unix_nano, '1700000000200000001');
    assert.equal(child.end_time_unix_nano, '1700000000999999999');
    assert.equal(child.status_code, 2);
    assert.equal(child.status_message, 'rate limited');
    assert.deepEqual(child.attributes['a.str'], { stringValue: 'héllo' });
    assert.deepEqual(child.attributes['a.double'], { doubleValue: 1.5 });
    assert.deepEqual(child.attributes['a.bool'], { boolValue: false });
    assert.deepEqual(child.attributes['a.neg'], { intValue: '-42' });
    assert.deepEqual(child.attributes['a.strs'], { arrayValue: { values: [{ stringValue: 'x' }, { stringValue: 'y' }] } });
    assert.deepEqual(child.attributes['a.ints'], { arrayValue: { values: [{ intValue: '1' }, { intValue: '2' }, { intValue: '3' }] } });
    assert.equal(child.event_count, 1);
    assert.equal(child.link_count, 1);
    const ev = await r.pool.query(`SELECT encode(span_id,'hex') span_id, name, time_unix_nano, attributes FROM telemetry.span_events WHERE trace_id = decode($1,'hex')`, [traceId]);
    assert.deepEqual(ev.rows, [{ span_id: childId, name: 'token.first', time_unix_nano: '1700000000300000000', attributes: { 'ev.n': { intValue: '7' }, 'ev.s': { stringValue: 'first' } } }]);
    const ln = await r.pool.query(`SELECT encode(span_id,'hex') span_id, encode(linked_trace_id,'hex') t, encode(linked_span_id,'hex') s, attributes FROM telemetry.span_links WHERE trace_id = decode($1,'hex')`, [traceId]);
    assert.deepEqual(ln.rows, [{ span_id: childId, t: linkTarget.traceId, s: linkTarget.spanId, attributes: { 'link.kind': { stringValue: 'follows' } } }]);
    const t = await r.pool.query(`SELECT root_name, span_count, error_count, input_tokens, output_tokens, cost_usd, agent_name FROM telemetry.traces WHERE trace_id = decode($1,'hex')`, [traceId]);
    assert.deepEqual(t.rows[0], { root_name: 'agent.run', span_count: 2, error_count: 1, input_tokens: '1200', output_tokens: '300', cost_usd: '0.0060000000', agent_name: 'planner' });
  });
}

test('a gzip-compressed message (grpc-encoding: gzip) is accepted and stored', async () => {
  const traceId = hex(16);
  const body = zlib.gzipSync(requestBytes([span(traceId, hex(8), 'gz')]));
  const res = await exportHttp2(r.grpcPort as number, frame(body, true), { 'grpc-encoding': 'gzip', authorization: `Bearer ${r.key}` });
  assert.deepEqual(res, { code: grpc.status.OK, message: 'OK' });
  assert.equal(await countSpans(r.pool, traceId), 1);
});

test('x-api-key metadata authenticates; an empty request is OK with no partial success', async () => {
  const traceId = hex(16);
  const ok = await exportRaw(r.grpcPort as number, requestBytes([span(traceId, hex(8), 'via-x-api-key')]), { 'x-api-key': r.key });
  assert.equal(ok.err, null);
  assert.deepEqual(ok.response, { rejected: 0, errorMessage: '' });
  assert.equal(await countSpans(r.pool, traceId), 1);
  assert.ok(Number(ok.trailers?.get('x-ratelimit-limit')[0]) > 0, 'rate-limit trailers are sent');
  const empty = await exportRaw(r.grpcPort as number, Buffer.alloc(0), { 'x-api-key': r.key });
  assert.equal(empty.err, null);
  assert.deepEqual(empty.response, { rejected: 0, errorMessage: '' });
});

// ---------------------------------------------------------------------------------------------
// Auth

test('UNAUTHENTICATED for a missing, malformed or unknown key; nothing is stored', async () => {
  const traceId = hex(16);
  const body = requestBytes([span(traceId, hex(8), 'unauth')]);
  const attempts: Record<string, string>[] = [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: `Bearer stra_${hex(20)}` }, { 'x-api-key': `stra_${hex(20)}` }];
  for (const md of attempts) {
    const res = await exportRaw(r.grpcPort as number, body, md);
    assert.equal(res.err?.code, grpc.status.UNAUTHENTICATED, JSON.stringify(md));
    assert.equal(res.err?.details, 'Invalid API key');
  }
  assert.equal(await countSpans(r.pool, traceId), 0);
});

test('PERMISSION_DENIED for a key without traces:write', async () => {
  const readOnly = await makeKey(r.pool, ['traces:read']);
  const traceId = hex(16);
  const res = await exportRaw(r.grpcPort as number, requestBytes([span(traceId, hex(8), 'denied')]), { authorization: `Bearer ${readOnly}` });
  assert.equal(res.err?.code, grpc.status.PERMISSION_DENIED);
  assert.equal(res.err?.details, 'missing required scope: traces:write');
  assert.equal(await countSpans(r.pool, traceId), 0);
});

test('an unauthenticated caller is refused before its message is read (no size or decode error first)', async () => {
  const res = await exportRaw(r.grpcPort as number, Buffer.alloc(MAX_BODY + 10, 0xff), {});
  assert.equal(res.err?.code, grpc.status.UNAUTHENTICATED);
});

// ---------------------------------------------------------------------------------------------
// Bad input and limits

test('INVALID_ARGUMENT with a clear message for malformed protobuf bytes', async () => {
  // Field 1 (resource_spans, length-delimited) claims 2^28 bytes that never come.
  const garbage = Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x01, 0x01, 0x02]);
  const res = await exportRaw(r.grpcPort as number, garbage, { authorization: `Bearer ${r.key}` });
  assert.equal(res.err?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(res.err?.details ?? '', /^malformed protobuf ExportTraceServiceRequest: /);
  const wrongWireType = await exportRaw(r.grpcPort as number, Buffer.from([0x0f, 0x01]), { authorization: `Bearer ${r.key}` });
  assert.equal(wrongWireType.err?.code, grpc.status.INVALID_ARGUMENT);
});

test('a message over STRATHON_MAX_BODY_BYTES is refused with RESOURCE_EXHAUSTED', async () => {
  const res = await exportRaw(r.grpcPort as number, Buffer.alloc(MAX_BODY + 1, 0x20), { authorization: `Bearer ${r.key}` });
  assert.equal(res.err?.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(res.err?.details ?? '', new RegExp(`larger than max \\(${MAX_BODY + 1} vs ${MAX_BODY}\\)`));
  // Not retryable: no RetryInfo, no retry-after.
  assert.equal(res.err?.metadata.get('grpc-status-details-bin').length, 0);
});

test('a gzip bomb is cut off at the limit after decompression, with memory bounded', async () => {
  // 64 concatenated gzip members of 8 MiB of zeros: ~0.5 MB on the wire, 512 MiB inflated.
  const member = zlib.gzipSync(Buffer.alloc(8 * 1024 * 1024), { level: 9 });
  const bomb = Buffer.concat(Array.from({ length: 64 }, () => member));
  assert.ok(bomb.length < MAX_BODY, 'the compressed message itself is within the limit');
  const rssBefore = process.memoryUsage.rss();
  let peak = rssBefore;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 5);
  const t0 = Date.now();
  const res = await exportHttp2(r.grpcPort as number, frame(bomb, true), { 'grpc-encoding': 'gzip', authorization: `Bearer ${r.key}` });
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  assert.equal(res.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(res.message, new RegExp(`decompresses to a size larger than ${MAX_BODY}`));
  assert.ok(peak - rssBefore < 128 * 1024 * 1024, `memory grew by ${Math.round((peak - rssBefore) / 1048576)} MiB`);
  assert.ok(Date.now() - t0 < 5000, 'refused promptly, not after inflating everything');
});

test('partial success: an invalid span is counted and explained, the valid one is stored', async () => {
  const traceId = hex(16);
  const goodId = hex(8);
  const body = requestBytes([span(traceId, goodId, 'good'), span(traceId, hex(8), 'bad', { traceId: Buffer.from('abcdef', 'hex') })]);
  const res = await exportRaw(r.grpcPort as number, body, { authorization: `Bearer ${r.key}` });
  assert.equal(res.err, null);
  assert.equal(res.response?.rejected, 1);
  assert.match(res.response?.errorMessage ?? '', /^1 span\(s\) rejected: .*trace/i);
  const q = await r.pool.query(`SELECT encode(span_id,'hex') id FROM telemetry.spans WHERE trace_id = decode($1,'hex')`, [traceId]);
  assert.deepEqual(q.rows, [{ id: goodId }]);
});

test('an unknown method is UNIMPLEMENTED', async () => {
  const client = new grpc.Client(`127.0.0.1:${r.grpcPort}`, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest('/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new grpc.Metadata({}), {}, (e) => resolve(e));
    });
    assert.equal(err?.code, grpc.status.UNIMPLEMENTED);
  } finally {
    client.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Backpressure and rate limit

test('UNAVAILABLE with retry-after and RetryInfo when the writer queue is full; the queued requests commit afterwards', async () => {
  const q = await startTestReceiver({
    STRATHON_GRPC_ENABLED: 'true', STRATHON_GRPC_PORT: '0', STRATHON_INGEST_QUEUE_MAX_SPANS: '3', STRATHON_RETENTION_ENABLED: 'false',
  });
  const port = q.grpcPort as number;
  const md = { authorization: `Bearer ${q.key}` };
  const traceId = hex(16);
  const blocker = new pg.Client({ connectionString: q.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE telemetry.traces IN ACCESS EXCLUSIVE MODE');
    // Three one-span requests fill the queue: two batches block on the lock, one waits behind them.
    const blocked = [1, 2, 3].map((i) => exportRaw(port, requestBytes([span(traceId, hex(8), `queued-${i}`)]), md, 30_000));
    for (let i = 0; q.ingest.writer.depth.spans < 3; i++) {
      assert.ok(i < 200, `queue filled (depth ${JSON.stringify(q.ingest.writer.depth)})`);
      await new Promise((res) => setTimeout(res, 25));
    }
    const t0 = Date.now();
    const overflow = await exportRaw(port, requestBytes([span(traceId, hex(8), 'overflow')]), md);
    assert.ok(Date.now() - t0 < 2000, 'refused at once, not after waiting');
    assert.equal(overflow.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(overflow.err?.details, 'ingest queue full, retry later');
    assert.deepEqual(overflow.err?.metadata.get('retry-after'), ['1']);
    assert.deepEqual(retryDetails(overflow.err!.metadata), {
      code: grpc.status.UNAVAILABLE, message: 'ingest queue full, retry later', typeUrl: 'type.googleapis.com/google.rpc.RetryInfo', retrySeconds: 1,
    });
    assert.equal(await countSpans(q.pool, traceId), 0, 'nothing committed while the lock is held');
    await blocker.query('ROLLBACK');
    const results = await Promise.all(blocked);
    assert.deepEqual(results.map((x) => x.err?.code ?? grpc.status.OK), [grpc.status.OK, grpc.status.OK, grpc.status.OK]);
    assert.equal(await countSpans(q.pool, traceId), 3);
  } finally {
    await blocker.query('ROLLBACK').catch(() => undefined);
    await blocker.end();
  }
});

test('RESOURCE_EXHAUSTED with retry-after and RetryInfo when the rate limit is exceeded', async () => {
  const rl = await startTestReceiver({
    STRATHON_GRPC_ENABLED: 'true', STRATHON_GRPC_PORT: '0', STRATHON_RATE_LIMIT_BURST: '2', STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND: '1',
  });
  const md = { authorization: `Bearer ${rl.key}` };
  const body = requestBytes([span(hex(16), hex(8), 'limited')]);
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await exportRaw(rl.grpcPort as number, body, md));
  assert.deepEqual(answers.map((a) => a.err?.code ?? grpc.status.OK), [grpc.status.OK, grpc.status.OK, grpc.status.RESOURCE_EXHAUSTED]);
  const refused = answers[2]!.err!;
  assert.match(refused.details, /^rate limit exceeded, retry in \ds$/);
  assert.deepEqual(refused.metadata.get('retry-after'), ['1']);
  assert.equal(retryDetails(refused.metadata).retrySeconds, 1);
  assert.deepEqual(refused.metadata.get('x-ratelimit-remaining'), ['0']);
});

// ---------------------------------------------------------------------------------------------
// Disabled

test('STRATHON_GRPC_ENABLED=false opens no gRPC listener', async () => {
  const port = await freePort();
  const off: TestReceiver = await startTestReceiver({ STRATHON_GRPC_ENABLED: 'false', STRATHON_GRPC_PORT: String(port) });
  assert.equal(off.grpcPort, undefined);
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(undefined); });
    s.once('error', (e) => resolve(e));
  });
  assert.equal(err?.code, 'ECONNREFUSED');
});
