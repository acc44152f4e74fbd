// The API-key cache (auth/keys.ts, auth/invalidation.ts): every change to a key or its project,
// through the API or straight in SQL, reaches every authenticator on the database through
// LISTEN/NOTIFY; the receiver that revoked a key refuses it at once; while the LISTEN connection is
// down nothing is served from the cache.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiKeyAuthenticator, createApiKey, DEV_KEY } from '../../src/auth/keys.js';
import { InvalidationListener } from '../../src/auth/invalidation.js';
import { createPool } from '../../src/db/pool.js';
import { HttpError } from '../../src/errors.js';
import { DEFAULT_PROJECT_ID, createTestDatabase, makeProject, memoryLogger, silently, startTestReceiver, waitFor } from '../helpers.js';
import { startTcpProxy } from '../tcp-proxy.js';

const url = await createTestDatabase();
const pool = createPool(url, { max: 4 });
after(() => pool.end());
const { log } = memoryLogger('error');

/** An authenticator with its own LISTEN connection (as a second replica has), ready to cache. */
async function replica(listenUrl = url, opts: { ttlMs?: number; maxEntries?: number } = {}) {
  const p = listenUrl === url ? pool : createPool(listenUrl, { max: 2 });
  const invalidation = new InvalidationListener(p.options, log);
  invalidation.start();
  after(async () => {
    invalidation.close();
    if (p !== pool) await p.end();
  });
  await waitFor(() => invalidation.listening, 'listener up');
  return { keys: new ApiKeyAuthenticator(pool, log, { invalidation, ...opts }), invalidation };
}

/** 'ok', or the HTTP status the authenticator answers. */
async function outcome(keys: ApiKeyAuthenticator, key: string, ip = '10.0.0.1'): Promise<'ok' | number> {
  try {
    await keys.authenticate(key, ip);
    return 'ok';
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

const refusedWithin1s = (keys: ApiKeyAuthenticator, key: string, status = 401, ip?: string) =>
  waitFor(async () => (await outcome(keys, key, ip)) === status, `refused with ${status}`, 1000);

const newKey = (scopes = ['*'], projectId = DEFAULT_PROJECT_ID) => createApiKey(pool, { projectId, name: 'cache test', scopes });

test('a known key is cached (a change no trigger reports is not seen); an unknown key is never cached', async () => {
  const { keys } = await replica();
  const k = await newKey();
  assert.equal(await outcome(keys, k.key), 'ok');
  assert.equal(keys.cachedKeys, 1);
  await silently(url, 'UPDATE core.api_keys SET scopes = $2 WHERE id = $1', [k.id, ['halts:read']]);
  assert.deepEqual((await keys.authenticate(k.key, '10.0.0.1')).scopes, ['*'], 'served from the cache');
  const uncached = new ApiKeyAuthenticator(pool, log);
  assert.deepEqual((await uncached.authenticate(k.key, '10.0.0.1')).scopes, ['halts:read'], 'without a listener: looked up');

  const unknown = 'stra_unknown_key_not_yet_created_000000000000000000';
  assert.equal(await outcome(keys, unknown), 401);
  assert.equal(keys.cachedKeys, 1, 'no negative entry');
  await createApiKey(pool, { projectId: DEFAULT_PROJECT_ID, name: 'late', scopes: ['*'], raw: unknown });
  assert.equal(await outcome(keys, unknown), 'ok', 'a key created after a miss works at once');
});

test('revoked through the API: refused at once by that receiver, within 1 s by another receiver and authenticator', async () => {
  const a = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const b = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const { keys } = await replica();
  const k = await newKey();
  const probe = async (base: string) => (await fetch(`${base}/v1/api_keys`, { headers: { authorization: `Bearer ${k.key}` } })).status;
  for (let i = 0; i < 3; i++) {
    assert.equal(await probe(a.url), 200);
    assert.equal(await probe(b.url), 200);
  }
  assert.equal(await outcome(keys, k.key), 'ok');
  const del = await fetch(`${a.url}/v1/api_keys/${k.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${a.key}` } });
  assert.equal(del.status, 204, await del.text());
  assert.equal(await probe(a.url), 401, 'the revoking receiver refuses the next request');
  await waitFor(async () => (await probe(b.url)) === 401, 'second receiver refuses', 1000);
  await refusedWithin1s(keys, k.key);
});

test('rotated with no grace through the API: the old key is refused at once by that receiver', async () => {
  const a = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const { keys } = await replica();
  const k = await newKey();
  const probe = async () => (await fetch(`${a.url}/v1/api_keys`, { headers: { authorization: `Bearer ${k.key}` } })).status;
  assert.equal(await probe(), 200);
  assert.equal(await outcome(keys, k.key), 'ok');
  const rot = await fetch(`${a.url}/v1/api_keys/${k.id}/rotate`, {
    method: 'POST', headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ grace_seconds: 0 }),
  });
  assert.equal(rot.status, 201, await rot.text());
  assert.equal(await probe(), 401);
  await refusedWithin1s(keys, k.key);
});

