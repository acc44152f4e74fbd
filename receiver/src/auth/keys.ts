// API keys (SPEC §6.2): "stra_" + 43 url-safe base64 chars; stored as SHA-256 + 12-char prefix.
import { createHash, randomBytes } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type pg from 'pg';
import { Forbidden, Unauthorized, Unavailable } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { ListenedCache, type Invalidation, type InvalidationListener } from './invalidation.js';

export const DEFAULT_PROJECT_ID = '00000000-0000-0000-0000-000000000001';
export const DEV_KEY = 'stra_dev_local_default_project_do_not_use_in_production';
export const ALL_SCOPES = [
  'traces:write', 'traces:read', 'policies:read', 'policies:write', 'halts:read', 'halts:write', 'approvals:write',
  'budgets:read', 'budgets:write', 'notifications:read', 'notifications:write', 'api_keys:read', 'api_keys:write',
  'audit:read', 'projects:manage',
] as const;
export const DEFAULT_KEY_SCOPES = ['traces:write', 'policies:read'];

export interface ApiKeyPrincipal { kind: 'api_key'; keyId: string; projectId: string; scopes: string[]; keyPrefix: string }

export function hashKey(raw: string): Buffer {
  return createHash('sha256').update(raw, 'utf8').digest();
}

export function generateKey(): string {
  return `stra_${randomBytes(32).toString('base64url')}`;
}

export function hasScope(scopes: readonly string[], scope: string): boolean {
  return scopes.includes('*') || scopes.includes(scope);
}

export function validateScopes(scopes: string[]): string | null {
  for (const s of scopes) if (s !== '*' && !(ALL_SCOPES as readonly string[]).includes(s)) return s;
  return null;
}

