// Issue 7 "done when": the real server with the budget monitor on a short interval and the real
// OpenTelemetry exporter. A span from agent A whose model and tokens cost more than A's budget
// (action halt) halts A within one monitor tick, B (cheap, own budget) is not halted; intervention
// sync for A lists the halt and for B does not; resolving the halt removes it from A's sync, and
// later ticks of the same window do not halt A again. (budgets.test.ts drives the monitor tick by
// tick with OTLP/JSON; this file lets the worker run on its own.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { withExporter } from '../otel.js';
import { freshProject, waitFor } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { workers: { intervals: { budget_monitor_task: 0.2 }, firstRunDelaySeconds: 0 } });

test('an agent budget breached through the OTel exporter halts that agent only; sync lists it until it is resolved', async () => {
  const { id: P, key, api } = await freshProject(r);
  const budgetA = (await api('POST', '/v1/budgets', { name: 'A cap', scope: 'agent', scope_value: 'agent-a', max_spend_usd: '0.01', action: 'halt' })).budget;
  const budgetB = (await api('POST', '/v1/budgets', { name: 'B cap', scope: 'agent', scope_value: 'agent-b', max_spend_usd: '0.01', action: 'halt' })).budget;

  // gpt-4o at the default prices ($2.50 / $10 per million): A spends 0.035, B 0.00035.
  const { results } = await withExporter(r.url, key, 'protobuf', false, { 'service.name': 'e2e-budget' }, (tracer) => {
    for (const [agent, input, output] of [['agent-a', 10_000, 1_000], ['agent-b', 100, 10]] as const) {
      tracer.startSpan('chat gpt-4o', {
        attributes: { 'gen_ai.agent.name': agent, 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': input, 'gen_ai.usage.output_tokens': output },
      }).end();
    }
  });
  assert.deepEqual(results.map((x) => x.code), [0, 0], 'both exports acknowledged');
  const costs = (await r.pool.query<{ agent_name: string; cost_usd: string }>('SELECT agent_name, cost_usd::text FROM telemetry.spans WHERE project_id = $1 ORDER BY agent_name', [P])).rows;
  assert.deepEqual(costs.map((c) => [c.agent_name, Number(c.cost_usd)]), [['agent-a', 0.035], ['agent-b', 0.00035]]);

  const haltOfA = await waitFor('the monitor halts agent-a', async () =>
    (await api('GET', '/v1/halts')).halts.find((h: any) => h.budget_id === budgetA.id));
  assert.deepEqual([haltOfA.scope, haltOfA.scope_value, haltOfA.state, haltOfA.actor.type], ['agent', 'agent-a', 'active', 'budget']);
  // The first tick that saw the spend crossed 80 % and 100 % at once (both record the full spend), with one halt.
  // (Each crossing is its own transaction: wait until both are visible, not just the halting one.)
  const crossed = await waitFor('both crossings recorded', async () => {
    const rows = (await r.pool.query('SELECT threshold::float8 AS t, spent_usd::float8 AS spent, cardinality(halt_ids) AS halts FROM core.budget_crossings WHERE budget_id = $1 ORDER BY threshold', [budgetA.id])).rows;
    return rows.length >= 2 ? rows : undefined;
  });
  assert.deepEqual(crossed.map((c) => [c.t, c.spent, c.halts]), [[80, 0.035, 0], [100, 0.035, 1]]);

  // B is evaluated by the same ticks (each budget in its own transaction, so possibly just after A's
  // halt is visible) and stays below its budget.
  const b = await waitFor('the monitor records B\'s spend', async () => {
    const got = (await api('GET', `/v1/budgets/${budgetB.id}`)).budget;
    return got.spent_usd === '0.00035' ? got : undefined;
  });
  assert.deepEqual([b.spent_usd, b.exhausted, b.auto_halted], ['0.00035', false, false]);
  const active = (await api('GET', '/v1/halts')).halts;
  assert.deepEqual(active.map((h: any) => h.scope_value), ['agent-a'], 'agent-a only: not agent-b, not the project');

  const syncA = await api('POST', '/v1/intervention/sync', { agents: ['agent-a'] });
  assert.deepEqual(syncA.halts.map((h: any) => [h.id, h.scope, h.scope_value, h.state]), [[haltOfA.id, 'agent', 'agent-a', 'active']]);
  assert.deepEqual(syncA.budgets.find((x: any) => x.id === budgetA.id)?.exhausted, true);
  const syncB = await api('POST', '/v1/intervention/sync', { agents: ['agent-b'] });
  assert.deepEqual(syncB.halts, []);
  assert.deepEqual(syncB.budgets.map((x: any) => [x.id, x.exhausted]), [[budgetB.id, false]]);

  const resolved = await api('POST', `/v1/halts/${haltOfA.id}/resolve`, {});
  assert.equal(resolved.halt.state, 'cleared');
  assert.deepEqual((await api('POST', '/v1/intervention/sync', { agents: ['agent-a'] })).halts, []);

  // Two more ticks over the same window: the crossing is not repeated, so A stays unhalted.
  const evaluatedAt = async () => (await api('GET', `/v1/budgets/${budgetA.id}`)).budget.evaluated_at as string;
  for (let i = 0; i < 2; i++) {
    const before = await evaluatedAt();
    await waitFor('another monitor tick', async () => (await evaluatedAt()) !== before);
  }
  assert.deepEqual((await api('POST', '/v1/intervention/sync', { agents: ['agent-a'] })).halts, []);
  assert.equal((await r.pool.query('SELECT count(*)::int AS n FROM core.budget_crossings WHERE budget_id = $1', [budgetA.id])).rows[0].n, 2);
});
