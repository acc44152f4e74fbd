// The real Strathon CLI's `admin` (create-user, reset-password, list-users, transfer-ownership) and
// `audit list` against a real receiver, driven with an owner's session token as STRATHON_API_KEY
// (SPEC §7.1 accepts a session token as Bearer). Skips cleanly when the CLI or its packages are absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { locateStrathonCli, runStrathon, type CliOut } from './strathon-cli.js';

const located = await locateStrathonCli();
const skip = 'reason' in located ? located.reason : false;
const cliDir = 'dir' in located ? located.dir : '';
const r = skip ? undefined : await startTestReceiver({ STRATHON_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64url') });

async function api(method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(`${r!.url}${path}`, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}

function ok(res: CliOut, what: string) {
  assert.equal(res.code, 0, `${what} exited ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
}

test('strathon admin create-user / list-users / reset-password / transfer-ownership and audit list', { skip }, async () => {
  const reg = await api('POST', '/v1/auth/register', { email: 'owner@example.com', password: 'correct horse battery staple', display_name: 'Owner' });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const login = await api('POST', '/v1/auth/login', { email: 'owner@example.com', password: 'correct horse battery staple' });
  assert.equal(login.status, 200);
  const session = login.body?.token as string;
  const cli = (args: string[]) => runStrathon(cliDir, r!.url, session, args);

  // The CLI's own --role default ("member") fails its Choice check, so the role is always passed.
  const created = await cli(['admin', 'create-user', '--email', 'ops@example.com', '--password', 'another long passphrase 42', '--display-name', 'Ops', '--role', 'viewer']);
  ok(created, 'admin create-user');
  assert.match(created.stdout, /User ops@example.com created/);

  const list = await cli(['admin', 'list-users', '--json']);
  ok(list, 'admin list-users');
  const members = JSON.parse(list.stdout) as { id: string; email: string; role: string }[];
  const ops = members.find((m) => m.email === 'ops@example.com');
  assert.ok(ops, 'the new user is a member');
  assert.equal(ops.role, 'viewer');

  const reset = await cli(['admin', 'reset-password', '--email', 'ops@example.com']);
  ok(reset, 'admin reset-password');
  const temp = /Temporary password: (\S+)/.exec(reset.stdout)?.[1];
  assert.ok(temp, reset.stdout);
  const tempLogin = await api('POST', '/v1/auth/login', { email: 'ops@example.com', password: temp });
  assert.equal(tempLogin.status, 200, 'the temporary password logs in');
  assert.equal(tempLogin.body?.must_change_password, true);

  const transfer = await cli(['admin', 'transfer-ownership', '--to', ops.id]);
  ok(transfer, 'admin transfer-ownership');
  assert.match(transfer.stdout, /Ownership transferred/);
  const after = JSON.parse((await cli(['admin', 'list-users', '--json'])).stdout) as { email: string; role: string }[];
  assert.equal(after.find((m) => m.email === 'ops@example.com')?.role, 'owner');
  assert.equal(after.find((m) => m.email === 'owner@example.com')?.role, 'admin');

  const audit = await cli(['audit', 'list', '--json', '--limit', '50']);
  ok(audit, 'audit list');
  const actions = (JSON.parse(audit.stdout) as { action: string }[]).map((e) => e.action);
  for (const a of ['auth.register', 'auth.login', 'auth.password.admin_reset']) assert.ok(actions.includes(a), `${a} in ${actions.join(',')}`);
  const filtered = await cli(['audit', 'list', '--json', '--action', 'auth.login']);
  ok(filtered, 'audit list --action');
  const only = JSON.parse(filtered.stdout) as { action: string }[];
  assert.ok(only.length > 0 && only.every((e) => e.action === 'auth.login'));
  const table = await cli(['audit', 'list']);
  ok(table, 'audit list (table)');
  assert.match(table.stdout, /Audit Log/);
});
