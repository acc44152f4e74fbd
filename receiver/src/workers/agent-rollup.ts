// agent_rollup_task: keeps telemetry.agent_daily, the per-project, per-UTC-day, per-agent totals
// GET /v1/agents reads for the complete days of its window (SPEC §7.3; query/agents.ts merges them
// with a live aggregate of the partial first day and today). Each tick, under an advisory lock:
//   - rolls up every complete day within the project's retention not rolled up yet;
//   - recomputes the last two complete days (late spans land there);
//   - recomputes any day rolled up more than a day ago (a cheap daily pass over the window, which
//     also picks up spans that arrived later still);
//   - deletes the rollup of days past retention (their spans are being purged).
// A day is replaced in one transaction (delete its rows, one INSERT … SELECT … GROUP BY, mark it
// rolled up), batches of days per project, so readers see either the old day or the new one.
import type pg from 'pg';
import { inTransaction, type Tick, type WorkerDefinition } from './framework.js';
import { AGENT_AGGREGATES, HAS_AGENT } from '../query/agents.js';

export const AGENT_ROLLUP_TASK = 'agent_rollup_task';

/** Rolled-up days cover at least this many days back, even with retention switched off (the dashboard's longest window). */
export const AGENT_ROLLUP_MIN_DAYS = 90;
/** Days recomputed in one transaction. */
const DAYS_PER_BATCH = 7;

/** The (project, day) pairs to (re)compute, newest first. $1: default retention days, $2: the window's floor in days when retention is off ($3 false). */
const DUE_SQL = `
WITH t AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today),
p AS (SELECT id, CASE WHEN $3 THEN coalesce(retention_days, $1) ELSE greatest(coalesce(retention_days, $1), $2) END AS keep FROM core.projects)
SELECT p.id AS project_id, array_agg(g.day::date::text ORDER BY g.day DESC) AS days
FROM p CROSS JOIN t CROSS JOIN LATERAL generate_series(t.today - p.keep, t.today - 1, interval '1 day') AS g(day)
LEFT JOIN telemetry.agent_daily_days r ON r.project_id = p.id AND r.day = g.day::date
WHERE r.day IS NULL OR g.day::date >= t.today - 2 OR r.rolled_up_at < now() - interval '1 day'
GROUP BY p.id ORDER BY p.id`;

const EXPIRED_SQL = `
WITH t AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today),
p AS (SELECT id, CASE WHEN $3 THEN coalesce(retention_days, $1) ELSE greatest(coalesce(retention_days, $1), $2) END AS keep FROM core.projects)
DELETE FROM telemetry.%I x USING p, t WHERE x.project_id = p.id AND x.day < t.today - p.keep`;

const ROLLUP_SQL = `
INSERT INTO telemetry.agent_daily AS a (project_id, day, agent_name, spans, error_spans, llm_calls, tool_calls, cost_usd,
  input_tokens, output_tokens, first_ns, last_ns, tools_used, models_used)
SELECT $1::uuid, (s.start_time AT TIME ZONE 'UTC')::date, s.agent_name, ${AGENT_AGGREGATES}
FROM telemetry.spans s
WHERE s.project_id = $1::uuid
  AND s.start_time >= (SELECT min(d) FROM unnest($2::date[]) d)::timestamp AT TIME ZONE 'UTC'
  AND s.start_time < ((SELECT max(d) FROM unnest($2::date[]) d) + 1)::timestamp AT TIME ZONE 'UTC'
  AND (s.start_time AT TIME ZONE 'UTC')::date = ANY ($2::date[])
  AND ${HAS_AGENT}
GROUP BY 2, 3
ON CONFLICT (project_id, day, agent_name) DO UPDATE SET spans = excluded.spans, error_spans = excluded.error_spans,
  llm_calls = excluded.llm_calls, tool_calls = excluded.tool_calls, cost_usd = excluded.cost_usd,
  input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, first_ns = excluded.first_ns,
  last_ns = excluded.last_ns, tools_used = excluded.tools_used, models_used = excluded.models_used`;

async function rollUp(client: pg.PoolClient, projectId: string, days: string[]): Promise<number> {
  return inTransaction(client, { statementTimeoutMs: 300_000, lockTimeoutMs: 5000 }, async () => {
    // Agents gone from a day (purged or deleted spans) must not survive the recompute.
    await client.query(`DELETE FROM telemetry.agent_daily WHERE project_id = $1 AND day = ANY ($2::date[])`, [projectId, days]);
    const n = await client.query(ROLLUP_SQL, [projectId, days]);
    await client.query(`
      INSERT INTO telemetry.agent_daily_days (project_id, day, rolled_up_at) SELECT $1, d, now() FROM unnest($2::date[]) d
      ON CONFLICT (project_id, day) DO UPDATE SET rolled_up_at = excluded.rolled_up_at`, [projectId, days]);
    return n.rowCount ?? 0;
  });
}

export async function runAgentRollup(
  tick: Pick<Tick, 'client' | 'signal'>, opts: { defaultRetentionDays: number; retentionEnabled: boolean },
): Promise<{ days_rolled_up: number; rows: number; days_expired: number }> {
  const { client, signal } = tick;
  const params = [opts.defaultRetentionDays, AGENT_ROLLUP_MIN_DAYS, opts.retentionEnabled];
  let expired = 0;
  for (const table of ['agent_daily', 'agent_daily_days']) {
    const r = await client.query(EXPIRED_SQL.replace('%I', table), params);
    if (table === 'agent_daily_days') expired = r.rowCount ?? 0;
  }
  const due = (await client.query<{ project_id: string; days: string[] }>(DUE_SQL, params)).rows;
  let daysRolled = 0;
  let rows = 0;
  for (const { project_id, days } of due) {
    for (let i = 0; i < days.length && !signal.aborted; i += DAYS_PER_BATCH) {
      const batch = days.slice(i, i + DAYS_PER_BATCH);
      rows += await rollUp(client, project_id, batch);
      daysRolled += batch.length;
    }
  }
  return { days_rolled_up: daysRolled, rows, days_expired: expired };
}

export function agentRollupWorker(opts: { intervalSeconds: number; defaultRetentionDays: number; retentionEnabled: boolean }): WorkerDefinition {
  return {
    name: AGENT_ROLLUP_TASK,
    intervalSeconds: opts.intervalSeconds,
    enabled: true,
    lock: { kind: 'advisory', key: `strathon.worker.${AGENT_ROLLUP_TASK}` },
    run: (tick) => runAgentRollup(tick, opts),
  };
}
