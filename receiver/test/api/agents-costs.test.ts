// GET /v1/agents (inventory + risk), GET /v1/costs (group_by model|agent|service|day), GET /v1/costs/forecast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver, makeKey, makeProject } from '../helpers.js';
import { av, getJson, postSpans, traceId, type SpanSpec } from './otlp-json.js';

const r = await startTestReceiver();
// Recent spans: one instant an hour ago (so all fall on one UTC day and inside the last 24 h).
const recent = (BigInt(Date.now()) - 3_600_000n) * 1_000_000n;
const dayOf = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 10);
const old = recent - 40n * 86_400n * 1_000_000_000n;

function span(agent: string, i: number, attrs: SpanSpec['attrs'] = {}, extra: Partial<SpanSpec> = {}): SpanSpec {
  return { traceId: traceId(), name: `${agent}-${i}`, startNs: recent + BigInt(i) * 1000n, attrs: { 'gen_ai.agent.name': av.s(agent), ...attrs }, ...extra };
}
const llm = (model: string, input: number, output: number) => ({ 'gen_ai.request.model': av.s(model), 'gen_ai.usage.input_tokens': av.i(input), 'gen_ai.usage.output_tokens': av.i(output) });
const tool = (name: string) => ({ 'gen_ai.operation.name': av.s('execute_tool'), 'gen_ai.tool.name': av.s(name) });

await postSpans(r.url, r.key, 'svc-one', [
  // alpha: 2 gpt-4o calls, sensitive tools, 1 error in 4 spans → critical.
  span('alpha', 0, llm('gpt-4o', 1000, 100)),
  span('alpha', 1, llm('gpt-4o', 1000, 100)),
  span('alpha', 2, tool('send_email')),
  span('alpha', 3, tool('shell_exec'), { status: { code: 2, message: 'denied' } }),
  // beta: one cheap call, nothing else → low.
  span('beta', 4, llm('claude-3-5-haiku', 2000, 1000)),
]);
await postSpans(r.url, r.key, 'svc-two', [
  // gamma: 5 distinct harmless tools, 1 error in 10 spans, one call with an explicit cost → medium.
  ...['a', 'b', 'c', 'd', 'e'].map((t, i) => span('gamma', 10 + i, tool(`tool_${t}`), i === 0 ? { status: { code: 2 } } : {})),
  ...[0, 1, 2, 3].map((i) => span('gamma', 20 + i)),
  span('gamma', 30, { 'gen_ai.request.model': av.s('custom-model'), 'gen_ai.usage.cost': av.d(1.25) }),
  // An agent last seen 40 days ago, with spend on that day.
  { traceId: traceId(), name: 'ancient', startNs: old, attrs: { 'gen_ai.agent.name': av.s('ancient'), 'gen_ai.request.model': av.s('gpt-4o'), 'gen_ai.usage.cost': av.d(3) } },
]);

test('agents: per-agent totals, tools and models, honest governance defaults, risk from behaviour', async () => {
  const res = await getJson(r.url, r.key, '/v1/agents');
  assert.equal(res.status, 200);
  assert.equal(res.body.lookback_days, 30);
  assert.equal(res.body.count, 3);
  const by = Object.fromEntries(res.body.agents.map((a: any) => [a.agent_name, a]));
  assert.deepEqual(res.body.agents.map((a: any) => a.agent_name), ['gamma', 'alpha', 'beta'], 'most spans first');
  const alpha = by.alpha;
  assert.equal(alpha.total_spans, 4);
  assert.equal(alpha.total_tool_calls, 2);
  assert.equal(alpha.total_cost_usd, '0.007');
  assert.deepEqual(alpha.tools_used, ['send_email', 'shell_exec']);
  assert.deepEqual(alpha.models_used, ['gpt-4o']);
  assert.equal(alpha.first_seen, `${new Date(Number(recent / 1_000_000n)).toISOString().slice(0, 19)}.${(recent % 1_000_000_000n).toString().padStart(9, '0')}Z`);
  assert.ok(alpha.last_active > alpha.first_seen);
  assert.equal(alpha.policies_covering, 0);
  assert.equal(alpha.has_budget, false);
  assert.equal(alpha.has_approval_policy, false);
  assert.equal(alpha.is_halted, false);
  assert.equal(alpha.risk_score, 'critical');
  assert.ok(alpha.risk_factors.some((f: string) => f.includes('send_email') && f.includes('shell_exec')), alpha.risk_factors.join(' | '));
  assert.ok(alpha.risk_factors.some((f: string) => f.startsWith('High error rate: 25%')), alpha.risk_factors.join(' | '));
  assert.equal(by.beta.risk_score, 'low');
  assert.equal(by.beta.total_tool_calls, 0);
  assert.equal(by.beta.total_cost_usd, '0.0056');
  assert.equal(by.gamma.risk_score, 'medium');
  assert.equal(by.gamma.total_spans, 10);
  assert.equal(by.gamma.tools_used.length, 5);
  for (const a of res.body.agents) {
    assert.ok(['low', 'medium', 'high', 'critical'].includes(a.risk_score));
    assert.ok(a.risk_factors.every((f: unknown) => typeof f === 'string'));
  }
  const wide = await getJson(r.url, r.key, '/v1/agents', { lookback_days: 60 });
  assert.equal(wide.body.lookback_days, 60);
  assert.ok(wide.body.agents.some((a: any) => a.agent_name === 'ancient'));
  assert.equal((await getJson(r.url, r.key, '/v1/agents', { days: 60 })).body.count, 4, "Strathon's `days` spelling");
});

