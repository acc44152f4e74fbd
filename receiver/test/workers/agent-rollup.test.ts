// agent_rollup_task + GET /v1/agents over rolled-up days: the rollup path answers exactly what a
// live aggregate over the same window answers — with spans over many UTC days, today and the
// partial first day of the window, and after late spans arrive for past days.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { av, getJson, postSpans, traceId, type SpanSpec } from '../api/otlp-json.js';
import { agentStats } from '../../src/query/agents.js';
import { createDb } from '../../src/db/db.js';
import { DEFAULT_PROJECT_ID } from '../../src/auth/keys.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { workers: { intervals: { agent_rollup_task: 3600 } } });
const db = createDb(r.pool);
const DAY = 86_400_000;
const nsAgo = (ms: number) => (BigInt(Date.now()) - BigInt(ms)) * 1_000_000n;
/** Noon UTC `n` days ago (a complete past day). */
const noonAgo = (n: number) => {
  const d = new Date(Date.now() - n * DAY);
  return BigInt(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 12)) * 1_000_000n;
};

let seq = 0;
function span(agent: string, startNs: bigint, kind: 'llm' | 'tool' | 'plain', opts: { model?: string; tool?: string; cost?: number; error?: boolean } = {}): SpanSpec {
  const attrs: SpanSpec['attrs'] = { 'gen_ai.agent.name': av.s(agent) };
  if (kind === 'llm') Object.assign(attrs, { 'gen_ai.request.model': av.s(opts.model ?? 'gpt-4o'), 'gen_ai.usage.input_tokens': av.i(100 + seq), 'gen_ai.usage.output_tokens': av.i(10 + seq) });
  if (kind === 'tool') Object.assign(attrs, { 'gen_ai.operation.name': av.s('execute_tool'), 'gen_ai.tool.name': av.s(opts.tool ?? 'search') });
  if (opts.cost !== undefined) attrs['gen_ai.usage.cost'] = av.d(opts.cost);
  seq++;
  return { traceId: traceId(), name: `${agent}-${seq}`, startNs: startNs + BigInt(seq) * 1000n, attrs, ...(opts.error ? { status: { code: 2 } } : {}) };
}

const tick = async () => assert.equal(await r.workers.runOnce('agent_rollup_task'), 'succeeded', r.lines.filter((l) => l.includes('agent_rollup_task')).slice(-1).join(''));

/** The rollup path and a pure-live aggregate agree for every window, and the API answers the same. */
async function assertSameAsLive(label: string) {
  for (const days of [1, 2, 7, 30, 90]) {
    const viaRollup = await agentStats(db, DEFAULT_PROJECT_ID, days);
    const live = await agentStats(db, DEFAULT_PROJECT_ID, days, { live: true });
    assert.deepEqual(viaRollup, live, `${label}: lookback ${days}`);
  }
  const api = await getJson(r.url, r.key, '/v1/agents', { lookback_days: 30 });
  assert.equal(api.status, 200);
  const live = await agentStats(db, DEFAULT_PROJECT_ID, 30, { live: true });
  assert.deepEqual(api.body.agents.map((a: { agent_name: string; total_spans: number }) => [a.agent_name, a.total_spans]), live.map((a) => [a.agent_name, Number(a.total_spans)]));
}

await postSpans(r.url, r.key, 'svc', [
  // Today (live), yesterday and the day before (recomputed each tick), older complete days.
  span('alpha', nsAgo(60_000), 'llm', { model: 'gpt-4o', cost: 0.5 }),
  span('alpha', nsAgo(120_000), 'tool', { tool: 'shell_exec', error: true }),
  span('alpha', noonAgo(1), 'llm', { model: 'claude-3-5-haiku' }),
  span('alpha', noonAgo(2), 'tool', { tool: 'send_email' }),
  span('alpha', noonAgo(5), 'llm', { model: 'gpt-4o-mini', cost: 0.125 }),
  span('beta', noonAgo(3), 'tool', { tool: 'fetch' }),
  span('beta', noonAgo(3), 'plain', { error: true }),
  span('beta', noonAgo(12), 'llm', { model: 'gpt-4o' }),
  span('gamma', noonAgo(20), 'plain'),
  span('gamma', noonAgo(29), 'tool', { tool: 'a_tool' }),
  // The partial first day of a 30-day window: just inside, just outside; and inside only 90 days.
  span('delta', nsAgo(30 * DAY - 600_000), 'llm', { model: 'old-model', cost: 2 }),
  span('delta', nsAgo(30 * DAY + 600_000), 'tool', { tool: 'outside_30' }),
  span('epsilon', noonAgo(45), 'tool', { tool: 'rm' }),
  // The same for 1 and 7 days.
  span('zeta', nsAgo(DAY - 600_000), 'plain'),
  span('zeta', nsAgo(7 * DAY - 600_000), 'plain', { error: true }),
  span('zeta', nsAgo(7 * DAY + 600_000), 'plain'),
]);

