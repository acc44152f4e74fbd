// API key → short-lived access JWT + rotating refresh token (SPEC §6.3). Every pair of one
// exchange shares a family id (`fam`, in both tokens and in core.refresh_tokens). Presenting a
// refresh token that was already used (or revoked) means it leaked: the whole family is revoked
// (revoked_at on every row), and the Authenticator refuses every access token whose `fam` has a
// revoked row — so the thief's and the owner's tokens die together, on every replica.
import { randomUUID } from 'node:crypto';
import { Unauthorized } from '../errors.js';
import type { KeyPrincipal } from './principal.js';
import { signToken, verifyToken } from './tokens.js';
import { inTransaction } from './transaction.js';
import type { AuthDeps } from './events.js';
import type pg from 'pg';

export interface TokenPair { access_token: string; refresh_token: string; token_type: 'Bearer'; expires_in: number }

interface KeyFacts { keyId: string; projectId: string; scopes: string[]; prefix: string }

async function mint(client: pg.PoolClient, deps: AuthDeps, key: KeyFacts, family: string): Promise<TokenPair> {
  const { config } = deps;
  const refreshJti = randomUUID();
  await client.query(
    `INSERT INTO core.refresh_tokens (jti, family_id, project_id, key_id, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
    [refreshJti, family, key.projectId, key.keyId, config.refreshTokenTtlSeconds],
  );
  const base = { sub: key.keyId, pid: key.projectId, scopes: key.scopes, prefix: key.prefix, fam: family };
  const access = await signToken(config.jwtSecret, { ...base, typ: 'access' }, config.accessTokenTtlSeconds);
  const refresh = await signToken(config.jwtSecret, { ...base, typ: 'refresh', jti: refreshJti }, config.refreshTokenTtlSeconds);
  return { access_token: access.token, refresh_token: refresh.token, token_type: 'Bearer', expires_in: config.accessTokenTtlSeconds };
}

/** POST /v1/auth/token: a raw API key starts a new family. */
export async function issueTokenPair(deps: AuthDeps, key: KeyPrincipal): Promise<TokenPair> {
  return inTransaction(deps.pool, async (client) => {
    const family = randomUUID();
    const pair = await mint(client, deps, { keyId: key.keyId, projectId: key.projectId, scopes: key.scopes, prefix: key.keyPrefix }, family);
    await deps.audit(client, {
      projectId: key.projectId, actor: { type: 'api_key', id: key.keyId, display: key.keyPrefix, keyPrefix: key.keyPrefix },
      action: 'auth.token.issue', resource: { type: 'token_family', id: family }, details: { expires_in: pair.expires_in },
    });
    return pair;
  });
}

type Rotation = { pair: TokenPair } | { reused: string } | { dead: 'invalid token' | 'token revoked' };

/** POST /v1/auth/refresh: spend the refresh token, mint the next pair of its family. */
export async function rotateRefreshToken(deps: AuthDeps, refreshToken: string): Promise<TokenPair> {
  const claims = await verifyToken(deps.config.jwtSecret, refreshToken, 'refresh');
  const outcome = await inTransaction<Rotation>(deps.pool, async (client) => {
    const r = await client.query<{ family_id: string; project_id: string; key_id: string; used_at: Date | null; revoked_at: Date | null }>(
      'SELECT family_id, project_id, key_id, used_at, revoked_at FROM core.refresh_tokens WHERE jti = $1 FOR UPDATE',
      [claims.jti],
    );
    const row = r.rows[0];
    if (!row || row.key_id !== claims.sub || row.project_id !== claims.pid) return { dead: 'invalid token' };
    if (row.used_at || row.revoked_at) {
      const revoked = await client.query('UPDATE core.refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL', [row.family_id]);
      // Audited once, when the family dies; tokens of an already-revoked family just get 401.
      if ((revoked.rowCount ?? 0) > 0) {
        await deps.audit(client, {
          projectId: row.project_id, actor: { type: 'api_key', id: row.key_id }, action: 'auth.token.reuse_detected', outcome: 'failure',
          resource: { type: 'token_family', id: row.family_id }, details: { reason: 'a spent refresh token was presented; the family is revoked' },
        });
      }
      return { reused: row.family_id };
    }
    const k = await client.query<{ scopes: string[]; key_prefix: string }>(
      `SELECT k.scopes, k.key_prefix FROM core.api_keys k JOIN core.projects p ON p.id = k.project_id
       WHERE k.project_id = $1 AND k.id = $2 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND p.deleted_at IS NULL`,
      [row.project_id, row.key_id],
    );
    const key = k.rows[0];
    if (!key) return { dead: 'token revoked' };
    await client.query('UPDATE core.refresh_tokens SET used_at = now() WHERE jti = $1', [claims.jti]);
    // The key's current scopes, not the old token's: a narrowed key narrows its tokens.
    return { pair: await mint(client, deps, { keyId: row.key_id, projectId: row.project_id, scopes: key.scopes, prefix: key.key_prefix }, row.family_id) };
  });
  if ('pair' in outcome) return outcome.pair;
  throw new Unauthorized('reused' in outcome ? 'token revoked' : outcome.dead);
}

/** Whether a refresh token is still spendable (for /v1/auth/validate). */
export async function refreshTokenState(pool: pg.Pool, jti: string): Promise<'live' | 'revoked' | 'unknown'> {
  const r = await pool.query<{ spent: boolean }>('SELECT (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS spent FROM core.refresh_tokens WHERE jti = $1', [jti]);
  const row = r.rows[0];
  return !row ? 'unknown' : row.spent ? 'revoked' : 'live';
}
