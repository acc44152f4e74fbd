// Postgres pool and the boot-time connect-with-retry (SPEC §3 step 2).
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export type Pool = pg.Pool;

export function createPool(url: string, opts: { max?: number; applicationName?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 20,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: opts.applicationName ?? 'strathon-receiver',
    statement_timeout: 30_000,
    // Batch statements sort and hash a few thousand rows; 4 MB (the default) spills them to disk.
    options: '-c work_mem=32MB',
  });
  // A broken idle connection (Postgres restarted) must never crash the process.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Settings for a dedicated session beside the pool (the ingest writers'): the pool's connection and
 * session settings, its own application_name, and room for the writer's staging tables in memory
 * (temp_buffers, default 8 MB, is less than one 5,000-span batch: the batch spilled to disk).
 */
export function sessionConfig(pool: pg.Pool, role: string): pg.ClientConfig {
  const o = pool.options;
  return { ...o, application_name: `${o.application_name ?? 'strathon-receiver'}-${role}`, options: `${o.options ?? ''} -c temp_buffers=32MB`.trim() };
}

/** Retry `select 1` with exponential backoff for up to `totalMs`, logging each failed attempt. */
export async function waitForDatabase(pool: pg.Pool, log: Logger, totalMs = 60_000): Promise<void> {
  const deadline = Date.now() + totalMs;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('select 1');
      if (attempt > 1) log.info({ attempt }, 'connected to Postgres');
      return;
    } catch (err) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`could not connect to Postgres within ${Math.round(totalMs / 1000)} s: ${(err as Error).message}`);
      log.warn({ attempt, retry_in_ms: Math.min(delay, remaining), err: (err as Error).message }, 'Postgres not reachable yet, retrying');
      await new Promise((r) => setTimeout(r, Math.min(delay, remaining)));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** Redact the password of a connection string for logs and banners. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}
