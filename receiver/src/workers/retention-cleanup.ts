// retention_cleanup_task: drops whole monthly partitions of spans / span_events / span_links once
// EVERY project's retention has passed the partition's upper bound (DETACH, then DROP: no row-by-row
// delete, no vacuum debt), removes the summaries of the traces that started before it, and purges
// heartbeat rows of replicas gone for a week.
//
// Never dropped: the DEFAULT partitions (their bound has no upper value), and last month onwards —
// telemetry.ensure_month_partitions keeps those, so dropping one would only see it recreated.
import type pg from 'pg';
import { inTransaction, type Tick, type WorkerDefinition } from './framework.js';
import { purgeTracesBefore, type PurgeCounts } from './retention.js';

export const RETENTION_CLEANUP_TASK = 'retention_cleanup_task';

const PARENTS = ['spans', 'span_events', 'span_links'] as const;

// Upper bounds are read from the catalog (pg_get_expr prints them in the session time zone, and the
// cast reads them back in the same one), so hand-made or renamed partitions are judged correctly.
const DROPPABLE_SQL = `
WITH horizon AS (
  SELECT least(
    now() - make_interval(days => coalesce((SELECT max(coalesce(retention_days, $1)) FROM core.projects), $1)),
    (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'
  ) AS upto
), parts AS (
  SELECT p.relname::text AS parent, c.relname::text AS child,
    (regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$TO \\('([^']+)'\\)$re$))[1]::timestamptz AS upper_bound
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_class p ON p.oid = i.inhparent
  JOIN pg_namespace n ON n.oid = p.relnamespace
  WHERE n.nspname = 'telemetry' AND p.relname = ANY ($2::text[])
)
SELECT parent, child, upper_bound::text AS upper_bound
FROM parts, horizon
WHERE upper_bound IS NOT NULL AND upper_bound <= horizon.upto
ORDER BY parts.upper_bound, array_position($2::text[], parent)`;

const PURGE_STALE_REPLICAS_SQL = `DELETE FROM core.worker_status WHERE updated_at < now() - interval '7 days'`;

import { purgeExpiredRows } from './purge.js';

const LOCK_TIMEOUT_CODE = '55P03';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Detach and drop one month's partitions (all three tables) in one short transaction; retried on lock timeout. */
async function dropMonth(client: pg.PoolClient, parts: { parent: string; child: string }[], signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await inTransaction(client, { lockTimeoutMs: 2000, statementTimeoutMs: 30_000 }, async () => {
        for (const { parent, child } of parts) {
          const p = `telemetry.${client.escapeIdentifier(parent)}`;
          const c = `telemetry.${client.escapeIdentifier(child)}`;
          await client.query(`ALTER TABLE ${p} DETACH PARTITION ${c}`);
          await client.query(`DROP TABLE ${c}`);
        }
      });
      return;
    } catch (err) {
      // Ingest or a reader holds the parent: do not queue behind it for long; try again shortly.
      if ((err as { code?: string }).code !== LOCK_TIMEOUT_CODE || attempt >= 3 || signal.aborted) throw err;
      await sleep(500 * attempt);
    }
  }
}

export async function dropExpiredPartitions(
  tick: Pick<Tick, 'client' | 'signal' | 'log'>, opts: { defaultRetentionDays: number; batchSize: number },
): Promise<{ partitions_dropped: string[]; summaries: PurgeCounts; stale_replicas_purged: number }> {
  const { client, signal, log } = tick;
  const rows = (await client.query<{ parent: string; child: string; upper_bound: string }>(DROPPABLE_SQL, [opts.defaultRetentionDays, PARENTS])).rows;
  const months = new Map<string, { parent: string; child: string }[]>();
  for (const r of rows) months.set(r.upper_bound, [...(months.get(r.upper_bound) ?? []), r]);

  const dropped: string[] = [];
  let horizon: string | undefined;
  for (const [upperBound, parts] of months) {
    if (signal.aborted) break;
    await dropMonth(client, parts, signal);
    dropped.push(...parts.map((p) => p.child));
    horizon = upperBound;
    log.info({ partitions: parts.map((p) => p.child), upper_bound: upperBound }, 'retention: expired partitions dropped');
  }

  // Traces that started before the dropped range are expired for every project: remove their
  // summaries (and any of their spans left in later or DEFAULT partitions).
  const summaries: PurgeCounts = { traces: 0, spans: 0, events: 0, links: 0 };
  if (horizon) {
    const projects = await client.query<{ id: string }>('SELECT id FROM core.projects ORDER BY id');
    for (const { id } of projects.rows) {
      if (signal.aborted) break;
      const n = await purgeTracesBefore(client, id, horizon, opts.batchSize, signal);
      summaries.traces += n.traces; summaries.spans += n.spans; summaries.events += n.events; summaries.links += n.links;
    }
  }
  const stale = await client.query(PURGE_STALE_REPLICAS_SQL);
  return { partitions_dropped: dropped, summaries, stale_replicas_purged: stale.rowCount ?? 0 };
}

export function retentionCleanupWorker(opts: {
  enabled: boolean; intervalSeconds: number; defaultRetentionDays: number; batchSize: number;
}): WorkerDefinition {
  return {
    name: RETENTION_CLEANUP_TASK,
    intervalSeconds: opts.intervalSeconds,
    enabled: opts.enabled,
    disabledReason: 'switched off by STRATHON_RETENTION_ENABLED=false',
    lock: { kind: 'advisory', key: `strathon.worker.${RETENTION_CLEANUP_TASK}` },
    run: async (tick) => ({ ...(await dropExpiredPartitions(tick, opts)), purged: await purgeExpiredRows(tick.client, tick.signal, opts) }),
  };
}
