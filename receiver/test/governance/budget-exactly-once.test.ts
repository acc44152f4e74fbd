// SPEC §8.3, §13 item 7, §15 multi-replica: two receivers on one database both run the budget
// monitor every 50 ms; a budget crossing 80 % and then 100 % yields exactly one crossing record,
// one event and (at 100 %) one halt per threshold per window. And the second guard on its own:
// many evaluations of one budget at once, without the advisory lock, still record each crossing once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, makeKey, makeProject, memoryLogger, startTestReceiver, testConfig } from '../helpers.js';
import { evaluateBudget, getBudget, type BudgetTickResult } from '../../src/governance/governance.js';
import { addChannel, call, costSpan, events, postSpans, waitFor } from './support.js';

const databaseUrl = await createTestDatabase();
const fast = { intervals: { budget_monitor_task: 0.05 }, firstRunDelaySeconds: 0 };
const a = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl, workers: fast });
const b = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl, workers: fast });

const count = async (sql: string, params: unknown[]) => Number((await a.pool.query(sql, params)).rows[0].n);
const crossingsOf = async (budgetId: string) =>
  (await a.pool.query('SELECT threshold::float8 AS t, cardinality(halt_ids) AS halts FROM core.budget_crossings WHERE budget_id = $1 ORDER BY threshold', [budgetId])).rows;

test('two receivers running the monitor concurrently: one crossing, one event, one halt per threshold', async () => {
  const P = await makeProject(a.pool);
  await addChannel(a.pool, P);
  const key = await makeKey(a.pool, ['*'], P);
  const created = await call(a.url, 'POST', '/v1/budgets', key, { name: 'runner cap', scope: 'agent', scope_value: 'runner', max_spend_usd: '1.00' });
  assert.equal(created.status, 201, created.text);
  const budgetId: string = created.body.id;

  // Spend arrives through both receivers.
  await postSpans(a.url, key, 'svc', [costSpan('runner', 0.5)]);
  await postSpans(b.url, key, 'svc', [costSpan('runner', 0.35), costSpan('bystander', 9)]);
  await waitFor('80 % crossing', async () => (await crossingsOf(budgetId)).length === 1);
  await postSpans(b.url, key, 'svc', [costSpan('runner', 0.2)]);
  await waitFor('100 % crossing', async () => (await crossingsOf(budgetId)).length === 2);
  // Many more ticks of both replicas over the same window.
  await new Promise((r) => setTimeout(r, 1500));

  assert.deepEqual(await crossingsOf(budgetId), [{ t: 80, halts: 0 }, { t: 100, halts: 1 }]);
  assert.equal((await events(a.pool, P, 'budget.threshold')).length, 1);
  assert.equal((await events(a.pool, P, 'budget.exceeded')).length, 1);
  assert.equal((await events(a.pool, P, 'halt.created')).length, 1);
  const halts = (await a.pool.query('SELECT scope, scope_value, cleared_at FROM core.halts WHERE project_id = $1', [P])).rows;
  assert.deepEqual(halts, [{ scope: 'agent', scope_value: 'runner', cleared_at: null }], 'the agent, not the project, not the bystander');
  assert.equal(await count(`SELECT count(*) AS n FROM audit.events WHERE project_id = $1 AND action IN ('budget.threshold', 'budget.exceeded')`, [P]), 2);

  // Both replicas really ran the monitor (the advisory lock let one at a time).
  const replicas = (await a.pool.query(`SELECT replica_id, runs::int, skips::int FROM core.worker_status WHERE worker = 'budget_monitor_task'`)).rows;
  assert.equal(replicas.length, 2, JSON.stringify(replicas));
  assert.ok(replicas.every((x: any) => x.runs > 0), JSON.stringify(replicas));
  // And their runs never overlapped: the recorded intervals are disjoint.
  const runs = (await a.pool.query(`SELECT replica_id, started_at, finished_at FROM core.worker_runs WHERE worker = 'budget_monitor_task' ORDER BY started_at`)).rows;
  for (let i = 1; i < runs.length; i++) {
    if (runs[i].replica_id !== runs[i - 1].replica_id) assert.ok(runs[i].started_at >= runs[i - 1].finished_at, 'monitor runs of two replicas overlapped');
  }
});

test('the unique crossing key alone (no advisory lock): concurrent evaluations record each crossing once', async () => {
  const P = await makeProject(a.pool);
  await addChannel(a.pool, P);
  const key = await makeKey(a.pool, ['*'], P);
  const created = await call(a.url, 'POST', '/v1/budgets', key, { name: 'project cap', max_spend_usd: '2', thresholds: [50, 80, 100] });
  // A budget the running monitors skip (inactive) so only this test's evaluations touch it.
  await call(a.url, 'PATCH', `/v1/budgets/${created.body.id}`, key, { is_active: false });
  // A monitor tick that listed the budget while it was still active could evaluate it after the spans
  // below land and take a crossing from this test's evaluations: wait for a run that began after the
  // PATCH (runs hold the advisory lock, so every earlier run has finished by then).
  const patchedAt = (await a.pool.query('SELECT now() AS t')).rows[0].t;
  await waitFor('a monitor run that sees the budget inactive', async () =>
    (await a.pool.query(`SELECT 1 FROM core.worker_runs WHERE worker = 'budget_monitor_task' AND started_at > $1 LIMIT 1`, [patchedAt])).rowCount);
  await postSpans(a.url, key, 'svc', [costSpan('x', 1.5), costSpan('y', 1.5)]);
  const budget = await getBudget(a.pool, P, created.body.id);
  const { log } = memoryLogger();
  const deps = { audit: { config: testConfig(databaseUrl), metrics: a.metrics }, log };
  const clients = await Promise.all(Array.from({ length: 8 }, () => a.pool.connect()));
  try {
    const results = await Promise.all(clients.map(async (c) => {
      const out: BudgetTickResult = { budgets: 0, failed: 0, crossings: 0, halts_created: 0, halts_cleared: 0, approvals_expired: 0 };
      await evaluateBudget(c, deps, budget, out);
      return out;
    }));
    assert.equal(results.reduce((n, x) => n + x.crossings, 0), 3, 'three thresholds crossed, each recorded by exactly one evaluation');
    assert.equal(results.reduce((n, x) => n + x.halts_created, 0), 1);
  } finally {
    for (const c of clients) c.release();
  }
  assert.deepEqual((await crossingsOf(budget.id)).map((c: any) => c.t), [50, 80, 100]);
  assert.equal((await events(a.pool, P, 'budget.threshold')).length, 2);
  assert.equal((await events(a.pool, P, 'budget.exceeded')).length, 1);
  assert.deepEqual((await a.pool.query('SELECT scope FROM core.halts WHERE project_id = $1', [P])).rows, [{ scope: 'project' }]);
});
