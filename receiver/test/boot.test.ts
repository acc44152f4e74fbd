// Boot: replicas racing on an empty database, STRATHON_AUTO_MIGRATE=false, the admin CLI,
// production fail-fast, the data-dir lock, and the two-command start (npm start) with reuse of ./.data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import net from 'node:net';
import pg from 'pg';
import { createTestDatabase, memoryLogger, testConfig, hex } from './helpers.js';
import { startReceiver } from '../src/receiver.js';
import { freePort } from '../src/db/embedded.js';
import { DEV_KEY } from '../src/auth/keys.js';

const root = path.resolve(import.meta.dirname, '../..');
const mainJs = path.join(root, 'receiver/dist/main.js');
const cliJs = path.join(root, 'receiver/dist/cli.js');
const run = promisify(execFile);

function oneSpan(traceId: string) {
  return JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: '0102030405060708', name: 'boot', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001' }] }] }] });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('two receivers booting at once on one empty database both come up without a migration error', async () => {
  const url = await createTestDatabase({ fromTemplate: false });
  const a = memoryLogger('warn');
  const b = memoryLogger('warn');
  const [ra, rb] = await Promise.all([startReceiver(testConfig(url), a.log), startReceiver(testConfig(url), b.log)]);
  try {
    for (const r of [ra, rb]) assert.equal((await fetch(`${r.url}/ready`)).status, 200);
    const m = await ra.pool.query('SELECT name, count(*)::int n FROM pgmigrations GROUP BY name');
    assert.ok(m.rows.length >= 1);
    for (const row of m.rows) assert.equal(row.n, 1, `migration ${row.name} applied once`);
    const errors = [...a.lines, ...b.lines].filter((l) => /"level":"(error|fatal)"/.test(l));
    assert.deepEqual(errors, []);
  } finally {
    await Promise.all([ra.close(), rb.close()]);
  }
});

test('STRATHON_AUTO_MIGRATE=false: /ready and ingest refuse with the reason until `strathon-admin migrate up`', async () => {
  const url = await createTestDatabase({ fromTemplate: false });
  const { log } = memoryLogger('error');
  const r = await startReceiver(testConfig(url, { STRATHON_AUTO_MIGRATE: 'false' }), log);
  try {
    const ready = await fetch(`${r.url}/ready`);
    assert.equal(ready.status, 503);
    const body = (await ready.json()) as { status: string; checks: { migrations: { status: string; reason: string } } };
    assert.equal(body.status, 'not_ready');
    assert.equal(body.checks.migrations.status, 'failed');
    assert.match(body.checks.migrations.reason, /migrate up/);
    const refused = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': DEV_KEY }, body: oneSpan(hex(16)) });
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get('retry-after'));

    const env = { ...process.env, DATABASE_URL: url, STRATHON_LOG_LEVEL: 'error' };
    const status1 = await run(process.execPath, [cliJs, 'migrate', 'status'], { env }).catch((e) => e);
    assert.equal(status1.code, 3, 'migrate status exits 3 when behind');
    assert.match(status1.stdout, /pending: 1764/);
    const up = await run(process.execPath, [cliJs, 'migrate', 'up'], { env });
    assert.match(up.stdout, /applied: 1764000000000_core-and-telemetry/);
    const status2 = await run(process.execPath, [cliJs, 'migrate', 'status'], { env });
    assert.match(status2.stdout, /pending: none/);
    const created = await run(process.execPath, [cliJs, 'create-api-key', '--project', '00000000-0000-0000-0000-000000000001', '--scopes', 'traces:write'], { env });
    const key = created.stdout.trim();
    assert.match(key, /^stra_[A-Za-z0-9_-]{43}$/);
    assert.match(created.stderr, /shown only once/);

    const traceId = hex(16);
    let status = 0;
    for (let i = 0; i < 30 && status !== 200; i++) {
      const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: oneSpan(traceId) });
      status = res.status;
      if (status !== 200) await new Promise((x) => setTimeout(x, 200));
    }
    assert.equal(status, 200, 'ingest opens once the schema is at head, without a restart');
    assert.equal((await fetch(`${r.url}/ready`)).status, 200);
    const stored = await r.pool.query(`SELECT key_prefix, scopes FROM core.api_keys WHERE key_prefix = $1`, [key.slice(0, 12)]);
    assert.deepEqual(stored.rows[0].scopes, ['traces:write']);
    const raw = await r.pool.query(`SELECT count(*)::int n FROM core.api_keys WHERE key_prefix = $1 AND key_hash <> sha256(convert_to($2, 'UTF8'))`, [key.slice(0, 12), key]);
    assert.equal(raw.rows[0].n, 0, 'only the SHA-256 of the key is stored');
  } finally {
    await r.close();
  }
});

