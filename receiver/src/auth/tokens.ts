// Short-lived HS256 access JWTs and rotating refresh tokens (SPEC §6.3). Revocations live in
// Postgres (core.revoked_tokens) so they hold across restarts and replicas; lookups fail closed.
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import type pg from 'pg';
import { Unauthorized, Unavailable } from '../errors.js';

export interface AccessClaims { sub: string; pid: string; scopes: string[]; prefix: string; typ: 'access' | 'refresh'; jti: string; fam?: string; exp: number; iat: number }

export const ISSUER = 'strathon-ts';

export function looksLikeJwt(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s);
}

export async function signToken(secret: Buffer, claims: Omit<AccessClaims, 'exp' | 'iat' | 'jti'> & { jti?: string }, ttlSeconds: number): Promise<{ token: string; jti: string; exp: number }> {
  const jti = claims.jti ?? randomUUID();
  const now = Math.floor(Date.now() / 1000);
  const exp = now + ttlSeconds;
  const token = await new SignJWT({ pid: claims.pid, scopes: claims.scopes, prefix: claims.prefix, typ: claims.typ, ...(claims.fam ? { fam: claims.fam } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(ISSUER)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(secret);
  return { token, jti, exp };
}

/** Verify signature, issuer and expiry; 401 "token expired" / "invalid token". */
export async function verifyToken(secret: Buffer, token: string, typ: 'access' | 'refresh'): Promise<AccessClaims> {
  try {
    const { payload } = await jwtVerify(token, secret, { issuer: ISSUER, algorithms: ['HS256'] });
    if (payload.typ !== typ || typeof payload.sub !== 'string' || typeof payload.jti !== 'string' || typeof payload.pid !== 'string') {
      throw new Unauthorized('invalid token');
    }
    return payload as unknown as AccessClaims;
  } catch (err) {
    if (err instanceof Unauthorized) throw err;
    if (err instanceof joseErrors.JWTExpired) throw new Unauthorized('token expired');
    throw new Unauthorized('invalid token');
  }
}

/** 401 "token revoked" when the jti is revoked; 503 when Postgres cannot answer (fail closed). */
export async function assertNotRevoked(pool: pg.Pool, jti: string): Promise<void> {
  let revoked: boolean;
  try {
    const r = await pool.query({ name: 'jti_revoked', text: 'SELECT 1 FROM core.revoked_tokens WHERE jti = $1', values: [jti] });
    revoked = (r.rowCount ?? 0) > 0;
  } catch {
    throw new Unavailable('auth backend unavailable', 2);
  }
  if (revoked) throw new Unauthorized('token revoked');
}

export async function revokeJti(db: Pick<pg.Pool, 'query'>, jti: string, expUnix: number, reason: string): Promise<void> {
  await db.query(
    'INSERT INTO core.revoked_tokens (jti, expires_at, reason) VALUES ($1, to_timestamp($2), $3) ON CONFLICT (jti) DO NOTHING',
    [jti, expUnix, reason],
  );
}
