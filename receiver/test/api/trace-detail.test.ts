// GET /v1/traces/{id} is built by one statement (query/traces.ts traceWithSpans, Postgres builds the
// spans as json): its body must be byte for byte what the row mapping of getTrace + spansOfTrace +
// eventsOf/linksOf (spansWithDetail) gives, for every kind of attribute value, events, links and nulls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { av, postSpans, spanId, traceId, type AnyValue, type SpanSpec } from './otlp-json.js';
import { createDb } from '../../src/db/db.js';
import { getTrace } from '../../src/query/traces.js';
import { spansOfTrace } from '../../src/query/spans.js';
import { spansWithDetail } from '../../src/api/spans.js';
import { MAX_TRACE_SPANS } from '../../src/api/traces.js';
import { traceJson } from '../../src/api/serialize.js';
import type { ReceiverContext } from '../../src/context.js';

const r = await startTestReceiver();
const db = createDb(r.pool);
const P = '00000000-0000-0000-0000-000000000001';

/** The response as the row mapping builds it (three statements, typed rows), serialized as express does. */
async function rowMapping(id: string): Promise<string> {
  const t = await getTrace(db, P, id);
  assert.ok(t, `trace ${id} is stored`);
  const rows = await spansOfTrace(db, P, { traceIdHex: id, startText: t.cursor_time, endText: t.end_time_text }, MAX_TRACE_SPANS + 1);
  const spans = await spansWithDetail({ db } as unknown as ReceiverContext, P, rows.slice(0, MAX_TRACE_SPANS));
  return JSON.stringify({ trace: traceJson(t, P), spans, truncated: rows.length > MAX_TRACE_SPANS });
}

