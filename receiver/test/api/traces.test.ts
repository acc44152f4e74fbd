// GET /v1/traces, /v1/traces/{id}, /v1/traces/{id}/tree against a real receiver: what the real
// OpenTelemetry exporter sent comes back; filters, 422s, 404 across projects, 401/403.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { startTestReceiver, makeKey, makeProject } from '../helpers.js';
import { withExporter } from '../otel.js';
import { av, getJson, ns, postSpans, spanId, traceId, type SpanSpec } from './otlp-json.js';

const r = await startTestReceiver();

test('a trace sent by the real OpenTelemetry exporter comes back from list, by id and as a tree', async () => {
  let tid = '';
  let rootId = '';
  let llmId = '';
  let toolId = '';
  const linkTarget = { traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', spanId: 'bbbbbbbbbbbbbbbb', traceFlags: 1 };
  const { results } = await withExporter(r.url, r.key, 'protobuf', true, { 'service.name': 'exporter-svc', 'host.cpus': 4 }, (tracer) => {
    const root = tracer.startSpan('agent.run', { kind: SpanKind.SERVER, startTime: [1_700_000_000, 123_456_789], attributes: { 'gen_ai.agent.name': 'exporter-agent' } });
    tid = root.spanContext().traceId;
    rootId = root.spanContext().spanId;
    const ctx = trace.setSpan(context.active(), root);
    const llm = tracer.startSpan('chat gpt-4o', {
      kind: SpanKind.CLIENT, startTime: [1_700_000_000, 200_000_001], links: [{ context: linkTarget, attributes: { 'link.kind': 'follows' } }],
      attributes: { 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.output_tokens': 300, 'a.double': 1.5, 'a.strs': ['x', 'y'], 'a.neg': -42 },
    }, ctx);
    llmId = llm.spanContext().spanId;
    llm.addEvent('token.first', { 'ev.n': 7 }, [1_700_000_000, 300_000_000]);
    llm.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
    llm.end([1_700_000_000, 999_999_999]);
    const tool = tracer.startSpan('execute_tool search', { startTime: [1_700_000_001, 0], attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' } }, trace.setSpan(context.active(), llm));
    toolId = tool.spanContext().spanId;
    tool.end([1_700_000_001, 500_000_000]);
    root.end([1_700_000_001, 987_654_321]);
  });
  assert.deepEqual(results.map((x) => x.code), [0, 0, 0]);

  const list = await getJson(r.url, r.key, '/v1/traces', { agent_name: 'exporter-agent' });
  assert.equal(list.status, 200);
  assert.equal(list.body.next_cursor, null);
  assert.equal(list.body.data.length, 1);
  const t = list.body.data[0];
  assert.deepEqual(t, {
    trace_id: tid, project_id: '00000000-0000-0000-0000-000000000001',
    start_time: '2023-11-14T22:13:20.123456789Z', end_time: '2023-11-14T22:13:21.987654321Z',
    start_time_unix_nano: '1700000000123456789', end_time_unix_nano: '1700000001987654321', duration_ms: 1864.197,
    agent_name: 'exporter-agent', workflow_name: null, root_name: 'agent.run', root_span_id: rootId, service_name: 'exporter-svc',
    span_count: 3, error_count: 1, status: 'error', llm_span_count: 1, tool_span_count: 1, input_tokens: 1200, output_tokens: 300,
    total_cost_usd: '0.006', models: ['gpt-4o'], intervention_state: null,
  });

  const one = await getJson(r.url, r.key, `/v1/traces/${tid}`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.body.trace, t);
  assert.equal(one.body.truncated, false);
  assert.deepEqual(one.body.spans.map((s: any) => s.span_id), [rootId, llmId, toolId], 'ordered by start');
  const [root, llm, tool] = one.body.spans;
  assert.equal(root.parent_span_id, null);
  assert.equal(root.kind, 'SERVER');
  assert.equal(root.agent_name, 'exporter-agent');
  assert.equal(root.resource.attributes['service.name'], 'exporter-svc');
  assert.equal(root.resource.attributes['host.cpus'], 4);
  assert.equal(root.scope.name, 'strathon-test-scope');
  assert.equal(root.scope.version, '1.2.3');
  assert.equal(llm.trace_id, tid);
  assert.equal(llm.parent_span_id, rootId);
  assert.equal(llm.kind, 'CLIENT');
  assert.equal(llm.start_time_unix_nano, '1700000000200000001');
  assert.equal(llm.end_time_unix_nano, '1700000000999999999');
  assert.equal(llm.start_time, '2023-11-14T22:13:20.200000001Z');
  assert.equal(llm.duration_ms, 799.999);
  assert.equal(llm.status_code, 'ERROR');
  assert.equal(llm.status_message, 'rate limited');
  assert.equal(llm.request_model, 'gpt-4o');
  assert.equal(llm.input_tokens, 1200);
  assert.equal(llm.output_tokens, 300);
  assert.deepEqual(llm.tokens, { input_tokens: 1200, output_tokens: 300, total_tokens: 1500 });
  assert.equal(llm.cost_usd, '0.006');
  assert.deepEqual(llm.cost, { cost_usd: '0.006' });
  assert.equal(llm.attributes['a.double'], 1.5);
  assert.deepEqual(llm.attributes['a.strs'], ['x', 'y']);
  assert.equal(llm.attributes['a.neg'], -42);
  assert.equal(llm.attributes['gen_ai.usage.input_tokens'], 1200);
  assert.deepEqual(llm.events, [{ name: 'token.first', time: '2023-11-14T22:13:20.300000000Z', time_unix_nano: '1700000000300000000', attributes: { 'ev.n': 7 }, dropped_attributes_count: 0 }]);
  assert.equal(llm.links.length, 1);
  assert.equal(llm.links[0].trace_id, linkTarget.traceId);
  assert.equal(llm.links[0].span_id, linkTarget.spanId);
  assert.deepEqual(llm.links[0].attributes, { 'link.kind': 'follows' });
  assert.equal(tool.tool_name, 'search');
  assert.equal(tool.is_tool, true);
  assert.equal(tool.parent_span_id, llmId);

  const tree = await getJson(r.url, r.key, `/v1/traces/${tid}/tree`);
  assert.equal(tree.status, 200);
  assert.equal(tree.body.span_count, 3);
  assert.deepEqual(tree.body.trace, t);
  assert.equal(tree.body.root.span_id, rootId);
  assert.equal(tree.body.root.name, 'agent.run');
  assert.equal(tree.body.root.children.length, 1);
  const llmNode = tree.body.root.children[0];
  assert.equal(llmNode.span_id, llmId);
  assert.equal(llmNode.request_model, 'gpt-4o');
  assert.equal(llmNode.cost_usd, '0.006');
  assert.equal(llmNode.children[0].span_id, toolId);
  assert.equal(llmNode.children[0].tool_name, 'search');
  assert.deepEqual(llmNode.children[0].children, []);
  for (const k of ['span_id', 'parent_span_id', 'name', 'kind', 'start_time', 'end_time', 'duration_ms', 'status_code', 'agent_name', 'tool_name',
    'request_model', 'operation_name', 'input_tokens', 'output_tokens', 'cost_usd', 'intervention_state', 'children']) {
    assert.ok(k in llmNode, `tree node has ${k}`);
  }

  // Upper-case ids are accepted; the answer is lowercase hex.
  const upper = await getJson(r.url, r.key, `/v1/traces/${tid.toUpperCase()}`);
  assert.equal(upper.status, 200);
  assert.equal(upper.body.trace.trace_id, tid);
});

test('tree: children nest under parents, orphans and extra parentless spans hang under the root, cycles are cut', async () => {
  const tid = traceId();
  const [root, child, grandchild, orphan, second, cycA, cycB] = Array.from({ length: 7 }, spanId);
  const t0 = ns('2024-02-01T00:00:00Z');
  await postSpans(r.url, r.key, 'tree-svc', [
    { traceId: tid, spanId: grandchild, parentSpanId: child, name: 'grandchild', startNs: t0 + 3n },
    { traceId: tid, spanId: orphan, parentSpanId: spanId(), name: 'orphan', startNs: t0 + 2n },
    { traceId: tid, spanId: root, name: 'root', startNs: t0, endNs: t0 + 10_000_000n },
    { traceId: tid, spanId: child, parentSpanId: root, name: 'child', startNs: t0 + 1n },
    { traceId: tid, spanId: second, name: 'second-root', startNs: t0 + 4n },
    { traceId: tid, spanId: cycA, parentSpanId: cycB, name: 'cycle-a', startNs: t0 + 5n },
    { traceId: tid, spanId: cycB, parentSpanId: cycA, name: 'cycle-b', startNs: t0 + 6n },
  ]);
  const tree = await getJson(r.url, r.key, `/v1/traces/${tid}/tree`);
  assert.equal(tree.status, 200);
  assert.equal(tree.body.span_count, 7);
  const shape = (n: any): unknown => [n.name, n.children.map(shape)];
  assert.deepEqual(shape(tree.body.root), ['root', [
    ['child', [['grandchild', []]]],
    ['orphan', []],
    ['second-root', []],
    ['cycle-a', [['cycle-b', []]]],
  ]]);
});

test('tree of a trace whose root span never arrived: the earliest span is the root, the rest hang under it', async () => {
  const tid = traceId();
  const missing = spanId();
  const [a, b] = [spanId(), spanId()];
  const t0 = ns('2024-02-02T00:00:00Z');
  await postSpans(r.url, r.key, 'tree-svc', [
    { traceId: tid, spanId: b, parentSpanId: missing, name: 'b', startNs: t0 + 5n },
    { traceId: tid, spanId: a, parentSpanId: missing, name: 'a', startNs: t0 },
  ]);
  const tree = await getJson(r.url, r.key, `/v1/traces/${tid}/tree`);
  assert.equal(tree.body.root.name, 'a');
  assert.equal(tree.body.root.parent_span_id, missing);
  assert.deepEqual(tree.body.root.children.map((c: any) => c.name), ['b']);
});

test('tree: a pathologically deep chain is flattened below the depth limit, every span kept', async () => {
  const tid = traceId();
  const t0 = ns('2024-02-03T00:00:00Z');
  const ids = Array.from({ length: 450 }, spanId);
  await postSpans(r.url, r.key, 'tree-svc', ids.map((id, i) => ({ traceId: tid, spanId: id, parentSpanId: i ? ids[i - 1] : undefined, name: `d${i}`, startNs: t0 + BigInt(i) })));
  const tree = await getJson(r.url, r.key, `/v1/traces/${tid}/tree`);
  assert.equal(tree.status, 200);
  assert.equal(tree.body.depth_limited, true);
  let deepest = 0;
  const names: string[] = [];
  const walk = (n: any, d: number) => { names.push(n.name); deepest = Math.max(deepest, d); for (const c of n.children) walk(c, d + 1); };
  walk(tree.body.root, 1);
  assert.equal(deepest, 200);
  assert.equal(names.length, 450);
  assert.deepEqual(names, ids.map((_, i) => `d${i}`), 'pre-order keeps the chain order');
  const short = ids.slice(0, 199);
  const tid2 = traceId();
  await postSpans(r.url, r.key, 'tree-svc', short.map((id, i) => ({ traceId: tid2, spanId: id, parentSpanId: i ? short[i - 1] : undefined, name: `s${i}`, startNs: t0 + BigInt(i) })));
  const shallow = await getJson(r.url, r.key, `/v1/traces/${tid2}/tree`);
  assert.equal(shallow.body.depth_limited, false, 'a 199-deep chain is left alone');
});

test('trace list filters: agent_name, service, model, status, min_cost_usd, q, since/until (ns and RFC 3339)', async () => {
  const base = ns('2024-03-10T12:00:00Z');
  const mk = (i: number, service: string, agent: string, extra: Partial<SpanSpec> = {}): SpanSpec => ({
    traceId: traceId(), name: `flt-${i}`, startNs: base + BigInt(i) * 1_000_000_000n,
    attrs: { 'gen_ai.agent.name': av.s(agent), ...(extra.attrs ?? {}) }, ...(extra.status ? { status: extra.status } : {}),
  });
  const spans = [
    mk(0, 'flt-a', 'flt-planner', { attrs: { 'gen_ai.request.model': av.s('gpt-4o'), 'gen_ai.usage.cost': av.d(0.5) } }),
    mk(1, 'flt-a', 'flt-planner', { status: { code: 2, message: 'boom' } }),
    mk(2, 'flt-b', 'flt-coder', { attrs: { 'gen_ai.request.model': av.s('claude-sonnet-4'), 'gen_ai.usage.cost': av.d(2) } }),
    mk(3, 'flt-b', 'flt-coder', { attrs: { 'needle': av.s('x') } }),
  ];
  spans[3]!.name = 'Find The NEEDLE_100%';
  await postSpans(r.url, r.key, 'flt-a', spans.slice(0, 2));
  await postSpans(r.url, r.key, 'flt-b', spans.slice(2));
  const window = { since: base.toString(), until: (base + 10_000_000_000n).toString() };
  const names = async (params: Record<string, string>) => {
    const res = await getJson(r.url, r.key, '/v1/traces', { ...window, ...params });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.data.map((t: any) => t.root_name);
  };
  assert.deepEqual(await names({}), ['Find The NEEDLE_100%', 'flt-2', 'flt-1', 'flt-0'], 'newest first');
  assert.deepEqual(await names({ agent_name: 'flt-planner' }), ['flt-1', 'flt-0']);
  assert.deepEqual(await names({ service: 'flt-b' }), ['Find The NEEDLE_100%', 'flt-2']);
  assert.deepEqual(await names({ model: 'claude-sonnet-4' }), ['flt-2']);
  assert.deepEqual(await names({ status: 'error' }), ['flt-1']);
  assert.deepEqual(await names({ status: 'ok' }), ['Find The NEEDLE_100%', 'flt-2', 'flt-0']);
  assert.deepEqual(await names({ min_cost_usd: '0.5' }), ['flt-2', 'flt-0']);
  assert.deepEqual(await names({ min_cost_usd: '1.25' }), ['flt-2']);
  assert.deepEqual(await names({ q: 'needle_100%' }), ['Find The NEEDLE_100%'], 'case-insensitive, wildcards literal');
  assert.deepEqual(await names({ q: 'needle_1000' }), []);
  assert.deepEqual(await names({ q: 'flt-cod' }), ['Find The NEEDLE_100%', 'flt-2'], 'q also matches the agent name');
  // since is inclusive, until exclusive, to the nanosecond; RFC 3339 accepted with an offset.
  assert.deepEqual(await names({ since: (base + 1_000_000_000n).toString(), until: (base + 3_000_000_000n).toString() }), ['flt-2', 'flt-1']);
  assert.deepEqual(await names({ since: (base + 1_000_000_001n).toString() }), ['Find The NEEDLE_100%', 'flt-2']);
  assert.deepEqual(await names({ since: '2024-03-10T13:00:01+01:00', until: '2024-03-10T12:00:02.000000000Z' }), ['flt-1']);
  assert.deepEqual(await names({ start_after: '2024-03-10T12:00:03Z', since: '' }), ['Find The NEEDLE_100%'], 'Strathon alias');
  // Filters combine with pagination.
  const p1 = await getJson(r.url, r.key, '/v1/traces', { ...window, limit: 3 });
  assert.equal(p1.body.data.length, 3);
  assert.ok(p1.body.next_cursor);
  const p2 = await getJson(r.url, r.key, '/v1/traces', { ...window, limit: 3, cursor: p1.body.next_cursor });
  assert.deepEqual(p2.body.data.map((t: any) => t.root_name), ['flt-0']);
  assert.equal(p2.body.next_cursor, null);
});

test('422 names the offending parameter', async () => {
  const tid = traceId();
  const spanCursor = Buffer.from(JSON.stringify({ k: 's', t: '2024-01-01T00:00:00.000000Z', id: tid, sid: 'aaaaaaaaaaaaaaaa' })).toString('base64url');
  const cases: [string, Record<string, string>, (string | number)[]][] = [
    ['/v1/traces', { limit: '0' }, ['query', 'limit']],
    ['/v1/traces', { limit: '501' }, ['query', 'limit']],
    ['/v1/traces', { limit: 'ten' }, ['query', 'limit']],
    ['/v1/traces', { limit: '1.5' }, ['query', 'limit']],
    ['/v1/traces', { cursor: 'not a cursor' }, ['query', 'cursor']],
    ['/v1/traces', { cursor: Buffer.from('{"k":"t","t":"yesterday","id":"x"}').toString('base64url') }, ['query', 'cursor']],
    ['/v1/traces', { cursor: spanCursor }, ['query', 'cursor']],
    ['/v1/traces', { cursor: Buffer.from(JSON.stringify({ k: 't', t: '2024-02-30T00:00:00.000000Z', id: tid })).toString('base64url') }, ['query', 'cursor']],
    ['/v1/traces', { since: 'last tuesday' }, ['query', 'since']],
    ['/v1/traces', { until: '2024-13-01T00:00:00Z' }, ['query', 'until']],
    ['/v1/traces', { until: '2024-02-30' }, ['query', 'until']],
    ['/v1/traces', { since: '99999999999999999999' }, ['query', 'since']],
    ['/v1/traces', { since: '2024-02-01T00:00:00Z', until: '2024-01-01T00:00:00Z' }, ['query', 'since']],
    ['/v1/traces', { status: 'maybe' }, ['query', 'status']],
    ['/v1/traces', { agent_name: 'a\u0000b' }, ['query', 'agent_name']],
    ['/v1/spans', { q: '\u0000' }, ['query', 'q']],
    ['/v1/traces', { min_cost_usd: '-1' }, ['query', 'min_cost_usd']],
    ['/v1/traces', { min_cost_usd: 'lots' }, ['query', 'min_cost_usd']],
    ['/v1/traces/not-a-trace-id', {}, ['path', 'trace_id']],
    ['/v1/traces/abc/tree', {}, ['path', 'trace_id']],
    ['/v1/spans', { trace_id: 'zz' }, ['query', 'trace_id']],
    ['/v1/spans', { is_llm: 'perhaps' }, ['query', 'is_llm']],
    ['/v1/spans', { is_tool: '2' }, ['query', 'is_tool']],
    ['/v1/spans', { cursor: Buffer.from(JSON.stringify({ k: 't', t: '2024-01-01T00:00:00.000000Z', id: tid })).toString('base64url') }, ['query', 'cursor']],
    ['/v1/spans', { limit: '-3' }, ['query', 'limit']],
    ['/v1/spans', { start_before: 'soon' }, ['query', 'start_before']],
    ['/v1/agents', { lookback_days: '0' }, ['query', 'lookback_days']],
    ['/v1/agents', { days: 'many' }, ['query', 'days']],
    ['/v1/costs', { group_by: 'week' }, ['query', 'group_by']],
    ['/v1/costs', { since: 'x' }, ['query', 'since']],
    ['/v1/costs/forecast', { alert_threshold_hours: '0' }, ['query', 'alert_threshold_hours']],
  ];
  for (const [path, params, loc] of cases) {
    const res = await getJson(r.url, r.key, path, params);
    assert.equal(res.status, 422, `${path} ${JSON.stringify(params)} → ${res.status} ${JSON.stringify(res.body)}`);
    assert.ok(Array.isArray(res.body.detail) && res.body.detail.length === 1, JSON.stringify(res.body));
    assert.deepEqual(res.body.detail[0].loc, loc, `${path} ${JSON.stringify(params)}`);
    assert.equal(typeof res.body.detail[0].msg, 'string');
    assert.equal(typeof res.body.detail[0].type, 'string');
  }
  // A parameter given twice is ambiguous.
  const twice = await fetch(`${r.url}/v1/traces?limit=5&limit=6`, { headers: { authorization: `Bearer ${r.key}` } });
  assert.equal(twice.status, 422);
  assert.deepEqual(((await twice.json()) as any).detail[0].loc, ['query', 'limit']);
});

test('404 for an unknown trace and for another project\'s trace; its lists never show it', async () => {
  const tid = traceId();
  await postSpans(r.url, r.key, 'private-svc', [{ traceId: tid, name: 'private-root', startNs: ns('2024-04-01T00:00:00Z'), attrs: { 'gen_ai.agent.name': av.s('private-agent') } }]);
  assert.equal((await getJson(r.url, r.key, `/v1/traces/${tid}`)).status, 200);

  const unknown = await getJson(r.url, r.key, `/v1/traces/${traceId()}`);
  assert.equal(unknown.status, 404);
  assert.equal(typeof unknown.body.detail, 'string');
  assert.equal((await getJson(r.url, r.key, `/v1/traces/${traceId()}/tree`)).status, 404);

  const other = await makeProject(r.pool);
  const otherKey = await makeKey(r.pool, ['traces:read'], other);
  for (const path of [`/v1/traces/${tid}`, `/v1/traces/${tid}/tree`]) {
    const res = await getJson(r.url, otherKey, path);
    assert.equal(res.status, 404, path);
    assert.ok(!JSON.stringify(res.body).includes('private-root'));
  }
  const list = await getJson(r.url, otherKey, '/v1/traces');
  assert.deepEqual(list.body, { data: [], traces: [], next_cursor: null });
  assert.deepEqual((await getJson(r.url, otherKey, '/v1/spans', { trace_id: tid })).body, { data: [], next_cursor: null });
  assert.deepEqual((await getJson(r.url, otherKey, '/v1/agents')).body.agents, []);
});

test('401 without a key or with a bad one; 403 for a key without traces:read', async () => {
  const writeOnly = await makeKey(r.pool, ['traces:write']);
  const tid = traceId();
  for (const path of ['/v1/traces', `/v1/traces/${tid}`, `/v1/traces/${tid}/tree`, '/v1/spans', '/v1/agents', '/v1/costs', '/v1/costs/forecast', '/v1/model_prices']) {
    const none = await getJson(r.url, undefined, path);
    assert.equal(none.status, 401, path);
    assert.equal(typeof none.body.detail, 'string');
    const wrong = await getJson(r.url, 'stra_not_a_real_key_000000000000', path);
    assert.equal(wrong.status, 401, path);
    assert.deepEqual(wrong.body, { detail: 'Invalid API key' });
    const denied = await getJson(r.url, writeOnly, path);
    assert.equal(denied.status, 403, path);
    assert.deepEqual(denied.body, { detail: 'missing required scope: traces:read' });
  }
});
