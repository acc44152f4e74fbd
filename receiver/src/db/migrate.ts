// Migrations with node-pg-migrate from the top-level migrations/ folder, under its advisory lock.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type pg from 'pg';
import type { Logger } from '../observability/logger.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));
export const MIGRATIONS_TABLE = 'pgmigrations';

export function migrationFiles(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d+_.+\.(sql|js|cjs|mjs|ts)$/.test(f))
    .map((f) => f.replace(/\.(sql|js|cjs|mjs|ts)$/, ''))
    .sort();
}

export function headMigration(): string {
  return migrationFiles().at(-1) ?? '';
}

/** Apply pending migrations. Replicas booting together wait on node-pg-migrate's advisory lock. */
export async function runMigrations(databaseUrl: string, log: Logger, direction: 'up' | 'down' = 'up', count?: number): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    migrationsTable: MIGRATIONS_TABLE,
    direction,
    count: count ?? (direction === 'up' ? Infinity : 1),
    singleTransaction: true,
    advisoryLockMode: 'wait',
    checkOrder: true,
    logger: { debug: () => undefined, info: (m: string) => log.debug({ migrate: m }, 'migrate'), warn: (m: string) => log.warn({ migrate: m }, 'migrate'), error: (m: string) => log.error({ migrate: m }, 'migrate') },
  });
  return applied.map((m) => m.name);
}

export interface MigrationStatus { current: string | null; head: string; pending: string[]; atHead: boolean }

export async function migrationStatus(db: Pick<pg.Pool, 'query'>): Promise<MigrationStatus> {
  const head = headMigration();
  const exists = await db.query<{ t: string | null }>(`select to_regclass('public.${MIGRATIONS_TABLE}')::text as t`);
  let done: string[] = [];
  if (exists.rows[0]?.t) {
    const r = await db.query<{ name: string }>(`select name from public.${MIGRATIONS_TABLE} order by run_on, id`);
    done = r.rows.map((x) => x.name);
  }
  const pending = migrationFiles().filter((f) => !done.includes(f));
  const current = done.length ? [...done].sort().at(-1) ?? null : null;
  return { current, head, pending, atHead: pending.length === 0 };
}
