// Budgets (SPEC §7.3, §8.3): both create forms, get/patch/delete, validation, 404 across projects;
// the monitor's crossings per threshold with their events, halts scoped like the budget (agent,
// model, project), iteration (loop) budgets, halts lifted when a fixed window rolls over; the
// cost forecast lists budgets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { addChannel, call, costSpan, events, postSpans, toolSpan } from './support.js';

// Each test works in a project of its own; the monitor ticks when a test says so.
const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { workers: { intervals: { budget_monitor_task: 3600 } } });

async function project() {
  const id = await makeProject(r.pool);
  await addChannel(r.pool, id);
  const key = await makeKey(r.pool, ['*'], id);
  const api = (method: string, path: string, body?: unknown) => call(r.url, method, path, key, body);
  return { id, key, api };
}
const tick = async () => assert.equal(await r.workers.runOnce('budget_monitor_task'), 'succeeded');
const crossings = async (budgetId: string) =>
  (await r.pool.query('SELECT threshold::float8 AS t, event_type, cardinality(halt_ids) AS halts FROM core.budget_crossings WHERE budget_id = $1 ORDER BY threshold', [budgetId])).rows;
const activeHalts = async (projectId: string) =>
  (await r.pool.query('SELECT scope, scope_value, budget_id, actor_type FROM core.halts WHERE project_id = $1 AND cleared_at IS NULL ORDER BY scope_value NULLS FIRST', [projectId])).rows;

test('create in Strathon form and CLI form; get, patch, list, delete', async () => {
  const { api } = await project();
  const s = await api('POST', '/v1/budgets', {
    name: 'daily agent spend', scope: 'agent', scope_value: 'alpha', max_spend_usd: '25.50', budget_duration: '1d', action: 'alert', thresholds: [50, 90, 100],
  });
  assert.equal(s.status, 201, s.text);
  assert.equal(s.body.id, s.body.budget.id);
  const b = s.body.budget;
  assert.deepEqual(
    [b.scope, b.scope_value, b.budget_type, b.max_spend_usd, b.budget_duration, b.window_type, b.action, b.thresholds, b.spent_usd, b.current_count, b.is_active, b.auto_halted],
    ['agent', 'alpha', 'cost', '25.5', '1d', 'fixed', 'alert', [50, 90, 100], '0', 0, true, false]);
  assert.deepEqual([b.limit_usd, b.limit_count, b.current_spend], ['25.5', null, '0'], 'the CLI reads these');

  const cli = await api('POST', '/v1/budgets', { name: 'cli cost', budget_type: 'cost', window_type: 'rolling', limit_usd: 12.5 });
  assert.equal(cli.status, 201, cli.text);
  assert.deepEqual([cli.body.budget.scope, cli.body.budget.scope_value, cli.body.budget.max_spend_usd, cli.body.budget.window_type, cli.body.budget.budget_duration, cli.body.budget.action, cli.body.budget.thresholds],
    ['project', null, '12.5', 'rolling', '1d', 'halt', [80, 100]]);
  const loops = await api('POST', '/v1/budgets', { name: 'cli loops', budget_type: 'iteration', window_type: 'fixed', limit_count: 7 });
  assert.deepEqual([loops.body.budget.budget_type, loops.body.budget.max_repeated_calls, loops.body.budget.loop_window_seconds, loops.body.budget.limit_count], ['iteration', 7, 60, 7]);
  const strathonLoops = await api('POST', '/v1/budgets', { name: 'loops', scope: 'agent', scope_value: 'beta', max_repeated_calls: 5, loop_window_seconds: '30' });
  assert.deepEqual([strathonLoops.body.budget.max_repeated_calls, strathonLoops.body.budget.loop_window_seconds], [5, 30]);

  assert.deepEqual((await api('GET', `/v1/budgets/${b.id}`)).body.budget, b);
  const patched = await api('PATCH', `/v1/budgets/${b.id}`, { max_spend_usd: 30, is_active: false });
  assert.equal(patched.status, 200, patched.text);
  assert.deepEqual([patched.body.budget.max_spend_usd, patched.body.budget.is_active, patched.body.budget.scope_value], ['30', false, 'alpha']);
  const list = await api('GET', '/v1/budgets');
  assert.deepEqual(list.body.budgets.map((x: any) => x.name), ['cli cost', 'cli loops', 'loops'], 'inactive budgets only with include_inactive');
  assert.equal((await api('GET', '/v1/budgets?include_inactive=true')).body.budgets.length, 4);
  assert.deepEqual((await api('DELETE', `/v1/budgets/${b.id}`)).body, { deleted: true });
  assert.equal((await api('GET', `/v1/budgets/${b.id}`)).status, 404);
});