test('admin CLI refuses unknown scopes and projects with a clear message', async () => {
  const url = await createTestDatabase();
  const env = { ...process.env, DATABASE_URL: url, STRATHON_LOG_LEVEL: 'error' };
  const badScope = await run(process.execPath, [cliJs, 'create-api-key', '--project', '00000000-0000-0000-0000-000000000001', '--scopes', 'traces:fly'], { env }).catch((e) => e);
  assert.equal(badScope.code, 2);
  assert.match(badScope.stderr, /unknown scope "traces:fly"/);
  const badProject = await run(process.execPath, [cliJs, 'create-api-key', '--project', '11111111-1111-1111-1111-111111111111'], { env }).catch((e) => e);
  assert.equal(badProject.code, 2);
  assert.match(badProject.stderr, /not found/);
});

test('production with missing secrets exits 1 before listening, naming every variable and how to generate it', async () => {
  const port = await freePort();
  const res = await run(process.execPath, [mainJs], { env: { PATH: process.env.PATH, STRATHON_ENV: 'production', PORT: String(port), DATABASE_URL: 'postgres://x:y@127.0.0.1:1/z' }, timeout: 10_000 }).catch((e) => e);
  assert.equal(res.code, 1);
  for (const name of ['STRATHON_AUDIT_HMAC_KEY', 'STRATHON_ENCRYPTION_KEY', 'STRATHON_PASSWORD_PEPPER', 'STRATHON_JWT_SECRET']) {
    assert.match(res.stderr, new RegExp(`${name} is required when STRATHON_ENV=production; generate with: `));
  }
  assert.equal(await portOpen(port), false);
});

