// The real OpenTelemetry JS exporters (protobuf and JSON, gzip on and off) send traces that come
// back from Postgres field for field; every OTLP value type survives exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, context, trace, type Link } from '@opentelemetry/api';
import { startTestReceiver } from '../helpers.js';
import { withExporter, type Protocol } from '../otel.js';
import { ExportRequest } from '../../src/ingest/otlp-wire.js';
import Long from 'long';

const r = await startTestReceiver();

async function spansOf(traceId: string) {
  const q = await r.pool.query(
    `SELECT encode(span_id,'hex') span_id, encode(parent_span_id,'hex') parent, name, kind, start_time_unix_nano, end_time_unix_nano,
            status_code, status_message, attributes, resource_attributes, scope_name, scope_version, service_name, event_count, link_count,
            dropped_attributes_count, trace_state, flags
     FROM telemetry.spans WHERE trace_id = decode($1,'hex') ORDER BY start_time_unix_nano`, [traceId]);
  return q.rows;
}

for (const protocol of ['protobuf', 'json'] as Protocol[]) {
  for (const gzip of [false, true]) {
    test(`${protocol} exporter, gzip=${gzip}: spans round-trip field for field`, async () => {
      let traceId = '';
      let rootId = '';
      let childId = '';
      const linkTarget = { traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', spanId: 'bbbbbbbbbbbbbbbb', traceFlags: 1 };
      const { results } = await withExporter(r.url, r.key, protocol, gzip, { 'service.name': `svc-${protocol}`, 'deployment.environment': 'test', 'host.cpus': 2 }, (tracer) => {
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
            'a.double': 1.5, 'a.bool': true, 'a.strs': ['x', 'y'], 'a.ints': [1, 2, 3], 'a.neg': -42,
          },
        }, trace.setSpan(context.active(), root));
        childId = child.spanContext().spanId;
        child.addEvent('token.first', { 'ev.n': 7 }, [1_700_000_000, 300_000_000]);
        child.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
        child.end([1_700_000_000, 999_999_999]);
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
      assert.deepEqual(root.resource_attributes['service.name'], { stringValue: `svc-${protocol}` });
      assert.deepEqual(root.resource_attributes['host.cpus'], { intValue: '2' });
      assert.equal(root.scope_name, 'strathon-test-scope');
      assert.equal(root.scope_version, '1.2.3');
      assert.equal(root.service_name, `svc-${protocol}`);
      assert.equal(child.span_id, childId);
      assert.equal(child.parent, rootId);
      assert.equal(child.kind, 3); // CLIENT
      assert.equal(child.start_time_unix_nano, '1700000000200000001');
      assert.equal(child.end_time_unix_nano, '1700000000999999999');
      assert.equal(child.status_code, 2);
      assert.equal(child.status_message, 'rate limited');
      assert.deepEqual(child.attributes['a.double'], { doubleValue: 1.5 });
      assert.deepEqual(child.attributes['a.bool'], { boolValue: true });
      assert.deepEqual(child.attributes['a.neg'], { intValue: '-42' });
      assert.deepEqual(child.attributes['a.strs'], { arrayValue: { values: [{ stringValue: 'x' }, { stringValue: 'y' }] } });
      assert.deepEqual(child.attributes['a.ints'], { arrayValue: { values: [{ intValue: '1' }, { intValue: '2' }, { intValue: '3' }] } });
      assert.equal(child.event_count, 1);
      assert.equal(child.link_count, 1);
      const ev = await r.pool.query(`SELECT name, time_unix_nano, attributes FROM telemetry.span_events WHERE trace_id = decode($1,'hex')`, [traceId]);
      assert.deepEqual(ev.rows, [{ name: 'token.first', time_unix_nano: '1700000000300000000', attributes: { 'ev.n': { intValue: '7' } } }]);
      const ln = await r.pool.query(`SELECT encode(linked_trace_id,'hex') t, encode(linked_span_id,'hex') s, attributes FROM telemetry.span_links WHERE trace_id = decode($1,'hex')`, [traceId]);
      assert.deepEqual(ln.rows, [{ t: linkTarget.traceId, s: linkTarget.spanId, attributes: { 'link.kind': { stringValue: 'follows' } } }]);
      // Trace summary maintained by the writer.
      const t = await r.pool.query(`SELECT root_name, span_count, error_count, input_tokens, output_tokens, cost_usd, agent_name, start_time_unix_nano, end_time_unix_nano FROM telemetry.traces WHERE trace_id = decode($1,'hex')`, [traceId]);
      assert.deepEqual(t.rows[0], {
        root_name: 'agent.run', span_count: 2, error_count: 1, input_tokens: '1200', output_tokens: '300',
        cost_usd: '0.0060000000', agent_name: 'planner', start_time_unix_nano: '1700000000123456789', end_time_unix_nano: '1700000001987654321',
      });
    });
  }
}

