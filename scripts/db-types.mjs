// Regenerate receiver/src/db/types.ts (Kysely types) from the migrated schema:
// `npm run db:types`. Uses DATABASE_URL's server if set (in a scratch database), else an embedded one.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, freePort } from '../receiver/dist/db/embedded.js';
import { runMigrations } from '../receiver/dist/db/migrate.js';
import { createLogger } from '../receiver/dist/observability/logger.js';

const root = path.resolve(import.meta.dirname, '..');
export const TYPES_FILE = path.join(root, 'receiver/src/db/types.ts');
export const CODEGEN_ARGS = ['--dialect', 'postgres', '--exclude-pattern', 'public.pgmigrations', '--numeric-parser', 'string', '--type-only-imports'];

const log = createLogger({ level: 'warn', format: 'text' });
let embedded;
let tmp;
let adminUrl = process.env.DATABASE_URL;
if (!adminUrl) {
  tmp = mkdtempSync(path.join(tmpdir(), 'strathon-types-pg-'));
  embedded = await startEmbeddedPostgres({ dataDir: tmp, port: await freePort(), log, database: 'postgres' });
  adminUrl = embedded.url;
}
const name = `strathon_types_${process.pid}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
try {
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  await runMigrations(u.toString(), log);
  execFileSync(path.join(root, 'node_modules/.bin/kysely-codegen'), [...CODEGEN_ARGS, '--url', u.toString(), '--out-file', TYPES_FILE], { stdio: 'inherit' });
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
  if (embedded) await embedded.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
