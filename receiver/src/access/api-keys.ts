// API keys of a project (SPEC §6.2): list, create, rotate with a grace period, revoke.
// Keys are only ever addressed within the caller's project: another project's key id is
// indistinguishable from an unknown one (404). Receivers cache keys (auth/keys.ts): a trigger
// NOTIFYs every replica of a change, and this process drops its copy as soon as the change commits.
import { Conflict, NotFound } from '../errors.js';
import { createApiKey, DEFAULT_KEY_SCOPES, generateKey, hashKey } from '../auth/keys.js';
import { principalDisplay } from '../auth/principal.js';
import { inTransaction, recordChange, type AccessDeps, type ChangeContext, type Tx } from './change.js';
import { assertCanGrantScopes } from './grants.js';
import { emitEvent } from '../webhooks/outbox.js';
import { invalidateLocally } from '../auth/invalidation.js';

export const DEFAULT_GRACE_SECONDS = 259_200; // 72 h, as Strathon
export const MAX_GRACE_SECONDS = 30 * 86_400;

export interface ApiKeyRow {
  id: string; project_id: string; name: string; key_prefix: string; scopes: string[];
  created_at: Date; last_used_at: Date | null; revoked_at: Date | null; deprecated_at: Date | null;
  expires_at: Date | null; rotated_from_id: string | null; allowed_ips: string[] | null;
}

export interface NewKeyInput { name: string; scopes?: string[]; expiresAt?: Date | null; allowedIps?: string[] | null }

type Queryable = Pick<Tx, 'query'>;

/** The key as webhook events describe it (SPEC §9): never the secret or its hash. */
const keyEventData = (k: ApiKeyRow) => ({
  api_key: {
    id: k.id, name: k.name, key_prefix: k.key_prefix, scopes: k.scopes, created_at: k.created_at.toISOString(),
    expires_at: k.expires_at?.toISOString() ?? null, revoked_at: k.revoked_at?.toISOString() ?? null, rotated_from_id: k.rotated_from_id,
  },
});

const COLUMNS = `id, project_id, name, key_prefix, scopes, created_at, last_used_at, revoked_at, deprecated_at,
  expires_at, rotated_from_id, allowed_ips::text[] AS allowed_ips`;

// ---- statements ---------------------------------------------------------------------------------

async function selectKeys(db: Queryable, projectId: string, includeRevoked: boolean): Promise<ApiKeyRow[]> {
  const r = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM core.api_keys
     WHERE project_id = $1 AND ($2 OR revoked_at IS NULL) ORDER BY created_at DESC, id`,
    [projectId, includeRevoked],
  );
  return r.rows;
}

async function selectKey(db: Queryable, projectId: string, keyId: string, forUpdate = false): Promise<ApiKeyRow | undefined> {
  const r = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM core.api_keys WHERE project_id = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`, [projectId, keyId]);
  return r.rows[0];
}

/** The new key row (the hash is computed here; only the prefix is ever read back). CIDRs are
 *  stored as networks: "10.1.2.3/8" becomes 10.0.0.0/8, a bare address a /32 or /128. */
async function insertKey(
  db: Queryable, projectId: string, raw: string,
  k: { name: string; scopes: string[]; expiresAt: Date | null; allowedIps: string[] | null; createdBy: string; rotatedFromId: string | null },
): Promise<ApiKeyRow> {
  const r = await db.query<ApiKeyRow>(
    `INSERT INTO core.api_keys (project_id, name, key_hash, key_prefix, scopes, created_by, expires_at, allowed_ips, rotated_from_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7,
             (SELECT array_agg(DISTINCT network(a)) FROM unnest($8::inet[]) a), $9)
     RETURNING ${COLUMNS}`,
    [projectId, k.name, hashKey(raw), raw.slice(0, 12), k.scopes, k.createdBy, k.expiresAt, k.allowedIps, k.rotatedFromId],
  );
  return r.rows[0] as ApiKeyRow;
}

/** Retire a rotated key: deprecated now, expiring after the grace (never later than it already
 *  would); a zero grace also revokes it, so no clock skew between replicas can stretch it. */
async function retireKey(db: Queryable, projectId: string, keyId: string, graceSeconds: number): Promise<ApiKeyRow> {
  const r = await db.query<ApiKeyRow>(
    `UPDATE core.api_keys
     SET deprecated_at = now(),
         expires_at = LEAST(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $3::float8)),
         revoked_at = CASE WHEN $3::float8 = 0 THEN now() ELSE revoked_at END
     WHERE project_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
    [projectId, keyId, graceSeconds],
  );
  return r.rows[0] as ApiKeyRow;
}

async function markRevoked(db: Queryable, projectId: string, keyId: string): Promise<ApiKeyRow | undefined> {
  const r = await db.query<ApiKeyRow>(
    `UPDATE core.api_keys SET revoked_at = now() WHERE project_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
    [projectId, keyId],
  );
  return r.rows[0];
}

/** Refresh tokens minted from a revoked key die with it (access tokens already re-check the key). */
async function revokeRefreshTokensOf(db: Queryable, projectId: string, keyId: string): Promise<void> {
  await db.query(
    'UPDATE core.refresh_tokens SET revoked_at = now() WHERE project_id = $1 AND key_id = $2 AND revoked_at IS NULL', [projectId, keyId]);
}

