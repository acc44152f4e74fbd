// Members and invitations (SPEC §6.1, §7.3, §13 item 12): nobody grants a role above their own,
// the last owner is never removed or demoted, ownership moves only by an owner's session, and
// another project's user is a 404.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { client, makeUser, type TestUser } from './fixtures.js';

const r = await startTestReceiver();
const api = client(r.url);
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

async function roleOf(pool: pg.Pool, projectId: string, userId: string): Promise<string | undefined> {
  const q = await pool.query('SELECT role FROM core.members WHERE project_id = $1 AND user_id = $2', [projectId, userId]);
  return q.rows[0]?.role;
}

/** A fresh project with an owner, an admin, an operator and a viewer. */
async function team() {
  const pid = await makeProject(r.pool);
  const [owner, admin, operator, viewer] = await Promise.all(
    (['owner', 'admin', 'operator', 'viewer'] as const).map((role) => makeUser(r.pool, pid, role)),
  ) as [TestUser, TestUser, TestUser, TestUser];
  return { pid, owner, admin, operator, viewer };
}

test('GET /v1/members lists the project\'s members with the Strathon fields', async () => {
  const t = await team();
  const res = await api('GET', '/v1/members', t.admin.token);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.length, 4);
  const o = res.body.data.find((m: { id: string }) => m.id === t.owner.userId);
  assert.deepEqual(Object.keys(o).sort(), ['display_name', 'email', 'id', 'joined_at', 'last_active', 'mfa_enabled', 'role', 'user_id'].sort());
  assert.equal(o.role, 'owner');
  assert.equal(o.email, t.owner.email);
  assert.equal((await api('GET', '/v1/members', t.viewer.token)).status, 403);
  const other = await team();
  assert.ok(!(await api('GET', '/v1/members', other.owner.token)).text.includes(t.owner.userId), 'no other project\'s members');
});

test('invitations: 256-bit token stored hashed for 7 days; never above the inviter\'s role', async () => {
  const t = await team();
  const res = await api('POST', '/v1/members/invitations', t.admin.token, { email: 'New.Person@Example.com', role: 'operator' });
  assert.equal(res.status, 201, res.text);
  assert.match(res.body.invitation_token, /^[A-Za-z0-9_-]{43}$/);
  const row = await r.pool.query('SELECT email, role, expires_at - created_at AS ttl, token_hash FROM core.invitations WHERE project_id = $1', [t.pid]);
  assert.equal(row.rows[0].email, 'new.person@example.com');
  assert.equal(row.rows[0].role, 'operator');
  assert.deepEqual(row.rows[0].token_hash, sha256(res.body.invitation_token));
  assert.equal(row.rows[0].ttl.days, 7);
  assert.ok(Math.abs(Date.parse(res.body.expires_at) - Date.now() - 7 * 86400_000) < 60_000);

  const up = await api('POST', '/v1/members/invitations', t.admin.token, { email: 'boss@example.com', role: 'owner' });
  assert.equal(up.status, 403);
  assert.equal(up.body.detail, 'requires role owner');
  assert.equal((await api('POST', '/v1/members/invitations', t.owner.token, { email: 'boss@example.com', role: 'owner' })).status, 201);
  assert.equal((await api('POST', '/v1/members/invitations', t.admin.token, { email: 'a2@example.com', role: 'admin' })).status, 201);
  const keyAdmin = await makeKey(r.pool, ['projects:manage'], t.pid);
  assert.equal((await api('POST', '/v1/members/invitations', keyAdmin, { email: 'k@example.com', role: 'owner' })).status, 403, 'a non-* key acts as admin');
  assert.equal((await api('POST', '/v1/members/invitations', t.admin.token, { email: t.viewer.email, role: 'viewer' })).status, 409, 'already a member');
  for (const body of [{ email: 'x@example.com' }, { email: 'x@example.com', role: 'god' }, { email: 'nope', role: 'viewer' }, { role: 'viewer' }]) {
    assert.equal((await api('POST', '/v1/members/invitations', t.admin.token, body)).status, 422, JSON.stringify(body));
  }
  assert.equal((await api('POST', '/v1/members/invitations', t.operator.token, { email: 'y@example.com', role: 'viewer' })).status, 403);
});

