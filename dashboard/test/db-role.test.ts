// The read-only role (SPEC §12): what strathon_dashboard may read (exactly the grants of
// migrations/1764000009000_dashboard-role.sql), that the dashboard's connections run as it and
// read-only, that a connection which cannot take the role fails closed, and that the role's
// password is set from DASHBOARD_DATABASE_URL at boot (a SCRAM verifier, not the plaintext).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTestDatabase, memoryLogger } from '../../receiver/test/helpers.js';
import { runMigrations } from '../../receiver/src/db/migrate.js';
import { createReadDb, DbUnavailable, poolConfig } from '../src/db/pool.js';
import { provisionRolePassword, scramVerifier } from '../src/db/provision.js';
import { silentLogger } from '../src/log.js';

const url = await createTestDatabase();
const db = createReadDb({ kind: 'derived', url }, silentLogger);
after(() => db.close());

test('every dashboard connection runs as strathon_dashboard, read-only, with a statement timeout', async () => {
  const [row] = await db.query<{ who: string; ro: string; timeout: string }>('t_who',
    `SELECT current_user AS who, current_setting('default_transaction_read_only') AS ro, current_setting('statement_timeout') AS timeout`, []);
  assert.deepEqual(row, { who: 'strathon_dashboard', ro: 'on', timeout: '5s' });
  // The role is a startup parameter, so even RESET ROLE lands on the dashboard role again.
  const c = new pg.Client(poolConfig({ kind: 'derived', url }));
  await c.connect();
  try {
    await c.query('RESET ROLE');
    assert.equal((await c.query('SELECT current_user AS who')).rows[0].who, 'strathon_dashboard');
  } finally {
    await c.end();
  }
});

test('strathon_dashboard holds exactly the grants of its migration', async () => {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const tables = await admin.query(`SELECT table_schema || '.' || table_name AS t, privilege_type AS p FROM information_schema.role_table_grants
      WHERE grantee = 'strathon_dashboard' ORDER BY 1, 2`);
    assert.deepEqual(tables.rows, [
      { t: 'core.worker_runs', p: 'SELECT' }, { t: 'core.worker_status', p: 'SELECT' }, { t: 'telemetry.traces', p: 'SELECT' },
    ]);
    const columns = await admin.query(`SELECT table_schema || '.' || table_name || '.' || column_name AS c FROM information_schema.column_privileges
      WHERE grantee = 'strathon_dashboard' AND table_name NOT IN ('traces', 'worker_status', 'worker_runs') AND privilege_type = 'SELECT' ORDER BY 1`);
    assert.deepEqual(columns.rows.map((x) => x.c), [
      'core.members.project_id', 'core.members.role', 'core.members.user_id',
      'core.projects.deleted_at', 'core.projects.id', 'core.projects.name', 'core.projects.slug',
      'core.sessions.expires_at', 'core.sessions.revoked_at', 'core.sessions.token_hash', 'core.sessions.user_id',
      'core.users.id', 'core.users.mfa_enabled',
    ]);
    const other = await admin.query(`SELECT count(*)::int AS n FROM information_schema.column_privileges WHERE grantee = 'strathon_dashboard' AND privilege_type <> 'SELECT'`);
    assert.equal(other.rows[0].n, 0, 'no INSERT/UPDATE/REFERENCES on any column');
  } finally {
    await admin.end();
  }
});

