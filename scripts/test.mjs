// `npm test`: start a real Postgres (embedded, or DATABASE_URL), build a migrated template
// database, then run every receiver/dashboard test file with node's test runner.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, freePort } from '../receiver/dist/db/embedded.js';
import { runMigrations } from '../receiver/dist/db/migrate.js';
import { createLogger } from '../receiver/dist/observability/logger.js';

const root = path.resolve(import.meta.dirname, '..');
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn', format: 'text' });

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (/\.test\.(ts|mjs|js)$/.test(name)) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = [path.join(root, 'receiver/test'), path.join(root, 'dashboard/test')]
  .filter((d) => { try { return statSync(d).isDirectory(); } catch { return false; } })
  .flatMap((d) => findTests(d))
  .sort();
if (filter.length) files = files.filter((f) => filter.some((x) => f.includes(x)));

let embedded;
let tmp;
let adminUrl = process.env.DATABASE_URL;
if (!adminUrl) {
  tmp = mkdtempSync(path.join(tmpdir(), 'strathon-test-pg-'));
  const port = await freePort();
  embedded = await startEmbeddedPostgres({ dataDir: tmp, port, log, database: 'postgres' });
  adminUrl = embedded.url;
}
const template = `strathon_tpl_${process.pid}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`DROP DATABASE IF EXISTS ${template}`);
await admin.query(`CREATE DATABASE ${template}`);
const tplUrl = new URL(adminUrl);
tplUrl.pathname = `/${template}`;
await runMigrations(tplUrl.toString(), log);

let code = 1;
try {
  code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [
      '--import', 'tsx', '--test', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, '--test-reporter=spec', ...files,
    ], {
      stdio: 'inherit',
      env: { ...process.env, STRATHON_TEST_ADMIN_URL: adminUrl, STRATHON_TEST_TEMPLATE_DB: template, DATABASE_URL: '' },
    });
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
  });
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => undefined);
  const left = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE 't\\_${process.pid}\\_%'`).catch(() => ({ rows: [] }));
  for (const r of left.rows) await admin.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`).catch(() => undefined);
  await admin.end();
  if (embedded) await embedded.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
