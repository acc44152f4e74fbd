// Sessions and tokens across replicas (SPEC §6.3, §13.9): logout holds on another receiver; API
// key → access/refresh, rotation, reuse revokes the family; revoked key kills its JWTs;
// /v1/auth/validate; Postgres unreachable → 503 "auth backend unavailable" (fail closed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver } from '../../src/receiver.js';
import { createTestDatabase, makeKey, memoryLogger, testConfig } from '../helpers.js';
import { startTcpProxy } from '../tcp-proxy.js';
import { authEnv, get, post, registerOwner, startAuthReceiver } from './support.js';

test('a session revoked by logout is refused by a second receiver on the same database', async () => {
  const a = await startAuthReceiver();
  const b = await startAuthReceiver({}, { databaseUrl: a.databaseUrl });
  const owner = await registerOwner(a);
  assert.equal((await get(b.url, '/v1/me', { token: owner.token })).status, 200);
  const out = await post(a.url, '/v1/auth/logout', {}, { token: owner.token });
  assert.equal(out.status, 200);
  assert.deepEqual(out.body, { revoked: true });
  assert.equal(out.headers.get('set-cookie'), 'strathon_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict', 'the cookie is cleared');
  const refused = await get(b.url, '/v1/me', { token: owner.token });
  assert.equal(refused.status, 401);
  assert.deepEqual(refused.body, { detail: 'token revoked' });
  assert.equal((await post(b.url, '/v1/auth/logout', {}, { token: a.key })).status, 400, 'a raw API key cannot be logged out');
});