test('budget requests are validated (422 with the field)', async () => {
  const { api } = await project();
  const cases: [Record<string, unknown>, string][] = [
    [{ max_spend_usd: '5' }, 'body.name'],
    [{ name: 'x' }, 'body.max_spend_usd'],
    [{ name: 'x', max_spend_usd: '-1' }, 'body.max_spend_usd'],
    [{ name: 'x', max_spend_usd: '0' }, 'body.max_spend_usd'],
    [{ name: 'x', max_spend_usd: 'lots' }, 'body.max_spend_usd'],
    [{ name: 'x', scope: 'agent', max_spend_usd: '5' }, 'body.scope_value'],
    [{ name: 'x', scope: 'project', scope_value: 'a', max_spend_usd: '5' }, 'body.scope_value'],
    [{ name: 'x', scope: 'team', max_spend_usd: '5' }, 'body.scope'],
    [{ name: 'x', max_spend_usd: '5', budget_duration: '2d' }, 'body.budget_duration'],
    [{ name: 'x', max_spend_usd: '5', thresholds: [0] }, 'body.thresholds.0'],
    [{ name: 'x', budget_type: 'cost', limit_count: 3 }, 'body.max_spend_usd'],
    [{ name: 'x', scope: 'model', scope_value: 'gpt-4o', max_repeated_calls: 3 }, 'body.scope'],
  ];
  for (const [body, loc] of cases) {
    const res = await api('POST', '/v1/budgets', body);
    assert.equal(res.status, 422, `${JSON.stringify(body)} → ${res.text}`);
    assert.equal(res.body.detail[0].loc.join('.'), loc, JSON.stringify(body));
  }
});

test("another project's budget is a 404", async () => {
  const a = await project();
  const b = await project();
  const budget = (await a.api('POST', '/v1/budgets', { name: 'mine', max_spend_usd: '1' })).body.budget;
  for (const [m, body] of [['GET'], ['PATCH', { name: 'theirs' }], ['DELETE']] as const) {
    assert.equal((await b.api(m, `/v1/budgets/${budget.id}`, body)).status, 404, m);
  }
  assert.ok(!(await b.api('GET', '/v1/budgets')).text.includes(budget.id));
  assert.equal((await a.api('GET', `/v1/budgets/${budget.id}`)).body.budget.name, 'mine');
});

