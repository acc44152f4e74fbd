// Housekeeping done by retention_cleanup_task (SPEC §11): expired sessions, revoked tokens, used or
// expired mfa tokens, old login-attempt rows, delivered webhooks older than 30 days. Each delete is
// bounded so one tick never holds a long transaction.
import type pg from 'pg';

const BATCH = 10_000;

const PURGES: { name: string; table: string; where: string }[] = [
  { name: 'sessions', table: 'core.sessions', where: `expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'` },
  { name: 'mfa_challenges', table: 'core.mfa_challenges', where: `expires_at < now() - interval '1 hour'` },
  { name: 'revoked_tokens', table: 'core.revoked_tokens', where: `expires_at < now()` },
  { name: 'refresh_tokens', table: 'core.refresh_tokens', where: `expires_at < now() - interval '1 day'` },
  { name: 'rate_events', table: 'core.rate_events', where: `at < now() - interval '1 hour'` },
  { name: 'invitations', table: 'core.invitations', where: `expires_at < now() - interval '30 days'` },
  { name: 'webhook_deliveries', table: 'core.webhook_deliveries', where: `status = 'succeeded' AND created_at < now() - interval '30 days'` },
];

export async function purgeExpiredRows(client: pg.PoolClient, signal: AbortSignal): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const p of PURGES) {
    if (signal.aborted) break;
    const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [p.table]);
    if (!exists.rows[0]?.t) continue;
    let total = 0;
    for (;;) {
      const r = await client.query(`DELETE FROM ${p.table} WHERE ctid IN (SELECT ctid FROM ${p.table} WHERE ${p.where} LIMIT ${BATCH})`);
      total += r.rowCount ?? 0;
      if ((r.rowCount ?? 0) < BATCH || signal.aborted) break;
    }
    counts[p.name] = total;
  }
  return counts;
}