/** Insert a key; returns the raw key (shown once) and its id. */
export async function createApiKey(db: Pick<pg.Pool, 'query'>, opts: { projectId: string; name: string; scopes: string[]; createdBy?: string; raw?: string }): Promise<{ id: string; key: string; prefix: string }> {
  const raw = opts.raw ?? generateKey();
  const prefix = raw.slice(0, 12);
  const r = await db.query<{ id: string }>(
    `INSERT INTO core.api_keys (project_id, name, key_hash, key_prefix, scopes, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [opts.projectId, opts.name, hashKey(raw), prefix, opts.scopes, opts.createdBy ?? null],
  );
  return { id: (r.rows[0] as { id: string }).id, key: raw, prefix };
}

/** Seed the well-known dev key on the default project (idempotent). */
export async function seedDevKey(db: Pick<pg.Pool, 'query'>): Promise<void> {
  await db.query(
    `INSERT INTO core.api_keys (project_id, name, key_hash, key_prefix, scopes, created_by)
     VALUES ($1, 'dev key (STRATHON_SEED_DEV_KEY)', $2, $3, '{*}', 'system')
     ON CONFLICT (key_hash) DO UPDATE SET revoked_at = NULL`,
    [DEFAULT_PROJECT_ID, hashKey(DEV_KEY), DEV_KEY.slice(0, 12)],
  );
}

/** Extract the presented credential: `Authorization: Bearer X` or `x-api-key: X`. */
export function presentedCredential(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x.trim()) return x.trim();
  return undefined;
}

function ipAllowed(ip: string, cidrs: string[]): boolean {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    if (!addr) continue;
    const v6 = isIPv6(addr);
    list.addSubnet(addr, Number(bits ?? (v6 ? 128 : 32)), v6 ? 'ipv6' : 'ipv4');
  }
  const plain = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
}

interface KeyRow { id: string; project_id: string; scopes: string[]; key_prefix: string; revoked_at: Date | null; expires_at: Date | null; allowed_ips: string[] | null; deleted_at: Date | null }

export interface KeyCacheOptions {
  /** Without a listener nothing is cached: every request looks its key up. */
  invalidation?: InvalidationListener;
  /** A second guard beside invalidation (ms). */
  ttlMs?: number;
  maxEntries?: number;
}

export class ApiKeyAuthenticator {
  private lastUsedWritten = new Map<string, number>();
  // SHA-256 (base64) of the key → its row, as looked up. Only keys that exist are cached (an
  // unknown key always costs a lookup), so spraying made-up keys cannot grow or churn it.
  private readonly cache: ListenedCache<KeyRow>;

  constructor(private readonly pool: pg.Pool, private readonly log: Logger, opts: KeyCacheOptions = {}) {
    this.cache = new ListenedCache(opts.invalidation, opts.ttlMs ?? 5000, opts.maxEntries ?? 10_000);
    opts.invalidation?.subscribe((inv) => this.invalidate(inv));
  }

  /** Drop what an invalidation names ('all' clears everything). */
  invalidate(inv: Invalidation): void {
    if (inv.kind === 'sync') return;
    if (inv.kind === 'all') this.cache.invalidate();
    else this.cache.invalidate((_h, row) => (inv.kind === 'key' ? row.id === inv.id : row.project_id === inv.id));
  }

  /** For tests: entries held. */
  get cachedKeys(): number { return this.cache.size; }

  /** Resolve a raw key to its principal; 401 for unknown/revoked/expired, 503 if Postgres is unreachable (fail closed). */
  async authenticate(raw: string | undefined, clientIp: string): Promise<ApiKeyPrincipal> {
    if (!raw) throw new Unauthorized('Invalid API key');
    if (!raw.startsWith('stra_') || raw.length > 200) throw new Unauthorized('Invalid API key');
    const hash = hashKey(raw);
    const cacheKey = hash.toString('base64');
    const row = this.cache.get(cacheKey) ?? (await this.lookup(hash, cacheKey));
    if (!row || row.revoked_at || row.deleted_at) throw new Unauthorized('Invalid API key');
    if (row.expires_at && row.expires_at.getTime() <= Date.now()) throw new Unauthorized('API key expired');
    if (row.allowed_ips && row.allowed_ips.length > 0 && !ipAllowed(clientIp, row.allowed_ips)) {
      throw new Forbidden('API key not allowed from this address');
    }
    this.touch(row.project_id, row.id);
    return { kind: 'api_key', keyId: row.id, projectId: row.project_id, scopes: row.scopes, keyPrefix: row.key_prefix };
  }

  private async lookup(hash: Buffer, cacheKey: string): Promise<KeyRow | undefined> {
    const token = this.cache.token();
    let row: KeyRow | undefined;
    try {
      const r = await this.pool.query<KeyRow>(
        {
          name: 'api_key_by_hash',
          text: `SELECT k.id, k.project_id, k.scopes, k.key_prefix, k.revoked_at, k.expires_at, k.allowed_ips::text[] AS allowed_ips, p.deleted_at
                 FROM core.api_keys k JOIN core.projects p ON p.id = k.project_id WHERE k.key_hash = $1`,
          values: [hash],
        },
      );
      row = r.rows[0];
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'API key lookup failed');
      throw new Unavailable('auth backend unavailable', 2);
    }
    if (row) this.cache.set(cacheKey, row, token);
    return row;
  }

  /** last_used_at: at most once a minute per key, never inside the request's work. */
  private touch(projectId: string, keyId: string) {
    const now = Date.now();
    const last = this.lastUsedWritten.get(keyId) ?? 0;
    if (now - last < 60_000) return;
    this.lastUsedWritten.set(keyId, now);
    if (this.lastUsedWritten.size > 100_000) this.lastUsedWritten.clear();
    this.pool
      .query('UPDATE core.api_keys SET last_used_at = now() WHERE project_id = $1 AND id = $2', [projectId, keyId])
      .catch((err: Error) => this.log.debug({ err: err.message }, 'last_used_at update failed'));
  }
}

export function requireScope(p: ApiKeyPrincipal, scope: string): void {
  if (!hasScope(p.scopes, scope)) throw new Forbidden(`missing required scope: ${scope}`);
}
