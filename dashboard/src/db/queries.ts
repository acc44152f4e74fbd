// Every SQL statement the dashboard runs, one named function each, all as strathon_dashboard.
// Each reads through an index: trace summaries by (project_id, start_time) — never spans —,
// worker runs by their primary key (worker, id), identity rows by primary/unique keys.
import type { ReadDb } from './pool.js';

export interface TodayTotals { traces: number; spans: string; errors: string; cost_usd: string; tokens: string }

/** Traces that started today (UTC): count, spans, errors, spend, tokens (traces_project_start_idx). */
export async function todayTotals(db: ReadDb, projectId: string): Promise<TodayTotals> {
  const rows = await db.query<TodayTotals>('dash_today_totals',
    `SELECT count(*)::int AS traces, coalesce(sum(span_count), 0)::text AS spans, coalesce(sum(error_count), 0)::text AS errors,
            coalesce(sum(cost_usd), 0)::text AS cost_usd, coalesce(sum(input_tokens + output_tokens), 0)::text AS tokens
     FROM telemetry.traces
     WHERE project_id = $1 AND start_time >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`, [projectId]);
  return rows[0] ?? { traces: 0, spans: '0', errors: '0', cost_usd: '0', tokens: '0' };
}

export interface MinuteRate { minute: Date; spans: number }

/** Spans per minute over the last hour, by trace start time (traces_project_start_idx). */
export async function spansPerMinute(db: ReadDb, projectId: string): Promise<MinuteRate[]> {
  return db.query<MinuteRate>('dash_spans_per_minute',
    `SELECT date_trunc('minute', start_time) AS minute, sum(span_count)::int AS spans
     FROM telemetry.traces
     WHERE project_id = $1 AND start_time >= date_trunc('minute', now()) - interval '59 minutes'
     GROUP BY 1 ORDER BY 1`, [projectId]);
}

export interface WorkerStatusRow {
  worker: string; replica_id: string; enabled: boolean; interval_seconds: number; lock_kind: string;
  last_started_at: Date | null; last_succeeded_at: Date | null; last_skipped_at: Date | null;
  last_error: string | null; last_error_at: Date | null; consecutive_failures: number;
  runs: string; failures: string; skips: string; last_duration_ms: number | null; next_run_at: Date | null; updated_at: Date;
}

/** One heartbeat row per (worker, replica); the table is small (stale replicas are purged). */
export async function workerStatus(db: ReadDb): Promise<WorkerStatusRow[]> {
  return db.query<WorkerStatusRow>('dash_worker_status',
    `SELECT worker, replica_id, enabled, interval_seconds, lock_kind, last_started_at, last_succeeded_at, last_skipped_at,
            last_error, last_error_at, consecutive_failures, runs::text, failures::text, skips::text, last_duration_ms, next_run_at, updated_at
     FROM core.worker_status ORDER BY worker, updated_at DESC LIMIT 500`, []);
}

export interface WorkerRunRow {
  worker: string; id: string; replica_id: string; started_at: Date; finished_at: Date; duration_ms: number; outcome: string; error: string | null;
}

/** The last `limit` runs of each named worker, newest first (primary key (worker, id) per worker). */
export async function recentRuns(db: ReadDb, workers: string[], limit: number): Promise<WorkerRunRow[]> {
  return db.query<WorkerRunRow>('dash_recent_runs',
    `SELECT r.worker, r.id::text, r.replica_id, r.started_at, r.finished_at, r.duration_ms, r.outcome, r.error
     FROM unnest($1::text[]) AS w(worker)
     CROSS JOIN LATERAL (SELECT * FROM core.worker_runs x WHERE x.worker = w.worker ORDER BY x.id DESC LIMIT $2) r
     ORDER BY r.worker, r.id DESC`, [workers, limit]);
}

export interface MembershipRow { id: string; name: string; slug: string; role: string }

/** The projects of the user holding this (live) session, by the session's SHA-256. */
export async function projectsOfSession(db: ReadDb, tokenHash: Buffer): Promise<MembershipRow[]> {
  return db.query<MembershipRow>('dash_projects_of_session',
    `SELECT p.id, p.name, p.slug, m.role
     FROM core.sessions s
     JOIN core.members m ON m.user_id = s.user_id
     JOIN core.projects p ON p.id = m.project_id
     WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND p.deleted_at IS NULL
     ORDER BY p.name, p.id LIMIT 500`, [tokenHash]);
}

export async function projectName(db: ReadDb, projectId: string): Promise<string | undefined> {
  const rows = await db.query<{ name: string }>('dash_project_name', 'SELECT name FROM core.projects WHERE id = $1', [projectId]);
  return rows[0]?.name;
}

export async function mfaEnabled(db: ReadDb, userId: string): Promise<boolean | undefined> {
  const rows = await db.query<{ mfa_enabled: boolean }>('dash_mfa_enabled', 'SELECT mfa_enabled FROM core.users WHERE id = $1', [userId]);
  return rows[0]?.mfa_enabled;
}
