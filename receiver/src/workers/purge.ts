// Housekeeping done by retention_cleanup_task (SPEC §11): expired sessions, revoked tokens, used or
// expired mfa tokens, old login-attempt rows, delivered webhooks older than 30 days, webhook events
// older than 30 days none of whose deliveries is still due or recent, and policy evaluations older
// than their project's retention. Each delete is bounded so one tick never holds a long transaction.
import type pg from 'pg';

const BATCH = 10_000;

// `where` picks the rows to delete, or `batch` selects the ctids of one batch itself; $1, where used,
// is the default retention in days.
const PURGES: { name: string; table: string; where?: string; batch?: string; retention?: true }[] = [
  { name: 'sessions', table: 'core.sessions', where: `expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'` },
  { name: 'mfa_challenges', table: 'core.mfa_challenges', where: `expires_at < now() - interval '1 hour'` },
  { name: 'revoked_tokens', table: 'core.revoked_tokens', where: `expires_at < now()` },
  { name: 'refresh_tokens', table: 'core.refresh_tokens', where: `expires_at < now() - interval '1 day'` },
  { name: 'rate_events', table: 'core.rate_events', where: `at < now() - interval '1 hour'` },
  { name: 'invitations', table: 'core.invitations', where: `expires_at < now() - interval '30 days'` },
  { name: 'webhook_deliveries', table: 'core.webhook_deliveries', where: `status = 'succeeded' AND created_at < now() - interval '30 days'` },
  // Deleting an event cascades to its remaining (dead or succeeded, all older than 30 days) deliveries.
  {
    name: 'webhook_events', table: 'core.webhook_events',
    where: `created_at < now() - interval '30 days' AND NOT EXISTS (SELECT 1 FROM core.webhook_deliveries d
      WHERE d.project_id = webhook_events.project_id AND d.event_id = webhook_events.id
        AND (d.status IN ('pending', 'delivering') OR d.created_at >= now() - interval '30 days'))`,
  },
  // Per project, through policy_evaluations_evaluated_idx: (project_id, evaluated_at < its cutoff).
  {
    name: 'policy_evaluations', table: 'core.policy_evaluations', retention: true,
    batch: `SELECT e.ctid FROM core.projects p CROSS JOIN LATERAL (SELECT ctid FROM core.policy_evaluations
      WHERE project_id = p.id AND evaluated_at < now() - make_interval(days => coalesce(p.retention_days, $1::int)) LIMIT ${BATCH}) e LIMIT ${BATCH}`,
  },
];

/**
 * One pass over every purge. defaultRetentionDays (STRATHON_RETENTION_DAYS) applies to projects
 * without their own retention_days; without it the retention-bound purges are skipped.
 */
export async function purgeExpiredRows(client: pg.PoolClient, signal: AbortSignal, opts: { defaultRetentionDays?: number } = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const p of PURGES) {
    if (signal.aborted) break;
    if (p.retention && opts.defaultRetentionDays === undefined) continue;
    const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [p.table]);
    if (!exists.rows[0]?.t) continue;
    const params = p.retention ? [opts.defaultRetentionDays] : [];
    let total = 0;
    for (;;) {
      const batch = p.batch ?? `SELECT ctid FROM ${p.table} WHERE ${p.where} LIMIT ${BATCH}`;
      const r = await client.query(`DELETE FROM ${p.table} WHERE ctid IN (${batch})`, params);
      total += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < BATCH || signal.aborted) break;
    }
    counts[p.name] = total;
  }
  return counts;
}
