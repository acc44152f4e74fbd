// spans_partition_task: keeps monthly span/event/link partitions created from last month to
// STRATHON_PARTITION_MONTHS_AHEAD months ahead. The SQL function is idempotent, serialized by its own
// transaction-level advisory lock, and moves any rows that had landed in the DEFAULT partition for a
// month it creates into that month's new partition.
import { ensurePartitions } from '../db/partitions.js';
import { inTransaction, type WorkerDefinition } from './framework.js';

export const SPANS_PARTITION_TASK = 'spans_partition_task';

export function spansPartitionWorker(opts: { monthsAhead: number; intervalSeconds: number }): WorkerDefinition {
  return {
    name: SPANS_PARTITION_TASK,
    intervalSeconds: opts.intervalSeconds,
    enabled: true,
    lock: { kind: 'advisory', key: `strathon.worker.${SPANS_PARTITION_TASK}` },
    async run({ client, log }) {
      // Creating a partition briefly locks the parent: give up after 5 s rather than queue ingest behind us.
      const created = await inTransaction(client, { lockTimeoutMs: 5000, statementTimeoutMs: 300_000 }, () => ensurePartitions(client, opts.monthsAhead));
      if (created > 0) log.info({ created, months_ahead: opts.monthsAhead }, 'span partitions created');
      return { partitions_created: created };
    },
  };
}
