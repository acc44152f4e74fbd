// The receiver's background workers (SPEC §11), built on the framework in framework.ts. Worker
// names are the keys of their checks in /ready. Intervals come from config unless overridden
// (tests run them in milliseconds).
import type { ReceiverContext } from '../context.js';
import { createFramework, type FrameworkOptions, type WorkerDefinition, type Workers } from './framework.js';
import { spansPartitionWorker, SPANS_PARTITION_TASK } from './spans-partition.js';
import { retentionWorker, RETENTION_TASK } from './retention.js';
import { retentionCleanupWorker, RETENTION_CLEANUP_TASK } from './retention-cleanup.js';
import { auditPartitionWorker, AUDIT_PARTITION_TASK } from '../audit/audit.js';
import { webhookSweeperWorker, withWebhookWakeups, WEBHOOK_SWEEPER_TASK, type WebhookSweeperOptions } from '../webhooks/webhooks.js';
import { budgetMonitorWorker, BUDGET_MONITOR_TASK } from '../governance/governance.js';
import { agentRollupWorker, AGENT_ROLLUP_TASK } from './agent-rollup.js';

export type { Workers, WorkerDefinition, FrameworkOptions, TickOutcome, WorkerState, Tick } from './framework.js';
export { createFramework, inTransaction } from './framework.js';

export const WORKER_NAMES = [SPANS_PARTITION_TASK, RETENTION_TASK, RETENTION_CLEANUP_TASK, AUDIT_PARTITION_TASK, WEBHOOK_SWEEPER_TASK, BUDGET_MONITOR_TASK, AGENT_ROLLUP_TASK] as const;
export type WorkerName = (typeof WORKER_NAMES)[number];

/** Partition upkeep runs hourly: partitions are kept months ahead, so this is only a safety margin. */
export const SPANS_PARTITION_INTERVAL_SECONDS = 3600;
/** The agent rollup runs every 5 minutes: it recomputes the last two complete days each tick (late spans). */
export const AGENT_ROLLUP_INTERVAL_SECONDS = 300;

export interface WorkerOptions extends FrameworkOptions {
  /** Per-worker interval in seconds, replacing the configured one. */
  intervals?: Partial<Record<WorkerName, number>>;
  /** Extra workers run by the same framework (tests inject failing or slow ones). */
  extra?: WorkerDefinition[];
  /** Delivery tuning of webhook_sweeper_task (tests shorten its timeout and backoff). */
  webhookSweeper?: WebhookSweeperOptions;
}

export function workerDefinitions(ctx: Pick<ReceiverContext, 'config' | 'metrics'>, options: WorkerOptions = {}): WorkerDefinition[] {
  const { config } = ctx;
  const every = (name: WorkerName, dflt: number) => options.intervals?.[name] ?? dflt;
  const retention = {
    enabled: config.retentionEnabled, defaultRetentionDays: config.retentionDays, batchSize: config.retentionBatchSize,
  };
  return [
    spansPartitionWorker({ monthsAhead: config.partitionMonthsAhead, intervalSeconds: every(SPANS_PARTITION_TASK, SPANS_PARTITION_INTERVAL_SECONDS) }),
    retentionWorker({ ...retention, intervalSeconds: every(RETENTION_TASK, config.retentionIntervalSeconds) }),
    retentionCleanupWorker({ ...retention, intervalSeconds: every(RETENTION_CLEANUP_TASK, config.retentionIntervalSeconds) }),
    auditPartitionWorker(ctx, { intervalSeconds: options.intervals?.[AUDIT_PARTITION_TASK] }),
    webhookSweeperWorker(ctx, { ...options.webhookSweeper, intervalSeconds: every(WEBHOOK_SWEEPER_TASK, config.webhookSweeperIntervalSeconds) }),
    budgetMonitorWorker(ctx, { intervalSeconds: every(BUDGET_MONITOR_TASK, config.budgetMonitorIntervalSeconds) }),
    agentRollupWorker({ defaultRetentionDays: config.retentionDays, retentionEnabled: config.retentionEnabled, intervalSeconds: every(AGENT_ROLLUP_TASK, AGENT_ROLLUP_INTERVAL_SECONDS) }),
    ...(options.extra ?? []),
  ];
}

export function createWorkers(ctx: ReceiverContext, options: WorkerOptions = {}): Workers {
  return withWebhookWakeups(ctx, createFramework({ pool: ctx.pool, log: ctx.log, registry: ctx.metrics.registry }, workerDefinitions(ctx, options), options));
}