test('a cost budget crosses 80 % then 100 %: one crossing, one event per threshold; an agent budget halts only that agent', async () => {
  const { id: P, key, api } = await project();
  const budget = (await api('POST', '/v1/budgets', { name: 'alpha daily', scope: 'agent', scope_value: 'alpha', max_spend_usd: '1.00' })).body.budget;
  await postSpans(r.url, key, 'svc', [costSpan('alpha', 0.5), costSpan('beta', 5)]);
  await tick();
  assert.deepEqual(await crossings(budget.id), []);
  const measured = (await api('GET', `/v1/budgets/${budget.id}`)).body.budget;
  assert.deepEqual([measured.spent_usd, measured.current_spend, measured.exhausted], ['0.5', '0.5', false], 'only alpha spend counts');
  assert.ok(measured.window_start && measured.evaluated_at);

  await postSpans(r.url, key, 'svc', [costSpan('alpha', 0.35)]);
  await tick();
  await tick();
  assert.deepEqual(await crossings(budget.id), [{ t: 80, event_type: 'budget.threshold', halts: 0 }]);
  assert.deepEqual(await activeHalts(P), [], 'below 100 % nothing is halted');

  await postSpans(r.url, key, 'svc', [costSpan('alpha', 0.2)]);
  await tick();
  await tick();
  assert.deepEqual(await crossings(budget.id), [{ t: 80, event_type: 'budget.threshold', halts: 0 }, { t: 100, event_type: 'budget.exceeded', halts: 1 }]);
  assert.deepEqual(await activeHalts(P), [{ scope: 'agent', scope_value: 'alpha', budget_id: budget.id, actor_type: 'budget' }], 'alpha only: not beta, not the project');
  const threshold = await events(r.pool, P, 'budget.threshold');
  const exceeded = await events(r.pool, P, 'budget.exceeded');
  assert.deepEqual([threshold.length, exceeded.length], [1, 1]);
  assert.deepEqual([exceeded[0].threshold, exceeded[0].spent_usd, exceeded[0].max_spend_usd, exceeded[0].budget.id], [100, '1.05', '1', budget.id]);
  assert.equal(exceeded[0].halt_ids.length, 1);
  assert.equal((await events(r.pool, P, 'halt.created')).length, 1);
  const after = (await api('GET', `/v1/budgets/${budget.id}`)).body.budget;
  assert.deepEqual([after.auto_halted, after.exhausted, after.spent_usd], [true, true, '1.05']);
  const halt = (await api('GET', '/v1/halts')).body.halts[0];
  assert.deepEqual(halt.actor, { type: 'budget', id: budget.id, display: 'alpha daily' });
  assert.equal(halt.budget_id, budget.id);
  const sync = await api('POST', '/v1/intervention/sync', { agents: ['alpha'] });
  assert.deepEqual(sync.body.budgets, [{ id: budget.id, scope: 'agent', scope_value: 'alpha', exhausted: true }]);
  assert.deepEqual(sync.body.halts.map((h: any) => h.scope_value), ['alpha']);
  assert.deepEqual((await api('POST', '/v1/intervention/sync', { agents: ['beta'] })).body.halts, []);

  // An operator clears the halt: the budget is no longer auto-halted, and the crossing is not repeated in this window.
  assert.equal((await api('DELETE', `/v1/halts/${halt.id}`)).status, 200);
  assert.equal((await api('GET', `/v1/budgets/${budget.id}`)).body.budget.auto_halted, false);
  await postSpans(r.url, key, 'svc', [costSpan('alpha', 1)]);
  await tick();
  assert.equal((await crossings(budget.id)).length, 2);
  assert.deepEqual(await activeHalts(P), []);
});

test('a model budget halts the agents spending on that model; a project budget halts the project', async () => {
  const { id: P, key, api } = await project();
  const model = (await api('POST', '/v1/budgets', { name: 'gpt-4o cap', scope: 'model', scope_value: 'gpt-4o', max_spend_usd: '1' })).body.budget;
  await postSpans(r.url, key, 'svc', [costSpan('writer', 0.7, 'gpt-4o'), costSpan('reviewer', 0.6, 'gpt-4o'), costSpan('cheap', 3, 'gpt-4o-mini')]);
  await tick();
  assert.deepEqual((await activeHalts(P)).map((h: any) => `${h.scope}:${h.scope_value}`), ['agent:reviewer', 'agent:writer']);
  assert.deepEqual((await crossings(model.id)).map((c: any) => [c.t, c.halts]), [[80, 0], [100, 2]]);
  assert.equal((await events(r.pool, P, 'budget.exceeded')).length, 1, 'one event for the crossing, however many agents it halts');

  const whole = (await api('POST', '/v1/budgets', { name: 'project cap', max_spend_usd: '4', action: 'halt' })).body.budget;
  await tick();
  assert.deepEqual((await crossings(whole.id)).map((c: any) => c.t), [80, 100]);
  assert.deepEqual((await activeHalts(P)).map((h: any) => `${h.scope}:${h.scope_value}`), ['project:null', 'agent:reviewer', 'agent:writer']);

  // An alert budget never halts.
  const alertOnly = (await api('POST', '/v1/budgets', { name: 'alert only', scope: 'agent', scope_value: 'cheap', max_spend_usd: '1', action: 'alert' })).body.budget;
  await tick();
  assert.deepEqual((await crossings(alertOnly.id)).map((c: any) => [c.t, c.halts]), [[80, 0], [100, 0]]);
  assert.ok(!(await activeHalts(P)).some((h: any) => h.scope_value === 'cheap'));
});

