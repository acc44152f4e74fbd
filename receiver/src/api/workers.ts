// GET /v1/workers (SPEC §7.3, §11): the worker table — each worker's /ready check as seen by this
// replica, its heartbeat row from every replica, and its last 20 runs (whichever replica ran them).
// Workers are instance-wide maintenance, not project data, so the admin of any project may read it.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import type { Workers } from '../workers/framework.js';
import { role, type Route } from './routes.js';

export const WORKER_RUNS_SHOWN = 20;

interface StatusRow {
  worker: string; replica_id: string; enabled: boolean; interval_seconds: number; lock_kind: string;
  last_started_at: Date | null; last_finished_at: Date | null; last_succeeded_at: Date | null; last_skipped_at: Date | null;
  last_error: string | null; last_error_at: Date | null; consecutive_failures: number; runs: string;
}
interface RunRow {
  worker: string; id: string; replica_id: string; started_at: Date; finished_at: Date; duration_ms: number;
  outcome: string; error: string | null; details: unknown;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function workerRoutes(ctx: ReceiverContext, workers: Workers): Route[] {
  const list = async (_req: Request, res: Response) => {
    const checks = workers.checks();
    const names = Object.keys(checks);
    const [status, runs] = await Promise.all([
      ctx.pool.query<StatusRow>(
        `SELECT worker, replica_id, enabled, interval_seconds, lock_kind, last_started_at, last_finished_at, last_succeeded_at,
                last_skipped_at, last_error, last_error_at, consecutive_failures, runs::text AS runs
         FROM core.worker_status WHERE worker = ANY ($1::text[]) ORDER BY worker, replica_id`, [names]),
      // The newest runs of each worker: one index range per worker (primary key (worker, id)).
      ctx.pool.query<RunRow>(
        `SELECT r.worker, r.id::text AS id, r.replica_id, r.started_at, r.finished_at, r.duration_ms, r.outcome, r.error, r.details
         FROM unnest($1::text[]) AS w(name)
         CROSS JOIN LATERAL (
           SELECT * FROM core.worker_runs WHERE worker = w.name ORDER BY id DESC LIMIT ${WORKER_RUNS_SHOWN}
         ) r
         ORDER BY r.worker, r.id DESC`, [names]),
    ]);
    res.json({
      data: names.map((name) => ({
        name,
        check: checks[name],
        replicas: status.rows.filter((s) => s.worker === name).map((s) => ({
          replica_id: s.replica_id, this_replica: s.replica_id === workers.replicaId, enabled: s.enabled,
          interval_seconds: s.interval_seconds, lock_kind: s.lock_kind, last_started_at: iso(s.last_started_at),
          last_finished_at: iso(s.last_finished_at), last_succeeded_at: iso(s.last_succeeded_at), last_skipped_at: iso(s.last_skipped_at),
          last_error: s.last_error, last_error_at: iso(s.last_error_at), consecutive_failures: s.consecutive_failures, runs: Number(s.runs),
        })),
        last_runs: runs.rows.filter((r) => r.worker === name).map((r) => ({
          id: r.id, replica_id: r.replica_id, started_at: r.started_at.toISOString(), finished_at: r.finished_at.toISOString(),
          duration_ms: r.duration_ms, outcome: r.outcome, error: r.error, details: r.details,
        })),
      })),
    });
  };
  return [{ method: 'GET', path: '/v1/workers', auth: role('admin'), body: 'none', handler: list }];
}
