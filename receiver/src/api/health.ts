// GET /health (liveness), GET /ready (readiness, each check bounded to 500 ms), GET /metrics.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import type pg from 'pg';
import type { Metrics } from '../observability/metrics.js';
import { migrationStatus } from '../db/migrate.js';

import type { Check } from '../observability/checks.js';
export type { Check };
export type ExtraChecks = () => Record<string, Check>;

const CHECK_TIMEOUT_MS = 500;

async function bounded(name: string, fn: () => Promise<Check>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<Check>((resolve) => {
        timer = setTimeout(() => resolve({ status: 'failed', reason: `${name} check timed out after ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    return { status: 'failed', reason: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function currentPartitionName(now = new Date()): string {
  return `spans_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

export function healthHandler(version: string, startedAt: number) {
  return (_req: Request, res: Response) => {
    res.json({ status: 'ok', service: 'strathon-receiver', version, uptime_s: Math.round((Date.now() - startedAt) / 1000) });
  };
}

export function readyHandler(healthPool: pg.Pool, extra: ExtraChecks, writerDown: () => boolean) {
  return async (_req: Request, res: Response) => {
    const [db, migrations, partitions] = await Promise.all([
      bounded('db', async () => {
        const t0 = performance.now();
        await healthPool.query('select 1');
        if (writerDown()) return { status: 'failed', reason: 'ingest writes are failing (database unavailable)' };
        return { status: 'ok', latency_ms: Math.round((performance.now() - t0) * 10) / 10 };
      }),
      bounded('migrations', async () => {
        const s = await migrationStatus(healthPool);
        if (s.atHead) return { status: 'ok', current: s.current, head: s.head };
        return { status: 'failed', current: s.current, head: s.head, reason: `schema not at head: ${s.pending.length} pending migration(s) (${s.pending.join(', ')}); STRATHON_AUTO_MIGRATE=false, run: strathon-admin migrate up` };
      }),
      bounded('partitions', async () => {
        const name = currentPartitionName();
        const r = await healthPool.query(
          `SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'telemetry.spans'::regclass AND c.relname = $1`, [name]);
        if (r.rowCount) return { status: 'ok', current_partition: name };
        return { status: 'failed', current_partition: name, reason: `this month's span partition telemetry.${name} is missing` };
      }),
    ]);
    const checks: Record<string, Check> = { db, migrations, partitions, ...extra() };
    const ready = Object.values(checks).every((c) => c.status !== 'failed');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  };
}

export function metricsHandler(metrics: Metrics, pool: pg.Pool) {
  return async (_req: IncomingMessage, res: ServerResponse) => {
    metrics.poolTotal.set({ state: 'total' }, pool.totalCount);
    metrics.poolTotal.set({ state: 'idle' }, pool.idleCount);
    metrics.poolTotal.set({ state: 'waiting' }, pool.waitingCount);
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  };
}
