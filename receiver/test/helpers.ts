// Shared test fixtures: a database per test file (cloned from the migrated template), a real
// receiver on an ephemeral port, real API keys.
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { startReceiver, type Receiver } from '../src/receiver.js';
import type { WorkerOptions } from '../src/workers/workers.js';
import { createApiKey, DEFAULT_PROJECT_ID } from '../src/auth/keys.js';
import { Writable } from 'node:stream';

export { DEFAULT_PROJECT_ID };

const adminUrl = process.env.STRATHON_TEST_ADMIN_URL;
const template = process.env.STRATHON_TEST_TEMPLATE_DB;
if (!adminUrl || !template) throw new Error('run tests with `npm test` (scripts/test.mjs sets up Postgres)');

export function dbUrl(name: string): string {
  const u = new URL(adminUrl as string);
  u.pathname = `/${name}`;
  return u.toString();
}

let counter = 0;
/** A fresh database for this test file; `fromTemplate: false` gives an empty one (no schema). */
export async function createTestDatabase(opts: { fromTemplate?: boolean } = {}): Promise<string> {
  const name = `t_${process.ppid}_${process.pid}_${counter++}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(opts.fromTemplate === false ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  after(async () => {
    const a = new pg.Client({ connectionString: adminUrl });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await a.end();
  });
  return dbUrl(name);
}

/** A logger that keeps lines in memory so tests can assert on them. */
export function memoryLogger(level = 'info') {
  const lines: string[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const log = createLogger({ level, format: 'json', destination: dest as unknown as NodeJS.WritableStream & { write(s: string): boolean } });
  return { log, lines };
}

export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', STRATHON_HOST: '127.0.0.1', STRATHON_GRPC_ENABLED: 'false', STRATHON_LOG_LEVEL: 'warning', ...env }).config;
}

export interface TestReceiver extends Receiver { key: string; lines: string[] }

/** Start a real receiver on a fresh database with a `*` key. Closed after the test file. */
export async function startTestReceiver(env: Record<string, string> = {}, opts: { databaseUrl?: string; workers?: WorkerOptions } = {}): Promise<TestReceiver> {
  const url = opts.databaseUrl ?? (await createTestDatabase());
  const { log, lines } = memoryLogger(env.STRATHON_LOG_LEVEL ?? 'info');
  const r = await startReceiver(testConfig(url, env), log, { workers: opts.workers });
  after(() => r.close());
  const k = await createApiKey(r.pool, { projectId: DEFAULT_PROJECT_ID, name: 'test', scopes: ['*'] });
  return Object.assign(r, { key: k.key, lines });
}

export async function makeProject(pool: pg.Pool, name = `p-${randomBytes(3).toString('hex')}`): Promise<string> {
  const r = await pool.query<{ id: string }>(
    `INSERT INTO core.projects (organization_id, name, slug) VALUES ('00000000-0000-0000-0000-000000000001', $1, $1) RETURNING id`, [name]);
  return (r.rows[0] as { id: string }).id;
}

export async function makeKey(pool: pg.Pool, scopes: string[], projectId = DEFAULT_PROJECT_ID): Promise<string> {
  return (await createApiKey(pool, { projectId, name: 'test', scopes })).key;
}

export const hex = (n: number) => randomBytes(n).toString('hex');

/** Poll `cond` every 10 ms; fail the test with `what` after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Run SQL with triggers off (no NOTIFY): only a cache miss or reload can see the change. */
export async function silently(url: string, sql: string, values: unknown[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query('SET LOCAL session_replication_role = replica');
    await c.query(sql, values);
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}