test('role changes: an admin cannot promote to owner nor touch an owner', async () => {
  const t = await team();
  const promote = await api('PATCH', `/v1/members/${t.viewer.userId}`, t.admin.token, { role: 'owner' });
  assert.equal(promote.status, 403);
  assert.equal(promote.body.detail, 'requires role owner');
  const demote = await api('PATCH', `/v1/members/${t.owner.userId}`, t.admin.token, { role: 'viewer' });
  assert.equal(demote.status, 403);
  assert.equal(demote.body.detail, 'requires role owner');
  assert.equal((await api('DELETE', `/v1/members/${t.owner.userId}`, t.admin.token)).status, 403);
  assert.equal(await roleOf(r.pool, t.pid, t.owner.userId), 'owner');

  const ok = await api('PATCH', `/v1/members/${t.viewer.userId}`, t.admin.token, { role: 'admin' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.role, 'admin');
  assert.equal(await roleOf(r.pool, t.pid, t.viewer.userId), 'admin');
  const audit = await r.pool.query(`SELECT details FROM audit.events WHERE project_id = $1 AND action = 'member.role_change'`, [t.pid]);
  assert.deepEqual(audit.rows.map((x) => x.details), [{ from: 'viewer', to: 'admin' }]);
  assert.equal((await api('PATCH', `/v1/members/${t.operator.userId}`, t.admin.token, { role: 'superuser' })).status, 422);
  assert.equal((await api('PATCH', `/v1/members/${t.operator.userId}`, t.owner.token, { role: 'owner' })).status, 200, 'an owner may make another owner');
});

test('the last owner can never be removed or demoted (409)', async () => {
  const t = await team();
  const star = await makeKey(r.pool, ['*'], t.pid);
  for (const cred of [t.owner.token, star]) {
    const d = await api('PATCH', `/v1/members/${t.owner.userId}`, cred, { role: 'admin' });
    assert.equal(d.status, 409, d.text);
    assert.equal(d.body.detail, 'cannot remove or demote the last owner of the project');
    assert.equal((await api('DELETE', `/v1/members/${t.owner.userId}`, cred)).status, 409);
  }
  assert.equal(await roleOf(r.pool, t.pid, t.owner.userId), 'owner');

  // With a second owner one may go — and then the other is the last again.
  assert.equal((await api('PATCH', `/v1/members/${t.admin.userId}`, t.owner.token, { role: 'owner' })).status, 200);
  assert.equal((await api('PATCH', `/v1/members/${t.owner.userId}`, star, { role: 'viewer' })).status, 200);
  assert.equal((await api('DELETE', `/v1/members/${t.admin.userId}`, star)).status, 409);

  // Two owners demoting each other at the same time: exactly one succeeds.
  const u = await team();
  const second = await makeUser(r.pool, u.pid, 'owner');
  const [a, b] = await Promise.all([
    api('PATCH', `/v1/members/${second.userId}`, u.owner.token, { role: 'admin' }),
    api('PATCH', `/v1/members/${u.owner.userId}`, second.token, { role: 'admin' }),
  ]);
  assert.deepEqual([a.status, b.status].sort(), [200, 409]);
  const owners = await r.pool.query(`SELECT count(*)::int AS n FROM core.members WHERE project_id = $1 AND role = 'owner'`, [u.pid]);
  assert.equal(owners.rows[0].n, 1);
});

test('removing a member: 204, audited; then their session no longer reaches the project', async () => {
  const t = await team();
  assert.equal((await api('GET', '/v1/api_keys', t.operator.token)).status, 200);
  const del = await api('DELETE', `/v1/members/${t.operator.userId}`, t.admin.token);
  assert.equal(del.status, 204);
  assert.equal(await roleOf(r.pool, t.pid, t.operator.userId), undefined);
  assert.notEqual((await api('GET', '/v1/api_keys', t.operator.token)).status, 200);
  assert.equal((await api('DELETE', `/v1/members/${t.operator.userId}`, t.admin.token)).status, 404);
  const audit = await r.pool.query(`SELECT count(*)::int AS n FROM audit.events WHERE project_id = $1 AND action = 'member.remove'`, [t.pid]);
  assert.equal(audit.rows[0].n, 1);
});

test('transfer-ownership: an owner\'s session only; the caller becomes admin', async () => {
  const t = await team();
  const star = await makeKey(r.pool, ['*'], t.pid);
  const byKey = await api('POST', `/v1/members/${t.admin.userId}/transfer-ownership`, star, {});
  assert.equal(byKey.status, 403, 'a key, even *, cannot transfer ownership');
  assert.match(byKey.body.detail, /requires role owner/);
  const byAdmin = await api('POST', `/v1/members/${t.admin.userId}/transfer-ownership`, t.admin.token, {});
  assert.equal(byAdmin.status, 403);
  assert.equal(byAdmin.body.detail, 'requires role owner');
  assert.equal((await api('POST', `/v1/members/${t.owner.userId}/transfer-ownership`, t.owner.token, {})).status, 422, 'not to yourself');

  const res = await api('POST', `/v1/members/${t.viewer.userId}/transfer-ownership`, t.owner.token, {});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.owner.role, 'owner');
  assert.equal(res.body.previous_owner.role, 'admin');
  assert.equal(await roleOf(r.pool, t.pid, t.viewer.userId), 'owner');
  assert.equal(await roleOf(r.pool, t.pid, t.owner.userId), 'admin');
  const again = await api('POST', `/v1/members/${t.admin.userId}/transfer-ownership`, t.owner.token, {});
  assert.equal(again.status, 403, 'the former owner is an admin now');
});

test('another project\'s user is a 404 for every member route', async () => {
  const t = await team();
  const other = await team();
  const star = await makeKey(r.pool, ['*'], t.pid);
  for (const [method, path, cred, body] of [
    ['PATCH', `/v1/members/${other.viewer.userId}`, star, { role: 'admin' }],
    ['PATCH', `/v1/members/${other.viewer.userId}`, t.owner.token, {}],
    ['DELETE', `/v1/members/${other.viewer.userId}`, t.owner.token, undefined],
    ['POST', `/v1/members/${other.viewer.userId}/transfer-ownership`, t.owner.token, {}],
    ['PATCH', '/v1/members/not-a-uuid', star, { role: 'admin' }],
  ] as const) {
    const res = await api(method, path, cred, body);
    assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
  }
  assert.equal(await roleOf(r.pool, other.pid, other.viewer.userId), 'viewer');
});
