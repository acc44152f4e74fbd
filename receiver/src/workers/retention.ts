// retention_task: deletes traces (summary, spans, events, links) past each project's retention,
// at most STRATHON_RETENTION_BATCH_SIZE traces per project per sweep, in short transactions.
//
// A trace is expired when its START time (telemetry.traces.start_time, its earliest span) is older
// than now − retention_days. Start, not end, because (a) traces_project_start_idx serves exactly
// that query, and (b) span partitions are by span start time and every span of a trace starts at or
// after the trace does, so a partition whose upper bound is before every project's cutoff holds
// only spans of expired traces: dropping it (retention_cleanup_task) agrees with deleting rows here.
import type pg from 'pg';
import { inTransaction, type Tick, type WorkerDefinition } from './framework.js';

export const RETENTION_TASK = 'retention_task';

/** Traces per transaction: keeps each one short (locks held briefly, bounded WAL per commit). */
export const RETENTION_CHUNK = 500;
const LIMITS = { statementTimeoutMs: 15_000, lockTimeoutMs: 1000 };

export interface PurgeCounts { traces: number; spans: number; events: number; links: number }

const zero = (): PurgeCounts => ({ traces: 0, spans: 0, events: 0, links: 0 });
const add = (a: PurgeCounts, b: PurgeCounts) => {
  a.traces += b.traces; a.spans += b.spans; a.events += b.events; a.links += b.links;
};

// Oldest first, by (project_id, start_time); rows being updated by ingest right now are skipped.
const SELECT_EXPIRED_SQL = `
SELECT trace_id, start_time::text AS start_time FROM telemetry.traces
WHERE project_id = $1 AND start_time < $2
ORDER BY start_time LIMIT $3
FOR UPDATE SKIP LOCKED`;

// `start_time >= $3` (the earliest trace start of the chunk) lets the planner skip older partitions.
const DELETE_TRACES_SQL = `
WITH ids AS (SELECT unnest($2::bytea[]) AS trace_id),
s AS (DELETE FROM telemetry.spans x USING ids WHERE x.project_id = $1 AND x.trace_id = ids.trace_id AND x.start_time >= $3 RETURNING 1),
e AS (DELETE FROM telemetry.span_events x USING ids WHERE x.project_id = $1 AND x.trace_id = ids.trace_id AND x.span_start_time >= $3 RETURNING 1),
l AS (DELETE FROM telemetry.span_links x USING ids WHERE x.project_id = $1 AND x.trace_id = ids.trace_id AND x.span_start_time >= $3 RETURNING 1),
t AS (DELETE FROM telemetry.traces x USING ids WHERE x.project_id = $1 AND x.trace_id = ids.trace_id RETURNING 1)
SELECT (SELECT count(*) FROM t)::integer AS traces, (SELECT count(*) FROM s)::integer AS spans,
       (SELECT count(*) FROM e)::integer AS events, (SELECT count(*) FROM l)::integer AS links`;

// Every project with its cutoff, soft-deleted ones too (their data expires as well). Times travel
// as text: timestamptz has microseconds, a JS Date only milliseconds.
const PROJECT_CUTOFFS_SQL = `
SELECT id, coalesce(retention_days, $1)::integer AS retention_days,
       (now() - make_interval(days => coalesce(retention_days, $1)))::text AS cutoff
FROM core.projects ORDER BY id`;

/**
 * Delete up to `limit` traces of `projectId` that started before `cutoff`, with everything they own,
 * `RETENTION_CHUNK` traces per transaction. Stops early when `signal` is aborted.
 */
export async function purgeTracesBefore(
  client: pg.PoolClient, projectId: string, cutoff: Date | string, limit: number, signal?: AbortSignal,
): Promise<PurgeCounts> {
  const total = zero();
  while (total.traces < limit && !signal?.aborted) {
    const want = Math.min(RETENTION_CHUNK, limit - total.traces);
    const { found, counts } = await inTransaction(client, LIMITS, async () => {
      const sel = await client.query<{ trace_id: Buffer; start_time: string }>(SELECT_EXPIRED_SQL, [projectId, cutoff, want]);
      if (!sel.rows.length) return { found: 0, counts: zero() };
      const earliest = sel.rows[0]?.start_time;
      const del = await client.query<PurgeCounts>(DELETE_TRACES_SQL, [projectId, sel.rows.map((r) => r.trace_id), earliest]);
      return { found: sel.rows.length, counts: del.rows[0] ?? zero() };
    });
    add(total, counts);
    if (found < want) break;
  }
  return total;
}

export async function sweepExpiredTraces(
  tick: Pick<Tick, 'client' | 'signal' | 'log'>, opts: { defaultRetentionDays: number; batchSize: number },
): Promise<PurgeCounts & { projects: number }> {
  const { client, signal, log } = tick;
  const projects = await client.query<{ id: string; retention_days: number; cutoff: string }>(PROJECT_CUTOFFS_SQL, [opts.defaultRetentionDays]);
  const total = zero();
  for (const p of projects.rows) {
    if (signal.aborted) break;
    const t0 = performance.now();
    const n = await purgeTracesBefore(client, p.id, p.cutoff, opts.batchSize, signal);
    add(total, n);
    if (n.traces > 0) {
      log.info({
        project_id: p.id, retention_days: p.retention_days, trace_count: n.traces, span_count: n.spans,
        batch_full: n.traces >= opts.batchSize, duration_ms: Math.round(performance.now() - t0),
      }, 'retention: expired traces deleted');
    }
  }
  return { projects: projects.rows.length, ...total };
}

export function retentionWorker(opts: {
  enabled: boolean; intervalSeconds: number; defaultRetentionDays: number; batchSize: number;
}): WorkerDefinition {
  return {
    name: RETENTION_TASK,
    intervalSeconds: opts.intervalSeconds,
    enabled: opts.enabled,
    disabledReason: 'switched off by STRATHON_RETENTION_ENABLED=false',
    lock: { kind: 'advisory', key: `strathon.worker.${RETENTION_TASK}` },
    run: async (tick) => ({ ...(await sweepExpiredTraces(tick, opts)) }),
  };
}