test('what the dashboard shows is readable; secrets, spans and writes are refused', async () => {
  const readable = [
    'SELECT count(*) FROM telemetry.traces', 'SELECT count(*) FROM core.worker_status', 'SELECT count(*) FROM core.worker_runs',
    'SELECT id, name FROM core.projects', 'SELECT user_id, role FROM core.members', 'SELECT user_id FROM core.sessions WHERE token_hash = $1::bytea',
    'SELECT mfa_enabled FROM core.users',
  ];
  for (const [i, sql] of readable.entries()) {
    await db.query(`t_ok_${i}`, sql, sql.includes('$1') ? [Buffer.alloc(32)] : []);
  }
  const refused: [string, RegExp][] = [
    ['SELECT * FROM core.api_keys', /permission denied for table api_keys/],
    ['SELECT password_hash FROM core.users', /permission denied for table users/],
    ['SELECT mfa_secret_enc FROM core.users', /permission denied for table users/],
    ['SELECT * FROM core.sessions', /permission denied for table sessions/],
    ['SELECT count(*) FROM telemetry.spans', /permission denied for table spans/],
    ['SELECT secret_enc FROM core.notification_channels', /permission denied for table notification_channels/],
    ['SELECT count(*) FROM audit.events', /permission denied for schema audit/],
    ['INSERT INTO telemetry.traces (project_id, trace_id, start_time, end_time, start_time_unix_nano, end_time_unix_nano) VALUES (gen_random_uuid(), $1, now(), now(), 0, 0)', /read-only transaction|permission denied/],
    ['UPDATE core.worker_status SET runs = 0', /read-only transaction|permission denied/],
  ];
  // (In derived mode the session user is the receiver's own; code that ran `SET ROLE` on purpose
  // could leave the role: the guard protects against mistakes. A dedicated login — next tests —
  // is the boundary.)
  for (const [sql, why] of refused) {
    await assert.rejects(db.query(`t_no_${refused.findIndex((x) => x[0] === sql)}`, sql, sql.includes('$1') ? [Buffer.alloc(16)] : []),
      (err: unknown) => err instanceof DbUnavailable && why.test(err.message), sql);
  }
});

test('a credential that cannot take the role fails closed (no query runs with its own rights)', async () => {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const name = `outsider_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
  after(async () => {
    await admin.query(`DROP ROLE IF EXISTS ${name}`).catch(() => undefined);
    await admin.end();
  });
  const u = new URL(url);
  u.username = name;
  u.password = password;
  const outsider = createReadDb({ kind: 'dedicated', url: u.toString() }, silentLogger);
  try {
    await assert.rejects(outsider.query('t_out', 'SELECT 1', []), (err: unknown) => err instanceof DbUnavailable && /permission denied to set role/.test(err.message));
  } finally {
    await outsider.close();
  }
});

test('DASHBOARD_DATABASE_URL as strathon_dashboard: its password is set at boot (as a SCRAM verifier), then it logs in itself', async () => {
  const password = randomBytes(16).toString('hex');
  const dashUrl = new URL(url);
  dashUrl.username = 'strathon_dashboard';
  dashUrl.password = password;
  const { log, lines } = memoryLogger('debug');
  const logged = { debug: (f: object, m: string) => log.debug(f, m), info: (f: object, m: string) => log.info(f, m), warn: (f: object, m: string) => log.warn(f, m), error: (f: object, m: string) => log.error(f, m) };
  assert.equal(await provisionRolePassword(url, dashUrl.toString(), logged, { attempts: 1 }), true);
  assert.ok(!lines.join('').includes(password), 'the password is never logged');
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const stored = await admin.query(`SELECT rolpassword, rolcanlogin FROM pg_authid WHERE rolname = 'strathon_dashboard'`);
    assert.match(stored.rows[0].rolpassword, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.equal(stored.rows[0].rolcanlogin, true);
  } finally {
    await admin.end();
  }
  const dedicated = createReadDb({ kind: 'dedicated', url: dashUrl.toString() }, silentLogger);
  try {
    const [row] = await dedicated.query<{ s: string; c: string }>('t_ded', 'SELECT session_user AS s, current_user AS c', []);
    assert.deepEqual(row, { s: 'strathon_dashboard', c: 'strathon_dashboard' });
  } finally {
    await dedicated.close();
  }
  // A wrong password is refused by Postgres: the verifier really is the password's.
  const wrong = new URL(dashUrl);
  wrong.password = 'not-the-password';
  const c = new pg.Client({ connectionString: wrong.toString() });
  await assert.rejects(c.connect(), /password authentication failed/);
  assert.notEqual(scramVerifier(password), scramVerifier(password), 'a fresh salt each time');
});

test('the role migration runs on a fresh database although the (cluster-wide) role already exists', async () => {
  const fresh = await createTestDatabase({ fromTemplate: false });
  const applied = await runMigrations(fresh, memoryLogger('warn').log);
  assert.ok(applied.includes('1764000009000_dashboard-role'));
  const c = createReadDb({ kind: 'derived', url: fresh }, silentLogger);
  try {
    await c.query('t_fresh', 'SELECT count(*) FROM telemetry.traces', []);
  } finally {
    await c.close();
  }
});
