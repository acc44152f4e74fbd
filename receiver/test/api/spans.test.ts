// GET /v1/spans: every filter, keyset pagination with ties, and typed attributes as plain JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { av, getJson, ns, postSpans, spanId, traceId } from './otlp-json.js';

const r = await startTestReceiver();
const base = ns('2024-06-01T08:00:00Z');
const window = { since: base.toString(), until: (base + 3_600_000_000_000n).toString() };
const traceA = traceId();
const traceB = traceId();
const rootA = spanId();

await postSpans(r.url, r.key, 'span-svc', [
  { traceId: traceA, spanId: rootA, name: 'invoke_agent researcher', startNs: base, attrs: { 'gen_ai.agent.name': av.s('researcher') } },
  {
    traceId: traceA, parentSpanId: rootA, name: 'chat gpt-4o-mini', startNs: base + 1_000n,
    attrs: { 'gen_ai.agent.name': av.s('researcher'), 'gen_ai.request.model': av.s('gpt-4o-mini'), 'gen_ai.usage.input_tokens': av.i(1000), 'gen_ai.usage.output_tokens': av.i(500) },
  },
  {
    traceId: traceA, parentSpanId: rootA, name: 'execute_tool send_email', startNs: base + 2_000n,
    attrs: { 'gen_ai.agent.name': av.s('researcher'), 'gen_ai.operation.name': av.s('execute_tool'), 'gen_ai.tool.name': av.s('send_email') },
    events: [{ name: 'sent', timeNs: base + 2_500n, attrs: { to: av.s('a@example.com') } }],
    links: [{ traceId: traceB, spanId: 'cccccccccccccccc', attrs: { why: av.s('follow-up') } }],
  },
]);
await postSpans(r.url, r.key, 'span-svc-2', [
  { traceId: traceB, name: 'invoke_agent writer', startNs: base + 60_000_000_000n, attrs: { 'gen_ai.agent.name': av.s('writer') }, status: { code: 2, message: 'failed' } },
  {
    traceId: traceB, name: 'chat claude', startNs: base + 60_000_001_000n,
    attrs: { 'gen_ai.agent.name': av.s('writer'), 'gen_ai.request.model': av.s('claude-3-5-haiku'), 'gen_ai.usage.input_tokens': av.i(10) },
  },
  { traceId: traceB, name: 'execute_tool web_search', startNs: base + 60_000_002_000n, attrs: { 'gen_ai.agent.name': av.s('writer'), 'gen_ai.tool.name': av.s('web_search') } },
]);

async function names(params: Record<string, string | number | boolean>) {
  const res = await getJson(r.url, r.key, '/v1/spans', { ...window, ...params });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.data.map((s: any) => s.name);
}

test('span filters: trace_id, q, agent_name, tool_name, request_model, is_llm, is_tool, status, time range', async () => {
  assert.deepEqual(await names({}), ['execute_tool web_search', 'chat claude', 'invoke_agent writer', 'execute_tool send_email', 'chat gpt-4o-mini', 'invoke_agent researcher']);
  assert.deepEqual(await names({ trace_id: traceA.toUpperCase() }), ['execute_tool send_email', 'chat gpt-4o-mini', 'invoke_agent researcher']);
  assert.deepEqual(await names({ q: 'SEND_' }), ['execute_tool send_email']);
  assert.deepEqual(await names({ q: 'invoke' }), ['invoke_agent writer', 'invoke_agent researcher']);
  assert.deepEqual(await names({ agent_name: 'writer' }), ['execute_tool web_search', 'chat claude', 'invoke_agent writer']);
  assert.deepEqual(await names({ tool_name: 'send_email' }), ['execute_tool send_email']);
  assert.deepEqual(await names({ request_model: 'gpt-4o-mini' }), ['chat gpt-4o-mini']);
  assert.deepEqual(await names({ is_llm: true }), ['chat claude', 'chat gpt-4o-mini']);
  assert.deepEqual(await names({ is_tool: 'true' }), ['execute_tool web_search', 'execute_tool send_email']);
  assert.deepEqual(await names({ is_tool: false, is_llm: false }), ['invoke_agent writer', 'invoke_agent researcher']);
  assert.deepEqual(await names({ status: 'error' }), ['invoke_agent writer']);
  assert.deepEqual(await names({ service: 'span-svc-2', is_llm: 1 }), ['chat claude']);
  assert.deepEqual(await names({ since: (base + 1_000n).toString(), until: '2024-06-01T08:01:00Z' }), ['execute_tool send_email', 'chat gpt-4o-mini']);
  assert.deepEqual(await names({ start_after: '2024-06-01T08:01:00.000001Z', start_before: (base + 60_000_002_000n).toString(), since: '', until: '' }), ['chat claude']);
});

