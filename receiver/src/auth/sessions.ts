// Opaque 256-bit session tokens (SHA-256 stored) for users: dashboard cookie or Bearer.
import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';

export const SESSION_COOKIE = 'strathon_session';

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export async function createSession(db: Pick<pg.Pool, 'query'>, userId: string, ttlSeconds: number, meta: { ip?: string; userAgent?: string } = {}): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const r = await db.query<{ expires_at: Date }>(
    `INSERT INTO core.sessions (token_hash, user_id, expires_at, ip, user_agent)
     VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5) RETURNING expires_at`,
    [sha256(token), userId, ttlSeconds, meta.ip ?? null, meta.userAgent?.slice(0, 300) ?? null],
  );
  return { token, expiresAt: (r.rows[0] as { expires_at: Date }).expires_at };
}

export async function revokeSession(db: Pick<pg.Pool, 'query'>, tokenHash: Buffer): Promise<void> {
  await db.query('UPDATE core.sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL', [tokenHash]);
}

/** Revoke every session of a user except (optionally) one. */
export async function revokeUserSessions(db: Pick<pg.Pool, 'query'>, userId: string, except?: Buffer): Promise<number> {
  const r = await db.query(
    'UPDATE core.sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND ($2::bytea IS NULL OR token_hash <> $2)',
    [userId, except ?? null],
  );
  return r.rowCount ?? 0;
}

/** Parse the strathon_session cookie from a Cookie header. */
export function sessionFromCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === SESSION_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}