test('an iteration budget halts an agent that loops on one tool', async () => {
  const { id: P, key, api } = await project();
  const loop = (await api('POST', '/v1/budgets', { name: 'no loops', scope: 'agent', scope_value: 'looper', max_repeated_calls: 3, loop_window_seconds: 600 })).body.budget;
  await postSpans(r.url, key, 'svc', [toolSpan('looper', 'search'), toolSpan('looper', 'search'), toolSpan('looper', 'fetch'), toolSpan('calm', 'search'), toolSpan('calm', 'search'), toolSpan('calm', 'search'), toolSpan('calm', 'search')]);
  await tick();
  assert.deepEqual(await crossings(loop.id), [], 'two calls of one tool: not 80 % of "more than 3"');
  await postSpans(r.url, key, 'svc', [toolSpan('looper', 'search')]);
  await tick();
  assert.deepEqual((await crossings(loop.id)).map((c: any) => c.t), [80]);
  await postSpans(r.url, key, 'svc', [toolSpan('looper', 'search')]);
  await tick();
  assert.deepEqual((await crossings(loop.id)).map((c: any) => [c.t, c.halts]), [[80, 0], [100, 1]]);
  assert.deepEqual((await activeHalts(P)).map((h: any) => h.scope_value), ['looper']);
  const ev = (await events(r.pool, P, 'budget.exceeded'))[0];
  assert.deepEqual([ev.current_count, ev.max_repeated_calls, ev.agent_name, ev.tool_name], [4, 3, 'looper', 'search']);
  assert.equal((await api('GET', `/v1/budgets/${loop.id}`)).body.budget.current_count, 4);
});

test('halts a fixed-window budget set are lifted when its window rolls over', async () => {
  const { id: P, key, api } = await project();
  const budget = (await api('POST', '/v1/budgets', { name: 'hourly', scope: 'agent', scope_value: 'burst', max_spend_usd: '1', budget_duration: '1h' })).body.budget;
  await postSpans(r.url, key, 'svc', [costSpan('burst', 2)]);
  await tick();
  assert.equal((await activeHalts(P)).length, 1);
  // As if the halt had been set in the previous hour: the current window no longer holds its spend.
  await r.pool.query(`UPDATE core.halts SET set_at = date_trunc('hour', now(), 'UTC') - interval '1 minute' WHERE budget_id = $1`, [budget.id]);
  await tick();
  assert.deepEqual(await activeHalts(P), []);
  assert.equal((await events(r.pool, P, 'halt.cleared')).length, 1);
  assert.equal((await api('GET', `/v1/budgets/${budget.id}`)).body.budget.auto_halted, false);
});

test('the cost forecast lists cost budgets with spend, limit and projected exhaustion', async () => {
  const { key, api } = await project();
  const near = (await api('POST', '/v1/budgets', { name: 'near', max_spend_usd: '3', window_type: 'rolling' })).body.budget;
  const far = (await api('POST', '/v1/budgets', { name: 'far', max_spend_usd: '1000', window_type: 'rolling' })).body.budget;
  const gone = (await api('POST', '/v1/budgets', { name: 'gone', scope: 'agent', scope_value: 'spender', max_spend_usd: '1' })).body.budget;
  await api('POST', '/v1/budgets', { name: 'loops', max_repeated_calls: 5 });
  await postSpans(r.url, key, 'svc', [costSpan('spender', 2.4)]);
  const f = await api('GET', '/v1/costs/forecast');
  assert.equal(f.status, 200, f.text);
  const by = Object.fromEntries(f.body.budget_forecasts.map((x: any) => [x.budget_name, x]));
  assert.deepEqual(Object.keys(by).sort(), ['far', 'gone', 'near'], 'cost budgets only');
  assert.deepEqual(Object.keys(by.near).sort(), ['budget_id', 'budget_name', 'limit_usd', 'projected_exhaustion_date', 'spent_usd']);
  assert.deepEqual([by.near.budget_id, by.near.spent_usd, by.near.limit_usd], [near.id, '2.4', '3']);
  // 0.6 USD left at 0.1 USD/hour (2.4 in the last 24 h): about 6 hours from now.
  const hours = (Date.parse(by.near.projected_exhaustion_date) - Date.now()) / 3_600_000;
  assert.ok(hours > 5.9 && hours < 6.1, String(hours));
  assert.equal(by.far.projected_exhaustion_date, null, 'not within its window');
  assert.equal(by.far.budget_id, far.id);
  assert.ok(Math.abs(Date.parse(by.gone.projected_exhaustion_date) - Date.now()) < 60_000, 'already exhausted: now');
  assert.equal(by.gone.budget_id, gone.id);
  assert.deepEqual(f.body.budget_alerts.map((x: any) => x.budget_name).sort(), ['gone', 'near']);
  assert.deepEqual((await api('GET', '/v1/costs/forecast?alert_threshold_hours=1')).body.budget_alerts.map((x: any) => x.budget_name), ['gone']);
});
