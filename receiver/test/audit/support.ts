// Fixtures for the audit tests: a database with audit deps (config keys + metrics), bulk appends,
// the "attacker with database access" (the owner, with the append-only guard lifted), and the
// audit routes served by their own Express app next to a real test receiver.
import { after } from 'node:test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { Request } from 'express';
import type { Config } from '../../src/config.js';
import type { ReceiverContext } from '../../src/context.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { createDb } from '../../src/db/db.js';
import { buildApp } from '../../src/api/app.js';
import { auditRoutes } from '../../src/api/audit.js';
import { ApiKeyAuthenticator } from '../../src/auth/keys.js';
import { Authenticator } from '../../src/auth/authenticate.js';
import { RateLimiter } from '../../src/auth/ratelimit.js';
import { clientIp } from '../../src/auth/client-ip.js';
import { appendAudit, type AppendedAudit, type AuditDeps, type AuditEventInput } from '../../src/audit/audit.js';
import { createTestDatabase, memoryLogger, testConfig, type TestReceiver } from '../helpers.js';
import { SyncSnapshots } from '../../src/governance/sync.js';

export const KEY_1 = '11'.repeat(32);
export const KEY_2 = '22'.repeat(32);
/** Signs with key id 1. */
export const ENV_KEY_1 = { STRATHON_AUDIT_HMAC_KEY: KEY_1, STRATHON_AUDIT_HMAC_KEY_ID: '1' };

export function testPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => undefined);
  after(() => pool.end());
  return pool;
}

export interface AuditDb { url: string; pool: pg.Pool; config: Config; metrics: Metrics; deps: AuditDeps }

/** A fresh database and the deps appendAudit needs, with the keys `env` configures. */
export async function auditDatabase(env: Record<string, string> = ENV_KEY_1, poolMax = 10): Promise<AuditDb> {
  const url = await createTestDatabase();
  const pool = testPool(url, poolMax);
  const config = testConfig(url, env);
  const metrics = createMetrics();
  return { url, pool, config, metrics, deps: { config, metrics } };
}

/** Deps with other keys over the same metrics (key rotation). */
export function depsWith(db: AuditDb, env: Record<string, string>): AuditDeps {
  return { config: testConfig(db.url, env), metrics: db.metrics };
}

export function event(projectId: string, i: number, over: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    projectId,
    actor: { type: 'api_key', id: '3f6c1e0a-0000-4000-8000-000000000001', display: 'stra_abcdefg', keyPrefix: 'stra_abcdefg' },
    action: 'api_key.create',
    resource: { type: 'api_key', id: `key-${i}` },
    requestId: `req-${i}`,
    sourceIp: '203.0.113.7',
    details: { n: i, name: `key ${i}` },
    ...over,
  };
}

export async function appendN(db: pg.Pool, deps: AuditDeps, projectId: string, n: number, over: (i: number) => Partial<AuditEventInput> = () => ({})): Promise<AppendedAudit[]> {
  const out: AppendedAudit[] = [];
  for (let i = 1; i <= n; i++) out.push(await appendAudit(db, event(projectId, i, over(i)), deps));
  return out;
}

/**
 * What an attacker with database access does: statements run as the owner in one transaction with
 * the append-only guard lifted (strathon.audit_maintenance), i.e. the trigger does not stop them.
 */
export async function tamper(pool: pg.Pool, statements: [string, unknown[]?][]): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('strathon.audit_maintenance', 'on', true)`);
    for (const [text, values] of statements) await c.query(text, values);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}

export async function sequences(pool: pg.Pool, projectId: string): Promise<number[]> {
  const r = await pool.query<{ s: string }>('SELECT sequence_no::text AS s FROM audit.events WHERE project_id = $1 ORDER BY sequence_no', [projectId]);
  return r.rows.map((x) => Number(x.s));
}

export interface AuditApi { url: string; ctx: ReceiverContext }

/** The audit routes on their own Express app over a test receiver's pool, metrics and ingest. */
export async function startAuditApi(r: TestReceiver, env: Record<string, string> = ENV_KEY_1): Promise<AuditApi> {
  const { log } = memoryLogger('warn');
  const config = testConfig(r.databaseUrl, { STRATHON_RATE_LIMIT_ENABLED: 'false', ...env });
  const keys = new ApiKeyAuthenticator(r.pool, log);
  const limiter = new RateLimiter(config.rateLimitRps, config.rateLimitBurst, config.rateLimitEnabled);
  const auth = new Authenticator(r.pool, keys, config.jwtSecret);
  const ctx: ReceiverContext = {
    config, pool: r.pool, db: createDb(r.pool), log, metrics: r.metrics, ingest: r.ingest, keys, auth, limiter, sync: new SyncSnapshots(r.pool), schemaGate: async () => undefined,
  };
  const app = buildApp(auditRoutes(ctx), { log, metrics: r.metrics, auth, limiter, clientIp: (req: Request) => clientIp(req, config.trustedProxies) });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ctx };
}

export async function call(url: string, key: string | undefined, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json };
}