test('API key → access + refresh; rotation; reusing a spent refresh token revokes the whole family', async () => {
  const a = await startAuthReceiver({ STRATHON_ACCESS_TOKEN_TTL_SECONDS: '600' });
  const b = await startAuthReceiver({}, { databaseUrl: a.databaseUrl });
  const readKey = await makeKey(a.pool, ['traces:read']);

  const pair = await post(a.url, '/v1/auth/token', {}, { token: readKey });
  assert.equal(pair.status, 200, JSON.stringify(pair.body));
  assert.deepEqual(Object.keys(pair.body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type']);
  assert.equal(pair.body.token_type, 'Bearer');
  assert.equal(pair.body.expires_in, 600);
  const me = await get(b.url, '/v1/me', { token: pair.body.access_token });
  assert.equal(me.status, 200);
  assert.equal(me.body.kind, 'api_key');
  assert.deepEqual(me.body.scopes, ['traces:read']);
  assert.equal((await get(b.url, '/v1/traces', { token: pair.body.access_token })).status, 200, 'the access token carries the key scope');
  assert.equal((await post(b.url, '/v1/auth/token', {}, { token: pair.body.access_token })).status, 403, 'an access token cannot mint tokens');
  assert.equal((await post(b.url, '/v1/auth/refresh', { refresh_token: pair.body.access_token })).status, 401, 'an access token is not a refresh token');
  assert.equal((await get(b.url, '/v1/me', { token: pair.body.refresh_token })).status, 401, 'a refresh token is not an access token');

  const second = await post(b.url, '/v1/auth/refresh', { refresh_token: pair.body.refresh_token });
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.notEqual(second.body.refresh_token, pair.body.refresh_token);
  assert.equal((await get(a.url, '/v1/me', { token: second.body.access_token })).status, 200);
  const third = await post(a.url, '/v1/auth/refresh', { refresh_token: second.body.refresh_token });
  assert.equal(third.status, 200);

  // The first refresh token again: theft detected, the family dies everywhere.
  const reuse = await post(a.url, '/v1/auth/refresh', { refresh_token: pair.body.refresh_token });
  assert.equal(reuse.status, 401);
  assert.deepEqual(reuse.body, { detail: 'token revoked' });
  assert.equal((await post(b.url, '/v1/auth/refresh', { refresh_token: third.body.refresh_token })).status, 401, 'the newest refresh token is revoked too');
  for (const t of [pair.body.access_token, second.body.access_token, third.body.access_token]) {
    const res = await get(b.url, '/v1/me', { token: t });
    assert.equal(res.status, 401, 'every access token of the family is refused');
    assert.deepEqual(res.body, { detail: 'token revoked' });
  }
  const validated = await post(a.url, '/v1/auth/validate', { token: third.body.access_token });
  assert.deepEqual({ valid: validated.body.valid, reason: validated.body.reason }, { valid: false, reason: 'token revoked' });
  const audited = await a.pool.query(`SELECT 1 FROM audit.events WHERE action = 'auth.token.reuse_detected'`);
  assert.equal(audited.rowCount, 1);

  // Another family of the same key is unaffected.
  const other = await post(a.url, '/v1/auth/token', {}, { token: readKey });
  assert.equal((await get(a.url, '/v1/me', { token: other.body.access_token })).status, 200);

  // Logout with an access token revokes that token only (by jti, in Postgres).
  assert.equal((await post(a.url, '/v1/auth/logout', {}, { token: other.body.access_token })).status, 200);
  assert.equal((await get(b.url, '/v1/me', { token: other.body.access_token })).status, 401);
  const rotated = await post(b.url, '/v1/auth/refresh', { refresh_token: other.body.refresh_token });
  assert.equal(rotated.status, 200);

  // Revoking the API key kills its JWTs at once, and refreshing them.
  await a.pool.query('UPDATE core.api_keys SET revoked_at = now() WHERE key_prefix = $1', [readKey.slice(0, 12)]);
  const dead = await get(b.url, '/v1/me', { token: rotated.body.access_token });
  assert.equal(dead.status, 401);
  assert.deepEqual(dead.body, { detail: 'token revoked' });
  assert.equal((await post(a.url, '/v1/auth/refresh', { refresh_token: rotated.body.refresh_token })).status, 401);
});

test('validate: {valid, claims} for access tokens, sessions, keys; {valid:false, reason} otherwise, never 401', async () => {
  const r = await startAuthReceiver();
  const owner = await registerOwner(r);
  const pair = (await post(r.url, '/v1/auth/token', {}, { token: r.key })).body;

  const jwt = await post(r.url, '/v1/auth/validate', { token: pair.access_token });
  assert.equal(jwt.status, 200);
  assert.equal(jwt.body.valid, true);
  assert.equal(jwt.body.claims.typ, 'access');
  assert.equal(jwt.body.claims.pid, '00000000-0000-0000-0000-000000000001');
  assert.ok(jwt.body.claims.jti && jwt.body.claims.exp && jwt.body.claims.fam);

  const refresh = await post(r.url, '/v1/auth/validate', { token: pair.refresh_token });
  assert.equal(refresh.body.valid, true);
  assert.equal(refresh.body.claims.typ, 'refresh');

  const session = await post(r.url, '/v1/auth/validate', {}, { token: owner.token });
  assert.equal(session.body.valid, true, 'the Bearer token is validated when the body has none');
  assert.equal(session.body.claims.sub, owner.id);
  assert.equal(session.body.claims.kind, 'session');
  assert.equal(session.body.claims.role, 'owner');
  assert.equal(session.body.claims.project_id, '00000000-0000-0000-0000-000000000001');

  for (const [token, reason] of [['garbage', 'invalid token'], [`${pair.access_token.slice(0, -4)}AAAA`, 'invalid token'], ['', 'token required']]) {
    const res = await post(r.url, '/v1/auth/validate', { token });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { valid: false, claims: null, reason });
  }
  assert.equal((await post(r.url, '/v1/auth/logout', {}, { token: owner.token })).status, 200);
  assert.deepEqual((await post(r.url, '/v1/auth/validate', { token: owner.token })).body, { valid: false, claims: null, reason: 'token revoked' });
});

test('Postgres unreachable: authenticated requests and login answer 503 "auth backend unavailable"', async () => {
  const url = await createTestDatabase();
  const u = new URL(url);
  const proxy = await startTcpProxy(u.hostname, Number(u.port));
  const { log } = memoryLogger('error');
  const r = await startReceiver(testConfig(proxy.url(url), authEnv()), log);
  try {
    const key = await makeKey(r.pool, ['*']);
    const reg = await post(r.url, '/v1/auth/register', { email: 'down@example.com', password: 'correct-horse-battery-staple-42' });
    assert.equal(reg.status, 201);
    const access = (await post(r.url, '/v1/auth/token', {}, { token: key })).body.access_token;
    proxy.set('down');
    for (const token of [reg.body.token, access, key]) {
      const res = await get(r.url, '/v1/me', { token });
      assert.equal(res.status, 503);
      assert.deepEqual(res.body, { detail: 'auth backend unavailable' });
      assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
    }
    const login = await post(r.url, '/v1/auth/login', { email: 'down@example.com', password: 'correct-horse-battery-staple-42' });
    assert.equal(login.status, 503);
    assert.deepEqual(login.body, { detail: 'auth backend unavailable' });
    const validate = await post(r.url, '/v1/auth/validate', { token: access });
    assert.equal(validate.status, 503, 'validate fails closed too');
    proxy.set('up');
    let back = 0;
    for (let i = 0; i < 20 && back !== 200; i++) {
      back = (await get(r.url, '/v1/me', { token: reg.body.token })).status;
      if (back !== 200) await new Promise((res) => setTimeout(res, 250));
    }
    assert.equal(back, 200, 'recovers without a restart');
  } finally {
    proxy.set('up');
    await r.close();
    await proxy.close();
  }
});