test('revoked, expired, re-scoped or IP-restricted straight in SQL (trigger path): another authenticator follows within 1 s', async () => {
  const { keys } = await replica();
  const [revoked, expired, rescoped, ips] = await Promise.all([newKey(), newKey(), newKey(), newKey()]);
  for (const k of [revoked, expired, rescoped, ips]) assert.equal(await outcome(keys, k.key), 'ok');
  assert.equal(keys.cachedKeys >= 4, true);

  await pool.query('UPDATE core.api_keys SET revoked_at = now() WHERE id = $1', [revoked.id]);
  await refusedWithin1s(keys, revoked.key);

  await pool.query(`UPDATE core.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.id]);
  await refusedWithin1s(keys, expired.key);

  await pool.query('UPDATE core.api_keys SET scopes = $2 WHERE id = $1', [rescoped.id, ['traces:write']]);
  await waitFor(async () => (await keys.authenticate(rescoped.key, '10.0.0.1')).scopes.join() === 'traces:write', 'new scopes', 1000);

  await pool.query(`UPDATE core.api_keys SET allowed_ips = '{192.168.0.0/16}' WHERE id = $1`, [ips.id]);
  await refusedWithin1s(keys, ips.key, 403, '10.0.0.1');
  assert.equal(await outcome(keys, ips.key, '192.168.4.5'), 'ok');
});

test('last_used_at is still written, and that write does not invalidate the entry', async () => {
  const { keys } = await replica();
  const k = await newKey();
  assert.equal(await outcome(keys, k.key), 'ok');
  await waitFor(async () => (await pool.query('SELECT last_used_at FROM core.api_keys WHERE id = $1', [k.id])).rows[0].last_used_at !== null, 'last_used_at');
  await silently(url, 'UPDATE core.api_keys SET scopes = $2 WHERE id = $1', [k.id, ['halts:read']]);
  assert.deepEqual((await keys.authenticate(k.key, '10.0.0.1')).scopes, ['*'], 'still the cached row');
});

test("a cached key's own expiry is checked on every use", async () => {
  const { keys } = await replica();
  const k = await newKey();
  await silently(url, `UPDATE core.api_keys SET expires_at = now() + interval '300 milliseconds' WHERE id = $1`, [k.id]);
  assert.equal(await outcome(keys, k.key), 'ok');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await outcome(keys, k.key), 401, 'expired while cached');
});

test('deleting the project refuses its keys within 1 s', async () => {
  const { keys } = await replica();
  const project = await makeProject(pool);
  const k = await newKey(['*'], project);
  assert.equal(await outcome(keys, k.key), 'ok');
  await pool.query('UPDATE core.projects SET deleted_at = now() WHERE id = $1', [project]);
  await refusedWithin1s(keys, k.key);
});

test('the cache is bounded', async () => {
  const { keys } = await replica(url, { maxEntries: 2 });
  for (const k of await Promise.all([newKey(), newKey(), newKey()])) assert.equal(await outcome(keys, k.key), 'ok');
  assert.equal(keys.cachedKeys, 2);
});

test('LISTEN connection terminated: cache cleared and bypassed until it is back, then used again', async () => {
  const { keys, invalidation } = await replica();
  const k = await newKey();
  assert.equal(await outcome(keys, k.key), 'ok');
  const pid = invalidation.pid;
  assert.ok(pid);
  const seen: string[] = [];
  invalidation.subscribe((inv) => seen.push(inv.kind));
  await pool.query('SELECT pg_terminate_backend($1)', [pid]);
  await waitFor(() => invalidation.listening && invalidation.pid !== pid, 'listening again on a new connection');
  assert.deepEqual(seen, ['all', 'all'], 'down, then up');
  assert.equal(keys.cachedKeys, 0, 'cleared');
  assert.equal(await outcome(keys, k.key), 'ok');
  assert.equal(keys.cachedKeys, 1, 'cached again');
});

test('LISTEN connection down: every request is looked up (a silent revoke is seen); Postgres down: 503', async () => {
  const u = new URL(url);
  const proxy = await startTcpProxy(u.hostname, Number(u.port));
  after(() => proxy.close());
  const { keys, invalidation } = await replica(proxy.url(url));
  const k = await newKey();
  assert.equal(await outcome(keys, k.key), 'ok');
  proxy.set('down');
  await waitFor(() => !invalidation.listening, 'listener down');
  assert.equal(keys.cachedKeys, 0);
  await silently(url, 'UPDATE core.api_keys SET revoked_at = now() WHERE id = $1', [k.id]);
  assert.equal(await outcome(keys, k.key), 401, 'looked up while the listener is down');
  assert.equal(keys.cachedKeys, 0, 'nothing cached while down');
  const fresh = await newKey();
  assert.equal(await outcome(keys, fresh.key), 'ok');
  assert.equal(keys.cachedKeys, 0);
  proxy.set('up');
  await waitFor(() => invalidation.listening, 'listener back');
  assert.equal(await outcome(keys, fresh.key), 'ok');
  assert.equal(keys.cachedKeys, 1);

  // Postgres itself unreachable and the key not cached: fail closed.
  const deadPool = createPool(proxy.url(url), { max: 1 });
  after(() => deadPool.end());
  const viaProxy = new ApiKeyAuthenticator(deadPool, log, { invalidation });
  proxy.set('down');
  await waitFor(() => !invalidation.listening, 'listener down');
  assert.equal(await outcome(viaProxy, DEV_KEY), 503);
});