test('before any tick everything is live: same answers', async () => {
  assert.equal((await r.pool.query('SELECT count(*)::int AS n FROM telemetry.agent_daily_days')).rows[0].n, 0);
  await assertSameAsLive('no rollup');
});

test('a tick rolls up complete days (not today) and the merged answer is identical', async () => {
  await tick();
  const days = (await r.pool.query<{ day: string }>(`SELECT day::text FROM telemetry.agent_daily_days WHERE project_id = $1 ORDER BY day`, [DEFAULT_PROJECT_ID])).rows.map((x) => x.day);
  const today = new Date().toISOString().slice(0, 10);
  assert.ok(days.length >= 29, `days rolled up: ${days.length}`);
  assert.ok(!days.includes(today), 'today is never rolled up');
  const row = (await r.pool.query(`SELECT spans::int, error_spans::int, tools_used FROM telemetry.agent_daily WHERE project_id = $1 AND agent_name = 'beta' AND day = $2`,
    [DEFAULT_PROJECT_ID, new Date(Number(noonAgo(3) / 1_000_000n)).toISOString().slice(0, 10)])).rows[0];
  assert.deepEqual(row, { spans: 2, error_spans: 1, tools_used: ['fetch'] });
  await assertSameAsLive('after first tick');
});

test('late spans: recent days are recomputed every tick, older ones by the daily pass', async () => {
  await postSpans(r.url, r.key, 'svc', [
    span('alpha', noonAgo(1), 'tool', { tool: 'late_tool', cost: 1 }),
    span('omega', noonAgo(2), 'llm', { model: 'late-model' }),
  ]);
  await tick();
  await assertSameAsLive('late spans on recent days');

  // A late span 6 days back: the rollup of that day is stale until the daily pass recomputes it.
  await postSpans(r.url, r.key, 'svc', [span('beta', noonAgo(6), 'tool', { tool: 'very_late' })]);
  await tick();
  const stale = await agentStats(db, DEFAULT_PROJECT_ID, 30);
  const live = await agentStats(db, DEFAULT_PROJECT_ID, 30, { live: true });
  assert.notDeepEqual(stale, live, 'the rolled-up day is read from the rollup, not live');
  assert.ok(!stale.find((a) => a.agent_name === 'beta')?.tools_used.includes('very_late'));
  await r.pool.query(`UPDATE telemetry.agent_daily_days SET rolled_up_at = now() - interval '25 hours' WHERE project_id = $1`, [DEFAULT_PROJECT_ID]);
  await tick();
  await assertSameAsLive('after the daily pass');

  // A gap in the rolled-up days (a day not rolled up yet): the days before it are read live too.
  await r.pool.query(`DELETE FROM telemetry.agent_daily_days WHERE project_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date - 5`, [DEFAULT_PROJECT_ID]);
  await assertSameAsLive('with a gap');
});

test('rollups of days past retention are deleted', async () => {
  await r.pool.query(`INSERT INTO telemetry.agent_daily_days (project_id, day, rolled_up_at) VALUES ($1, current_date - 400, now())`, [DEFAULT_PROJECT_ID]);
  await r.pool.query(`INSERT INTO telemetry.agent_daily (project_id, day, agent_name, spans, error_spans, llm_calls, tool_calls, cost_usd, input_tokens, output_tokens, first_ns, last_ns, tools_used, models_used)
    VALUES ($1, current_date - 400, 'ghost', 1, 0, 0, 0, 0, 0, 0, 1, 1, '{}', '{}')`, [DEFAULT_PROJECT_ID]);
  await tick();
  const left = await r.pool.query(`SELECT 1 FROM telemetry.agent_daily_days WHERE day = current_date - 400 UNION ALL SELECT 1 FROM telemetry.agent_daily WHERE agent_name = 'ghost'`);
  assert.equal(left.rowCount, 0);
  await assertSameAsLive('after expiry');
});
