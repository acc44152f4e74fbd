// Password changes (other sessions revoked, 10/min) and admin resets (temporary password, every
// route but change-password/me/logout refused until it is changed; never above the caller's role).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeKey, makeProject } from '../helpers.js';
import { GOOD_PASSWORD, addUser, get, post, registerOwner, startAuthReceiver } from './support.js';

const NEW_PASSWORD = 'a-brand-new-passphrase-99';

test('change-password: current password required, new one checked, other sessions revoked, 10 per minute', async () => {
  const r = await startAuthReceiver();
  const owner = await registerOwner(r);
  const second = (await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD })).body.token as string;
  const third = (await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD })).body.token as string;

  const wrong = await post(r.url, '/v1/auth/change-password', { current_password: 'not-my-password', new_password: NEW_PASSWORD }, { token: owner.token });
  assert.equal(wrong.status, 403);
  const weak = await post(r.url, '/v1/auth/change-password', { current_password: GOOD_PASSWORD, new_password: 'short' }, { token: owner.token });
  assert.equal(weak.status, 422);
  assert.deepEqual(weak.body.detail[0].loc, ['body', 'new_password']);
  const missing = await post(r.url, '/v1/auth/change-password', { new_password: NEW_PASSWORD }, { token: owner.token });
  assert.deepEqual(missing.body.detail[0].loc, ['body', 'current_password']);

  const changed = await post(r.url, '/v1/auth/change-password', { current_password: GOOD_PASSWORD, new_password: NEW_PASSWORD }, { token: owner.token });
  assert.equal(changed.status, 200, JSON.stringify(changed.body));
  assert.equal(changed.body.revoked_sessions, 2);
  assert.equal((await get(r.url, '/v1/me', { token: owner.token })).status, 200, 'the session that changed it stays');
  for (const t of [second, third]) assert.equal((await get(r.url, '/v1/me', { token: t })).status, 401, 'other sessions are revoked');
  assert.equal((await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD })).status, 401);
  assert.equal((await post(r.url, '/v1/auth/login', { email: owner.email, password: NEW_PASSWORD })).status, 200);
  assert.equal((await post(r.url, '/v1/auth/change-password', { current_password: NEW_PASSWORD, new_password: GOOD_PASSWORD }, { token: r.key })).status, 403, 'users only');

  // 10 attempts per minute per user (4 used above: wrong, weak, changed + missing never reached the limit).
  let last = 0;
  let tries = 0;
  for (; tries < 12 && last !== 429; tries++) {
    last = (await post(r.url, '/v1/auth/change-password', { current_password: 'not-my-password', new_password: NEW_PASSWORD }, { token: owner.token })).status;
  }
  assert.equal(last, 429);
  assert.equal(tries, 8, '3 counted attempts before, then 7 more, the 11th is refused');
  const audit = await r.pool.query(`SELECT outcome FROM audit.events WHERE action = 'auth.password.change'`);
  assert.ok(audit.rows.some((x) => x.outcome === 'success') && audit.rows.some((x) => x.outcome === 'failure'));
});

test('admin-reset-password: temporary password, sessions revoked, 403 everywhere but change-password/me/logout until changed', async () => {
  const r = await startAuthReceiver();
  const owner = await registerOwner(r);
  const viewer = await addUser(r, owner.token, 'viewer');
  const admin = await addUser(r, owner.token, 'admin');

  const reset = await post(r.url, '/v1/auth/admin-reset-password', { email: viewer.email.toUpperCase() }, { token: admin.token });
  assert.equal(reset.status, 200, JSON.stringify(reset.body));
  const temp: string = reset.body.temporary_password;
  assert.ok(temp.length >= 16);
  assert.equal(typeof reset.body.message, 'string');
  assert.equal((await get(r.url, '/v1/me', { token: viewer.token })).status, 401, 'their sessions are revoked');
  assert.equal((await post(r.url, '/v1/auth/login', { email: viewer.email, password: GOOD_PASSWORD })).status, 401, 'the old password is gone');

  const login = await post(r.url, '/v1/auth/login', { email: viewer.email, password: temp });
  assert.equal(login.status, 200);
  assert.equal(login.body.must_change_password, true);
  const t = login.body.token as string;
  const blocked = await get(r.url, '/v1/traces', { token: t });
  assert.equal(blocked.status, 403);
  assert.match(blocked.body.detail, /password change required/);
  assert.equal((await post(r.url, '/v1/auth/token', {}, { token: t })).status, 403);
  assert.equal((await post(r.url, '/v1/auth/mfa/setup', {}, { token: t })).status, 403);
  const me = await get(r.url, '/v1/me', { token: t });
  assert.equal(me.status, 200);
  assert.equal(me.body.must_change_password, true);
  assert.equal((await post(r.url, '/v1/auth/register', { email: 'x@example.com', password: GOOD_PASSWORD }, { token: t })).status, 403);
  const changed = await post(r.url, '/v1/auth/change-password', { current_password: temp, new_password: NEW_PASSWORD }, { token: t });
  assert.equal(changed.status, 200);
  assert.equal((await get(r.url, '/v1/traces', { token: t })).status, 200, 'free again');
  assert.equal((await post(r.url, '/v1/auth/login', { email: viewer.email, password: temp })).status, 401, 'the temporary password worked once');

  // Never above the caller's own role; never outside the caller's project (404); scope needed.
  assert.equal((await post(r.url, '/v1/auth/admin-reset-password', { email: owner.email }, { token: admin.token })).status, 403);
  assert.equal((await post(r.url, '/v1/auth/admin-reset-password', { email: admin.email }, { token: t })).status, 403, 'a viewer lacks projects:manage');
  assert.equal((await post(r.url, '/v1/auth/admin-reset-password', { email: 'nobody@example.com' }, { token: admin.token })).status, 404);
  const elsewhere = await makeProject(r.pool);
  const otherKey = await makeKey(r.pool, ['*'], elsewhere);
  assert.equal((await post(r.url, '/v1/auth/admin-reset-password', { email: viewer.email }, { token: otherKey })).status, 404, 'another project: 404');
  // A user who also belongs to a project the caller does not administer cannot be reset by it.
  await r.pool.query(`INSERT INTO core.members (project_id, user_id, role) VALUES ($1, $2, 'owner')`, [elsewhere, viewer.id]);
  assert.equal((await post(r.url, '/v1/auth/admin-reset-password', { email: viewer.email }, { token: admin.token })).status, 403);
  assert.equal((await post(r.url, '/v1/auth/admin-reset-password', { email: 'not-an-email' }, { token: admin.token })).status, 422);
  const audit = await r.pool.query(`SELECT actor_id FROM audit.events WHERE action = 'auth.password.admin_reset'`);
  assert.deepEqual(audit.rows.map((x) => x.actor_id), [admin.id]);
});
