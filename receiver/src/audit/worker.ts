// audit_partition_task (SPEC §11): one tick keeps audit partitions created ahead and anchors every
// project head that moved. Replica-safe: the framework's advisory lock runs one tick at a time
// across replicas, and both steps are idempotent besides.
import type pg from 'pg';
import type { Config } from '../config.js';
import type { ReceiverContext } from '../context.js';
import type { Logger } from '../observability/logger.js';
import type { WorkerDefinition } from '../workers/framework.js';
import { auditKeys } from './keys.js';
import { ensureAuditPartitions, writeAnchors } from './maintenance.js';

export const AUDIT_PARTITION_TASK = 'audit_partition_task';
/** SPEC §10: every 60 s an anchor records each project's head. */
export const AUDIT_ANCHOR_INTERVAL_SECONDS = 60;

export type AuditMaintenanceContext = Pick<ReceiverContext, 'config' | 'pool' | 'log'>;
export interface AuditMaintenanceResult { partitions_created: number; anchors_written: number }

async function maintain(client: pg.PoolClient, config: Config, log: Logger): Promise<AuditMaintenanceResult> {
  const created = await ensureAuditPartitions(client, config.partitionMonthsAhead);
  if (created > 0) log.info({ created, months_ahead: config.partitionMonthsAhead }, 'audit partitions created');
  const anchors = await writeAnchors(client, auditKeys(config));
  return { partitions_created: created, anchors_written: anchors };
}

/** One tick: ensure partitions, then anchor moved heads. Uses `client` if given, else one from the pool. */
export async function runAuditMaintenance(ctx: AuditMaintenanceContext, client?: pg.PoolClient): Promise<AuditMaintenanceResult> {
  if (client) return maintain(client, ctx.config, ctx.log);
  const c = await ctx.pool.connect();
  let failed: Error | undefined;
  try {
    return await maintain(c, ctx.config, ctx.log);
  } catch (err) {
    failed = err as Error;
    throw err;
  } finally {
    // A connection whose tick failed is closed rather than returned to the pool in an unknown state.
    c.release(failed);
  }
}

/** The framework definition: runs on the tick's connection, which holds the worker's advisory lock. */
export function auditPartitionWorker(ctx: Pick<ReceiverContext, 'config'>, opts: { intervalSeconds?: number } = {}): WorkerDefinition {
  return {
    name: AUDIT_PARTITION_TASK,
    intervalSeconds: opts.intervalSeconds ?? AUDIT_ANCHOR_INTERVAL_SECONDS,
    enabled: true,
    lock: { kind: 'advisory', key: `strathon.worker.${AUDIT_PARTITION_TASK}` },
    async run({ client, log }) {
      return { ...(await maintain(client, ctx.config, log)) };
    },
  };
}