test('a data directory in use by another instance is refused with a clear error', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-lock-'));
  try {
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    writeFileSync(path.join(dir, 'strathon.lock'), String(holder.pid));
    const res = await run(process.execPath, [mainJs], { env: { PATH: process.env.PATH, STRATHON_DATA_DIR: dir, PORT: String(await freePort()), STRATHON_GRPC_ENABLED: 'false' }, timeout: 20_000 }).catch((e) => e);
    holder.kill();
    assert.equal(res.code, 1);
    assert.match(res.stdout + res.stderr, /in use by another Strathon instance \(pid \d+\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Started { proc: ReturnType<typeof spawn>; out: () => string }

async function startTwoCommand(dir: string, ports: { http: number; dash: number; pg: number }): Promise<Started> {
  let out = '';
  const proc = spawn(process.execPath, [path.join(root, 'scripts/start.mjs')], {
    cwd: dir,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, STRATHON_DATA_DIR: path.join(dir, '.data'), PORT: String(ports.http), DASHBOARD_PORT: String(ports.dash),
      STRATHON_EMBEDDED_PG_PORT: String(ports.pg), STRATHON_GRPC_ENABLED: 'false', STRATHON_SEED_DEV_KEY: 'true', STRATHON_LOG_FORMAT: 'json',
    },
  });
  proc.stdout?.on('data', (d) => { out += String(d); });
  proc.stderr?.on('data', (d) => { out += String(d); });
  const t0 = Date.now();
  while (!out.includes('is up') || !out.includes('dashboard listening')) {
    if (proc.exitCode !== null) throw new Error(`start exited early:\n${out}`);
    if (Date.now() - t0 > 60_000) throw new Error(`no banner within 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, out: () => out };
}

async function stopTwoCommand(s: Started): Promise<number | null> {
  const exited = new Promise<number | null>((r) => s.proc.on('exit', (c) => r(c)));
  const t0 = Date.now();
  s.proc.kill('SIGTERM');
  const code = await exited;
  assert.ok(Date.now() - t0 < 10_000, 'stopped within 10 s');
  return code;
}

test('two-command start: banner, dev key accepted, dashboard up, clean stop; second start reuses .data', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-start-'));
  mkdirSync(dir, { recursive: true });
  const ports = { http: await freePort(), dash: await freePort(), pg: await freePort() };
  try {
    const first = await startTwoCommand(dir, ports);
    assert.match(first.out(), /OTLP\/HTTP endpoint: +http:\/\/127\.0\.0\.1:\d+\/v1\/traces/);
    assert.match(first.out(), new RegExp(DEV_KEY));
    assert.match(first.out(), /"first_run":true/);
    const traceId = hex(16);
    const res = await fetch(`http://127.0.0.1:${ports.http}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': DEV_KEY }, body: oneSpan(traceId) });
    assert.equal(res.status, 200);
    const dash = await fetch(`http://127.0.0.1:${ports.dash}/`);
    assert.equal(dash.status, 200);
    assert.match(await dash.text(), /<h1>Sign in<\/h1>/);
    assert.equal(await stopTwoCommand(first), 0);

    const second = await startTwoCommand(dir, ports);
    assert.match(second.out(), /"first_run":false/);
    const pw = readFileSync(path.join(dir, '.data/pg-password'), 'utf8').trim();
    const c = new pg.Client({ host: '127.0.0.1', port: ports.pg, user: 'postgres', password: pw, database: 'strathon' });
    await c.connect();
    const q = await c.query(`SELECT count(*)::int n FROM telemetry.spans WHERE trace_id = decode($1,'hex')`, [traceId]);
    await c.end();
    assert.equal(q.rows[0].n, 1, 'span from the first run is still there');
    assert.equal(await stopTwoCommand(second), 0);
  } finally {
    try {
      rmSync(realpathSync(path.join(dir, '.data/pg')), { recursive: true, force: true });
    } catch {
      // no cluster to remove
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM with a request waiting on its commit: the request gets its 200, then the process exits 0', { timeout: 60_000 }, async () => {
  const url = await createTestDatabase();
  const port = await freePort();
  const child = spawn(process.execPath, [mainJs], { env: { PATH: process.env.PATH, DATABASE_URL: url, PORT: String(port), STRATHON_GRPC_ENABLED: 'false', STRATHON_LOG_LEVEL: 'error' } });
  let out = '';
  child.stdout?.on('data', (d) => { out += String(d); });
  child.stderr?.on('data', (d) => { out += String(d); });
  const exited = new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
  const t0 = Date.now();
  while (!out.includes('is up')) {
    assert.ok(Date.now() - t0 < 30_000, `receiver did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const key = (await c.query(`SELECT 1`), await (await import('../src/auth/keys.js')).createApiKey(c, { projectId: '00000000-0000-0000-0000-000000000001', name: 't', scopes: ['traces:write'] })).key;
  // Warm-up ingest (loads prices, starts every lazy part), then block the next commit.
  assert.equal((await fetch(`http://127.0.0.1:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: oneSpan(hex(16)) })).status, 200);
  await c.query('BEGIN');
  await c.query('LOCK TABLE telemetry.traces IN ACCESS EXCLUSIVE MODE');
  const traceId = hex(16);
  const pending = fetch(`http://127.0.0.1:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: oneSpan(traceId) });
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(child.exitCode, null, 'still draining while the commit waits');
  await c.query('COMMIT');
  assert.equal((await pending).status, 200);
  assert.deepEqual(await exited, [0, null], out);
  const q = await c.query(`SELECT count(*)::int n FROM telemetry.spans WHERE trace_id = decode($1,'hex')`, [traceId]);
  assert.equal(q.rows[0].n, 1);
  await c.end();
});
