// Abuse limits that must hold across replicas (SPEC §6.4): sliding windows over rows in
// core.rate_events. Every attempt counts, successful or not ("5 attempts per 5 minutes"); an
// attempt refused with 429 is not recorded, so Retry-After tells the truth.
//
// Old rows are purged by retention_cleanup_task (SPEC §11, "old login-attempt rows"); every window
// here is at most 5 minutes, so anything older than an hour can go.
import type pg from 'pg';
import { TooManyRequests } from '../errors.js';
import { inTransaction } from './transaction.js';

export interface Limit { bucket: string; max: number; windowSeconds: number; what: string }

export const LOGIN_PER_IP: Limit = { bucket: 'login_ip', max: 5, windowSeconds: 300, what: 'login attempts' };
export const LOGIN_PER_ACCOUNT: Limit = { bucket: 'login_account', max: 5, windowSeconds: 300, what: 'login attempts' };
export const CHANGE_PASSWORD: Limit = { bucket: 'change_password', max: 10, windowSeconds: 60, what: 'password change attempts' };
/** MFA enable/disable: a code (and for disable a password) is checked, so it is limited too. */
export const MFA_MANAGE: Limit = { bucket: 'mfa_manage', max: 10, windowSeconds: 60, what: 'MFA attempts' };
/** Codes tried per mfa_token (core.mfa_challenges.attempts); then the token is burnt. */
export const MFA_TOKEN_ATTEMPTS = 5;

export interface LimitCheck { limit: Limit; identifier: string }

/**
 * Record one attempt against every check, or none: 429 (Retry-After = seconds until a slot frees)
 * when any window is full. Checks of the same (bucket, identifier) are serialized by a
 * transaction-level advisory lock, so concurrent requests on any replica cannot overshoot.
 */
export async function takeAttempt(pool: pg.Pool, checks: LimitCheck[]): Promise<void> {
  const sorted = [...checks].sort((a, b) => key(a).localeCompare(key(b)));
  const refused = await inTransaction(pool, async (client) => {
    for (const c of sorted) await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7206))', [key(c)]);
    let worst: { check: LimitCheck; retryAfterS: number } | undefined;
    for (const c of sorted) {
      const retryAfterS = await secondsUntilFree(client, c);
      if (retryAfterS > 0 && (!worst || retryAfterS > worst.retryAfterS)) worst = { check: c, retryAfterS };
    }
    if (worst) return worst;
    await client.query(
      'INSERT INTO core.rate_events (bucket, identifier, at) SELECT b, i, clock_timestamp() FROM unnest($1::text[], $2::text[]) AS c(b, i)',
      [sorted.map((c) => c.limit.bucket), sorted.map((c) => c.identifier)],
    );
    return undefined;
  });
  if (refused) {
    throw new TooManyRequests(`too many ${refused.check.limit.what}, retry in ${refused.retryAfterS}s`, refused.retryAfterS);
  }
}

function key(c: LimitCheck): string {
  return `${c.limit.bucket}:${c.identifier}`;
}

/** 0 when the window has room; else whole seconds until the max-th most recent attempt leaves it. */
async function secondsUntilFree(client: pg.PoolClient, c: LimitCheck): Promise<number> {
  const r = await client.query<{ n: number; free_in: number | null }>(
    `SELECT count(*)::int AS n, ceil(extract(epoch FROM min(at) + make_interval(secs => $3) - clock_timestamp()))::int AS free_in
     FROM (SELECT at FROM core.rate_events
           WHERE bucket = $1 AND identifier = $2 AND at > clock_timestamp() - make_interval(secs => $3)
           ORDER BY at DESC LIMIT $4) recent`,
    [c.limit.bucket, c.identifier, c.limit.windowSeconds, c.limit.max],
  );
  const row = r.rows[0];
  if (!row || row.n < c.limit.max) return 0;
  return Math.max(1, row.free_in ?? 1);
}