test('protobuf with every AnyValue type (int64 beyond 2^53, bytes, kvlist, nested arrays) is kept exactly', async () => {
  const traceId = Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex');
  const spanId = Buffer.from('b7ad6b7169203331', 'hex');
  const msg = ExportRequest.fromObject({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'types' } }], droppedAttributesCount: 3 },
      schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
      scopeSpans: [{
        scope: { name: 'sc', version: '9', attributes: [{ key: 'sc.a', value: { boolValue: false } }] },
        spans: [{
          traceId, spanId, name: 'types', kind: 1, traceState: 'vendor=x', flags: 257,
          startTimeUnixNano: Long.fromString('1700000000123456789', true), endTimeUnixNano: Long.fromString('1700000000123456790', true),
          droppedAttributesCount: 4, droppedEventsCount: 5, droppedLinksCount: 6,
          attributes: [
            { key: 'big', value: { intValue: Long.fromString('9007199254740993') } },
            { key: 'max', value: { intValue: Long.fromString('9223372036854775807') } },
            { key: 'min', value: { intValue: Long.fromString('-9223372036854775808') } },
            { key: 'dbl', value: { doubleValue: 0.1 } },
            { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 2, 255]) } },
            { key: 'kv', value: { kvlistValue: { values: [{ key: 'inner', value: { arrayValue: { values: [{ intValue: 5 }, { stringValue: 's' }] } } }] } } },
            { key: 'empty', value: {} },
            { key: 'unicode', value: { stringValue: 'ünïcødé ✓ 日本' } },
          ],
        }],
      }],
    }],
  });
  const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'x-api-key': r.key }, body: ExportRequest.encode(msg).finish() });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
  const q = await r.pool.query(`SELECT attributes, trace_state, flags, dropped_attributes_count, dropped_events_count, dropped_links_count, resource_dropped_attributes_count, resource_schema_url, scope_attributes, start_time_unix_nano, end_time_unix_nano FROM telemetry.spans WHERE trace_id = $1`, [traceId]);
  const row = q.rows[0];
  assert.deepEqual(row.attributes, {
    big: { intValue: '9007199254740993' }, max: { intValue: '9223372036854775807' }, min: { intValue: '-9223372036854775808' },
    dbl: { doubleValue: 0.1 }, bytes: { bytesValue: 'AAEC/w==' },
    kv: { kvlistValue: { values: [{ key: 'inner', value: { arrayValue: { values: [{ intValue: '5' }, { stringValue: 's' }] } } }] } },
    empty: {}, unicode: { stringValue: 'ünïcødé ✓ 日本' },
  });
  assert.equal(row.trace_state, 'vendor=x');
  assert.equal(row.flags, '257');
  assert.deepEqual([row.dropped_attributes_count, row.dropped_events_count, row.dropped_links_count, row.resource_dropped_attributes_count], [4, 5, 6, 3]);
  assert.equal(row.resource_schema_url, 'https://opentelemetry.io/schemas/1.21.0');
  assert.deepEqual(row.scope_attributes, { 'sc.a': { boolValue: false } });
  assert.equal(row.start_time_unix_nano, '1700000000123456789');
  assert.equal(row.end_time_unix_nano, '1700000000123456790');
});

test('OTLP JSON: snake_case, enum names, int64 as number beyond 2^53, hex ids, unknown fields ignored', async () => {
  const body = `{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"snake"}}]},"unknown_field":{"x":1},
    "scope_spans":[{"scope":{"name":"s"},"spans":[{"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","name":"snake",
    "kind":"SPAN_KIND_PRODUCER","start_time_unix_nano":1700000000123456789,"end_time_unix_nano":"1700000000123456799","somethingNew":[1,2],
    "attributes":[{"key":"n","value":{"int_value":9007199254740993}},{"key":"d","value":{"double_value":"NaN"}}],
    "status":{"code":"STATUS_CODE_OK"}}]}]}]}`;
  const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${r.key}` }, body });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  const q = await r.pool.query(`SELECT kind, start_time_unix_nano, end_time_unix_nano, attributes, status_code, service_name FROM telemetry.spans WHERE trace_id = decode('0102030405060708090a0b0c0d0e0f10','hex')`);
  assert.deepEqual(q.rows[0], {
    kind: 4, start_time_unix_nano: '1700000000123456789', end_time_unix_nano: '1700000000123456799',
    attributes: { n: { intValue: '9007199254740993' }, d: { doubleValue: 'NaN' } }, status_code: 1, service_name: 'snake',
  });
});

test('a re-sent span (client retry) is stored once and counted once in the trace summary', async () => {
  const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'ffeeddccbbaa99887766554433221100', spanId: '1111111111111111', name: 'retry', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000001000' }] }] }] });
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': r.key }, body });
    assert.equal(res.status, 200);
  }
  const q = await r.pool.query(`SELECT count(*)::int n FROM telemetry.spans WHERE trace_id = decode('ffeeddccbbaa99887766554433221100','hex')`);
  assert.equal(q.rows[0].n, 1);
  const t = await r.pool.query(`SELECT span_count FROM telemetry.traces WHERE trace_id = decode('ffeeddccbbaa99887766554433221100','hex')`);
  assert.equal(t.rows[0].span_count, 1);
});