async function byId(id: string): Promise<string> {
  const res = await fetch(`${r.url}/v1/traces/${id}`, { headers: { authorization: `Bearer ${r.key}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text;
}

const kv = (o: Record<string, AnyValue>) => Object.entries(o).map(([key, value]) => ({ key, value }));
/** Every AnyValue kind, int64 at and beyond ±2^53, non-finite doubles, empty and nested arrays/kvlists. */
const EVERY_VALUE: Record<string, AnyValue> = {
  str: av.s('v "quoted" \\ ünïcode 😀'), empty: av.s(''), int: av.i(42), neg: av.i(-7), safe: av.i(9007199254740991), big: av.i('9223372036854775807'),
  bigneg: av.i('-9007199254740993'), dbl: av.d(1.5), tiny: av.d(5e-324), huge: av.d(1e308), zero: av.d(0),
  nan: { doubleValue: 'NaN' } as unknown as AnyValue, inf: { doubleValue: '-Infinity' } as unknown as AnyValue,
  t: av.b(true), f: av.b(false), bytes: { bytesValue: 'AAEC/w==' },
  arr: { arrayValue: { values: [av.s('x'), av.i(1), { arrayValue: { values: [av.b(false)] } }, { kvlistValue: { values: kv({ in: av.d(2) }) } }] } },
  emptyArr: { arrayValue: { values: [] } }, emptyKv: { kvlistValue: { values: [] } },
  kvl: { kvlistValue: { values: kv({ a: av.s('b'), deep: { kvlistValue: { values: kv({ n: av.i('12345678901234567890') }) } } }) } },
};

test('a trace with every attribute value kind, events, links and null fields: the same bytes as the row mapping', async () => {
  const tid = traceId();
  const [root, llm, tool, orphan] = [spanId(), spanId(), spanId(), spanId()];
  const t0 = BigInt(Date.now() - 3_600_000) * 1_000_000n;
  const spans: SpanSpec[] = [
    { traceId: tid, spanId: root, name: 'agent.run', startNs: t0, endNs: t0 + 5_000_000_123n, kind: 2, attrs: { 'gen_ai.agent.name': av.s('detail-agent'), ...EVERY_VALUE } },
    {
      traceId: tid, spanId: llm, parentSpanId: root, name: 'chat gpt-4o', startNs: t0 + 1000n, endNs: t0 + 2_000_000_000n, kind: 3,
      status: { code: 2, message: 'rate limited' },
      attrs: { 'gen_ai.request.model': av.s('gpt-4o'), 'gen_ai.usage.input_tokens': av.i(1200), 'gen_ai.usage.output_tokens': av.i(300), 'strathon.agent.intervention.state': av.s('blocked') },
      events: [
        { name: 'second', timeNs: t0 + 3000n, attrs: EVERY_VALUE }, { name: 'first', timeNs: t0 + 2000n }, { name: 'third', timeNs: t0 + 4000n, attrs: { n: av.i(3) } },
      ],
      links: [{ traceId: traceId(), spanId: spanId(), attrs: EVERY_VALUE }, { traceId: tid, spanId: root }],
    },
    // An LLM call with no price (cost null) and an out-of-range token count, and a tool span at the same start (order by span id).
    { traceId: tid, spanId: tool, parentSpanId: llm, name: 'execute_tool search', startNs: t0 + 1000n, attrs: { 'gen_ai.operation.name': av.s('execute_tool'), 'gen_ai.tool.name': av.s('search') } },
    {
      traceId: tid, spanId: orphan, parentSpanId: spanId(), name: 'chat unknown', startNs: t0 + 4_000_000_000n,
      attrs: { 'gen_ai.request.model': av.s('no-such-model-xyz'), 'gen_ai.usage.input_tokens': av.i('9007199254740993'), 'gen_ai.usage.output_tokens': av.i(1) },
      events: [{ name: 'only', timeNs: t0 + 4_000_000_001n }],
    },
  ];
  await postSpans(r.url, r.key, 'detail-svc', spans, { 'res.int': av.i('-9223372036854775808'), 'res.arr': EVERY_VALUE.arr as AnyValue });
  const body = await byId(tid);
  assert.equal(body, await rowMapping(tid));
  // What the comparison covered: every span, events in order, links, nulls and both id forms.
  const j = JSON.parse(body);
  assert.deepEqual(j.spans.map((s: any) => s.span_id), [root, ...[llm, tool].sort(), orphan]);
  const l = j.spans.find((s: any) => s.span_id === llm);
  assert.deepEqual(l.events.map((e: any) => e.name), ['second', 'first', 'third'], 'events in the order sent (event_index)');
  assert.equal(l.links.length, 2);
  assert.equal(l.intervention_state, 'blocked');
  assert.equal(j.spans[0].attributes.big, '9223372036854775807');
  assert.equal(j.spans[0].attributes.safe, 9007199254740991);
  assert.equal(j.spans[0].parent_span_id, null);
  const o = j.spans.find((s: any) => s.span_id === orphan);
  assert.equal(o.cost_usd, null, 'an unpriced LLM call');
  assert.deepEqual(o.tokens, { input_tokens: null, output_tokens: 1, total_tokens: 1 }, 'a token count beyond 2^53 is not kept: null');
  assert.deepEqual(o.links, []);
  assert.equal(j.spans.find((s: any) => s.span_id === tool).cost_usd, '0');
});

test('a trace across a month boundary (two spans partitions) and a lone-span trace: the same bytes as the row mapping', async () => {
  const now = new Date();
  const monthStart = BigInt(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)) * 1_000_000n;
  const tid = traceId();
  const a = spanId();
  await postSpans(r.url, r.key, 'boundary-svc', [
    { traceId: tid, spanId: a, name: 'before', startNs: monthStart - 1_500_000_000n, endNs: monthStart + 2_000_000_000n, events: [{ name: 'e', timeNs: monthStart - 1n }] },
    { traceId: tid, parentSpanId: a, name: 'after', startNs: monthStart + 1_000_000_001n, links: [{ traceId: tid, spanId: a }] },
  ]);
  const body = await byId(tid);
  assert.equal(body, await rowMapping(tid));
  assert.deepEqual(JSON.parse(body).spans.map((s: any) => s.name), ['before', 'after']);
  const lone = traceId();
  await postSpans(r.url, r.key, 'lone-svc', [{ traceId: lone, name: 'lone', startNs: monthStart + 5n }]);
  assert.equal(await byId(lone), await rowMapping(lone));
  assert.equal(JSON.parse(await byId(lone)).spans[0].events.length, 0);
});

test('a trace of more than MAX_TRACE_SPANS spans: the first ones in start order, truncated, the same bytes as the row mapping', async () => {
  const tid = traceId();
  const t0 = BigInt(Date.now() - 7_200_000) * 1_000_000n;
  // Start times in reverse of the sending order, so storage order is not start order.
  const spans: SpanSpec[] = Array.from({ length: MAX_TRACE_SPANS + 1 }, (_, i) => ({ traceId: tid, name: `s${i}`, startNs: t0 + BigInt(MAX_TRACE_SPANS - i) * 1000n }));
  for (let i = 0; i < spans.length; i += 2500) await postSpans(r.url, r.key, 'big-svc', spans.slice(i, i + 2500));
  const body = await byId(tid);
  assert.equal(body, await rowMapping(tid));
  const j = JSON.parse(body);
  assert.equal(j.truncated, true);
  assert.equal(j.spans.length, MAX_TRACE_SPANS);
  assert.equal(j.spans[0].name, `s${MAX_TRACE_SPANS}`);
  assert.equal(j.spans[MAX_TRACE_SPANS - 1].name, 's1', 'the latest-starting span is the one left out');
});

test('an unknown trace id is still a 404', async () => {
  const res = await fetch(`${r.url}/v1/traces/${traceId()}`, { headers: { authorization: `Bearer ${r.key}` } });
  assert.equal(res.status, 404);
  await res.arrayBuffer();
});