test('costs grouped by model, agent, service and day; totals exact; the range bounds what is counted', async () => {
  const model = await getJson(r.url, r.key, '/v1/costs', { group_by: 'model' });
  assert.equal(model.status, 200);
  assert.deepEqual(model.body.data, [
    { key: 'custom-model', cost_usd: '1.25', input_tokens: 0, output_tokens: 0, spans: 1 },
    { key: 'gpt-4o', cost_usd: '0.007', input_tokens: 2000, output_tokens: 200, spans: 2 },
    { key: 'claude-3-5-haiku', cost_usd: '0.0056', input_tokens: 2000, output_tokens: 1000, spans: 1 },
  ]);
  assert.equal(model.body.total_cost_usd, '1.2626');
  assert.equal(model.body.group_by, 'model');
  assert.deepEqual((await getJson(r.url, r.key, '/v1/costs')).body.data, model.body.data, 'model is the default grouping');

  const agent = await getJson(r.url, r.key, '/v1/costs', { group_by: 'agent' });
  assert.deepEqual(agent.body.data.map((d: any) => [d.key, d.cost_usd, d.spans]), [['gamma', '1.25', 1], ['alpha', '0.007', 2], ['beta', '0.0056', 1]]);
  const service = await getJson(r.url, r.key, '/v1/costs', { group_by: 'service' });
  assert.deepEqual(service.body.data.map((d: any) => [d.key, d.cost_usd]), [['svc-two', '1.25'], ['svc-one', '0.0126']]);

  const day = await getJson(r.url, r.key, '/v1/costs', { group_by: 'day', since: (old - 1n).toString() });
  assert.deepEqual(day.body.data.map((d: any) => [d.key, d.cost_usd]), [[dayOf(old), '3'], [dayOf(recent), '1.2626']]);
  assert.equal(day.body.total_cost_usd, '4.2626');
  const onlyOld = await getJson(r.url, r.key, '/v1/costs', { group_by: 'day', since: (old - 1n).toString(), until: (old + 1n).toString() });
  assert.deepEqual(onlyOld.body.data.map((d: any) => d.key), [dayOf(old)]);

  const other = await makeKey(r.pool, ['traces:read'], await makeProject(r.pool));
  assert.deepEqual((await getJson(r.url, other, '/v1/costs')).body.data, []);
  assert.equal((await getJson(r.url, other, '/v1/costs')).body.total_cost_usd, '0');
});

test('forecast: burn rate from the last 24 h, projections, no budgets yet', async () => {
  const res = await getJson(r.url, r.key, '/v1/costs/forecast');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {
    burn_rate_usd_per_hour: '0.0526083333', total_cost_last_24h: '1.2626', projected_daily_cost: '1.2626',
    projected_weekly_cost: '8.8382', projected_monthly_cost: '37.878', budget_forecasts: [], budget_alerts: [], alert_threshold_hours: 24,
  });
  assert.equal((await getJson(r.url, r.key, '/v1/costs/forecast', { alert_threshold_hours: 48 })).body.alert_threshold_hours, 48);
  const other = await makeKey(r.pool, ['traces:read'], await makeProject(r.pool));
  assert.equal((await getJson(r.url, other, '/v1/costs/forecast')).body.burn_rate_usd_per_hour, '0');
});