test('a span carries the SPEC fields, cost/cost_usd for Strathon and its CLI, events and links', async () => {
  const res = await getJson(r.url, r.key, '/v1/spans', { ...window, tool_name: 'send_email' });
  const [s] = res.body.data;
  for (const k of ['trace_id', 'span_id', 'parent_span_id', 'project_id', 'name', 'kind', 'start_time', 'end_time', 'start_time_unix_nano',
    'end_time_unix_nano', 'duration_ms', 'status_code', 'status_message', 'service_name', 'agent_name', 'tool_name', 'request_model',
    'operation_name', 'input_tokens', 'output_tokens', 'tokens', 'cost', 'cost_usd', 'intervention_state', 'attributes', 'resource', 'scope',
    'events', 'links']) assert.ok(k in s, `span has ${k}`);
  assert.equal(s.trace_id, traceA);
  assert.equal(s.parent_span_id, rootA);
  assert.equal(s.operation_name, 'execute_tool');
  assert.equal(s.duration_ms, 1);
  assert.deepEqual(s.events, [{ name: 'sent', time: '2024-06-01T08:00:00.000002500Z', time_unix_nano: (base + 2_500n).toString(), attributes: { to: 'a@example.com' }, dropped_attributes_count: 0 }]);
  assert.deepEqual(s.links, [{ trace_id: traceB, span_id: 'cccccccccccccccc', trace_state: null, attributes: { why: 'follow-up' }, dropped_attributes_count: 0, flags: null }]);
  const llm = (await getJson(r.url, r.key, '/v1/spans', { ...window, request_model: 'gpt-4o-mini' })).body.data[0];
  // 1000 × 0.15 + 500 × 0.60 per million.
  assert.equal(llm.cost_usd, '0.00045');
  assert.deepEqual(llm.cost, { cost_usd: '0.00045' });
  assert.deepEqual(llm.tokens, { input_tokens: 1000, output_tokens: 500, total_tokens: 1500 });
  const plain = (await getJson(r.url, r.key, '/v1/spans', { ...window, q: 'invoke_agent researcher' })).body.data[0];
  assert.equal(plain.cost_usd, '0', 'no LLM call: nothing to pay');
  assert.deepEqual(plain.tokens, { input_tokens: null, output_tokens: null, total_tokens: null });
  const haiku = (await getJson(r.url, r.key, '/v1/spans', { ...window, request_model: 'claude-3-5-haiku' })).body.data[0];
  assert.equal(haiku.cost_usd, '0.000008', '10 input tokens × 0.80 per million');
  const tid = traceId();
  await postSpans(r.url, r.key, 'span-svc-3', [{ traceId: tid, name: 'chat mystery', startNs: base - 1n, attrs: { 'gen_ai.request.model': av.s('mystery-model'), 'gen_ai.usage.input_tokens': av.i(5) } }]);
  const unpriced = (await getJson(r.url, r.key, '/v1/spans', { trace_id: tid })).body.data[0];
  assert.equal(unpriced.cost_usd, null, 'an LLM call with no known price');
  assert.deepEqual(unpriced.cost, { cost_usd: null });
});

test('typed attributes become plain JSON: int64 beyond 2^53 as a string, bytes as base64, kvlists as objects', async () => {
  const tid = traceId();
  const res = await fetch(`${r.url}/v1/traces`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${r.key}` },
    body: JSON.stringify({
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'typed' } }] },
        scopeSpans: [{
          scope: { name: 'sc', attributes: [{ key: 'sc.flag', value: { boolValue: true } }] },
          spans: [{
            traceId: tid, spanId: spanId(), name: 'typed', kind: 'SPAN_KIND_PRODUCER',
            startTimeUnixNano: '1717228800123456789', endTimeUnixNano: '1717228800123456790',
            attributes: [
              { key: 'safe', value: { intValue: '9007199254740991' } },
              { key: 'big', value: { intValue: '9007199254740993' } },
              { key: 'min', value: { intValue: '-9223372036854775808' } },
              { key: 'dbl', value: { doubleValue: 0.1 } },
              { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 2, 255]).toString('base64') } },
              { key: 'kv', value: { kvlistValue: { values: [{ key: 'inner', value: { arrayValue: { values: [{ intValue: 5 }, { stringValue: 's' }, { arrayValue: { values: [{ boolValue: false }] } }] } } }] } } },
              { key: 'empty', value: {} },
            ],
          }],
        }],
      }],
    }),
  });
  assert.equal(res.status, 200);
  const [s] = (await getJson(r.url, r.key, '/v1/spans', { trace_id: tid })).body.data;
  assert.equal(s.kind, 'PRODUCER');
  assert.equal(s.start_time_unix_nano, '1717228800123456789');
  assert.equal(s.start_time, '2024-06-01T08:00:00.123456789Z');
  assert.equal(s.duration_ms, 0);
  assert.deepEqual(s.attributes, {
    safe: 9007199254740991, big: '9007199254740993', min: '-9223372036854775808', dbl: 0.1, bytes: 'AAEC/w==',
    kv: { inner: [5, 's', [false]] }, empty: null,
  });
  assert.deepEqual(s.scope.attributes, { 'sc.flag': true });
  assert.deepEqual(s.resource.attributes, { 'service.name': 'typed' });
});

test('span pagination: keyset pages with start-time ties, each span once', async () => {
  const tid = traceId();
  const t0 = ns('2024-07-01T00:00:00Z');
  // 45 spans, three per microsecond (ties broken by span id), across one trace.
  const specs = Array.from({ length: 45 }, (_, i) => ({ traceId: tid, name: `pg-${i}`, startNs: t0 + BigInt(Math.floor(i / 3)) * 1000n + BigInt(i % 3) }));
  await postSpans(r.url, r.key, 'span-pages', specs);
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const res = await getJson(r.url, r.key, '/v1/spans', { service: 'span-pages', limit: 7, cursor });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.data.length <= 7);
    seen.push(...res.body.data.map((s: any) => s.span_id));
    cursor = res.body.next_cursor ?? undefined;
    pages++;
  } while (cursor);
  assert.equal(pages, 7);
  assert.equal(seen.length, 45);
  assert.equal(new Set(seen).size, 45);
  const all = (await getJson(r.url, r.key, '/v1/spans', { service: 'span-pages', limit: 500 })).body;
  assert.deepEqual(all.data.map((s: any) => s.span_id), seen, 'pages concatenate to the single-page order');
  assert.equal(all.next_cursor, null);
});