// ---- services -----------------------------------------------------------------------------------

export function listApiKeys(deps: AccessDeps, projectId: string, includeRevoked: boolean): Promise<ApiKeyRow[]> {
  return selectKeys(deps.pool, projectId, includeRevoked);
}

/** One key of the project; another project's key is "not found". */
export async function getApiKey(deps: AccessDeps, projectId: string, keyId: string): Promise<ApiKeyRow> {
  const k = await selectKey(deps.pool, projectId, keyId);
  if (!k) throw new NotFound('API key not found');
  return k;
}

/** Create a key in the caller's project; the raw key is returned here and never again. */
export async function createKey(deps: AccessDeps, change: ChangeContext, input: NewKeyInput): Promise<{ row: ApiKeyRow; key: string }> {
  const scopes = input.scopes ?? DEFAULT_KEY_SCOPES;
  assertCanGrantScopes(change.principal, scopes);
  const projectId = change.principal.projectId;
  return inTransaction(deps.pool, async (tx) => {
    const raw = generateKey();
    const row = await insertKey(tx, projectId, raw, {
      name: input.name, scopes, expiresAt: input.expiresAt ?? null, allowedIps: input.allowedIps ?? null,
      createdBy: principalDisplay(change.principal), rotatedFromId: null,
    });
    await emitEvent(tx, { projectId, type: 'api_key.created', data: keyEventData(row) });
    await recordChange(tx, deps, change, {
      projectId, action: 'api_key.create', resource: { type: 'api_key', id: row.id },
      details: { name: row.name, key_prefix: row.key_prefix, scopes: row.scopes, expires_at: row.expires_at?.toISOString() ?? null, allowed_ips: row.allowed_ips },
    });
    return { row, key: raw };
  });
}

/**
 * Rotate: a new key with the same scopes, IP list and expiry (the rotator must hold the scopes),
 * named "<old> (rotated)"; the old key is deprecated and expires after `graceSeconds`.
 * A revoked, expired or already rotated key is a 409 (rotate its replacement instead).
 */
export async function rotateKey(
  deps: AccessDeps, change: ChangeContext, keyId: string, graceSeconds: number,
): Promise<{ row: ApiKeyRow; key: string; old: ApiKeyRow }> {
  const projectId = change.principal.projectId;
  const rotated = await inTransaction(deps.pool, async (tx) => {
    const old = await selectKey(tx, projectId, keyId, true);
    if (!old) throw new NotFound('API key not found');
    if (old.revoked_at) throw new Conflict('API key is revoked');
    if (old.deprecated_at) throw new Conflict('API key was already rotated; rotate its replacement instead');
    if (old.expires_at && old.expires_at.getTime() <= Date.now()) throw new Conflict('API key has expired');
    assertCanGrantScopes(change.principal, old.scopes);
    const raw = generateKey();
    const row = await insertKey(tx, projectId, raw, {
      name: `${old.name} (rotated)`, scopes: old.scopes, expiresAt: old.expires_at, allowedIps: old.allowed_ips,
      createdBy: principalDisplay(change.principal), rotatedFromId: old.id,
    });
    const retired = await retireKey(tx, projectId, old.id, graceSeconds);
    await emitEvent(tx, { projectId, type: 'api_key.created', data: keyEventData(row) });
    await recordChange(tx, deps, change, {
      projectId, action: 'api_key.rotate', resource: { type: 'api_key', id: old.id },
      details: {
        new_key_id: row.id, new_key_prefix: row.key_prefix, grace_seconds: graceSeconds,
        old_key_prefix: old.key_prefix, old_expires_at: retired.expires_at?.toISOString() ?? null,
      },
    });
    return { row, key: raw, old: retired };
  });
  invalidateLocally({ kind: 'key', id: keyId });
  return rotated;
}

/** Revoke at once. Unknown or another project's id → 404; already revoked → 409. */
export async function revokeKey(deps: AccessDeps, change: ChangeContext, keyId: string): Promise<ApiKeyRow> {
  const projectId = change.principal.projectId;
  const revoked = await inTransaction(deps.pool, async (tx) => {
    const row = await markRevoked(tx, projectId, keyId);
    if (!row) {
      if (await selectKey(tx, projectId, keyId)) throw new Conflict('API key already revoked');
      throw new NotFound('API key not found');
    }
    await revokeRefreshTokensOf(tx, projectId, keyId);
    await emitEvent(tx, { projectId, type: 'api_key.revoked', data: keyEventData(row) });
    await recordChange(tx, deps, change, {
      projectId, action: 'api_key.revoke', resource: { type: 'api_key', id: row.id },
      details: { name: row.name, key_prefix: row.key_prefix },
    });
    return row;
  });
  invalidateLocally({ kind: 'key', id: keyId });
  return revoked;
}

/** The first key of a new project (inside the project's creating transaction). */
export async function createFirstKey(
  tx: Tx, projectId: string, name: string, scopes: string[], createdBy: string,
): Promise<{ id: string; key: string; prefix: string }> {
  return createApiKey(tx, { projectId, name, scopes, createdBy });
}
