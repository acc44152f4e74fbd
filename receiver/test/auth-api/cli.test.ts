// strathon-admin create-user / reset-password against DATABASE_URL (SPEC §3), with a receiver on
// the same database proving the result; the CLI's actions are on the audit chain, which verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { auditKeys, verifyChain } from '../../src/audit/audit.js';
import { DEFAULT_PROJECT_ID, makeProject, testConfig } from '../helpers.js';
import { GOOD_PASSWORD, get, post, startAuthReceiver, uniqueEmail } from './support.js';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../dist/cli.js');

async function admin(databaseUrl: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: databaseUrl };
  return run(process.execPath, [CLI, ...args], { env, cwd: path.dirname(CLI) }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

test('strathon-admin create-user and reset-password', async () => {
  const r = await startAuthReceiver();
  const url = r.databaseUrl;

  // First user, no password given: owner by default, temporary password printed, change required.
  const ownerEmail = uniqueEmail('cli-owner');
  const created = await admin(url, 'create-user', '--email', ownerEmail);
  assert.equal(created.code, 0, created.stderr);
  const temp = created.stdout.trim();
  assert.match(temp, /^[A-Za-z0-9]{20}$/);
  assert.match(created.stderr, /as owner of project/);
  const login = await post(r.url, '/v1/auth/login', { email: ownerEmail, password: temp });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  assert.equal(login.body.must_change_password, true);
  const me = await get(r.url, '/v1/me', { token: login.body.token });
  assert.equal(me.body.role, 'owner');
  assert.equal((await get(r.url, '/v1/traces', { token: login.body.token })).status, 403, 'must change the temporary password first');

  // With a password, a role and a project.
  const project = await makeProject(r.pool);
  const viewerEmail = uniqueEmail('cli-viewer');
  const withPassword = await admin(url, 'create-user', '--email', viewerEmail, '--password', GOOD_PASSWORD, '--role', 'viewer', '--project', project, '--name', 'Vera');
  assert.equal(withPassword.code, 0, withPassword.stderr);
  const vLogin = await post(r.url, '/v1/auth/login', { email: viewerEmail, password: GOOD_PASSWORD });
  assert.equal(vLogin.body.must_change_password, false);
  const vMe = await get(r.url, '/v1/me', { token: vLogin.body.token });
  assert.deepEqual([vMe.body.role, vMe.body.project_id, vMe.body.display_name], ['viewer', project, 'Vera']);

  // Refusals: duplicate, weak password, bad role, missing email, unknown project.
  const dup = await admin(url, 'create-user', '--email', ownerEmail.toUpperCase());
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /already exists/);
  const weak = await admin(url, 'create-user', '--email', uniqueEmail(), '--password', 'password1234');
  assert.equal(weak.code, 2);
  assert.match(weak.stderr, /too common/);
  assert.equal((await admin(url, 'create-user', '--email', uniqueEmail(), '--role', 'god')).code, 2);
  assert.equal((await admin(url, 'create-user')).code, 2);
  assert.equal((await admin(url, 'create-user', '--email', uniqueEmail(), '--project', '00000000-0000-0000-0000-00000000dead')).code, 2);

  // reset-password: one-time temporary password, sessions revoked, change required.
  const reset = await admin(url, 'reset-password', '--email', viewerEmail);
  assert.equal(reset.code, 0, reset.stderr);
  const temp2 = reset.stdout.trim();
  assert.match(reset.stderr, /1 session\(s\) revoked/);
  assert.equal((await get(r.url, '/v1/me', { token: vLogin.body.token })).status, 401);
  assert.equal((await post(r.url, '/v1/auth/login', { email: viewerEmail, password: GOOD_PASSWORD })).status, 401);
  const vLogin2 = await post(r.url, '/v1/auth/login', { email: viewerEmail, password: temp2 });
  assert.equal(vLogin2.status, 200);
  assert.equal(vLogin2.body.must_change_password, true);

  // --disable-mfa for a user who lost their authenticator.
  await r.pool.query(`UPDATE core.users SET mfa_enabled = true, mfa_secret_enc = 'x' WHERE lower(email) = $1`, [viewerEmail]);
  assert.equal((await post(r.url, '/v1/auth/login', { email: viewerEmail, password: temp2 })).body.mfa_required, true);
  const noMfa = await admin(url, 'reset-password', '--email', viewerEmail, '--disable-mfa');
  assert.equal(noMfa.code, 0, noMfa.stderr);
  assert.match(noMfa.stderr, /MFA disabled/);
  const vLogin3 = await post(r.url, '/v1/auth/login', { email: viewerEmail, password: noMfa.stdout.trim() });
  assert.equal(vLogin3.body.token_type, 'session');
  assert.equal((await admin(url, 'reset-password', '--email', 'nobody@example.com')).code, 2);

  const audited = await r.pool.query(`SELECT action, actor_type, project_id FROM audit.events WHERE actor_type = 'cli' ORDER BY occurred_at`);
  assert.deepEqual(audited.rows.map((x) => x.action), ['auth.register', 'auth.register', 'auth.password.admin_reset', 'auth.password.admin_reset']);
  const keys = auditKeys(testConfig(url)).verifying;
  for (const p of [DEFAULT_PROJECT_ID, project]) {
    const v = await verifyChain(r.pool, p, keys);
    assert.equal(v.valid, true, `${p}: ${v.reason}`);
  }
});
