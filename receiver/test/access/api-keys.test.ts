// API keys (SPEC §6.2, §7.3, §13 item 12) against a real receiver: the raw key is shown once,
// lists show the prefix only, revocation is immediate on every replica, rotation keeps the old key
// for its grace period, no key gets a scope its creator lacks, and keys of another project can be
// neither read, rotated nor revoked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startReceiver } from '../../src/receiver.js';
import { ALL_SCOPES } from '../../src/auth/keys.js';
import { DEFAULT_PROJECT_ID, makeKey, makeProject, memoryLogger, startTestReceiver, testConfig } from '../helpers.js';
import { client, makeUser } from './fixtures.js';

const r = await startTestReceiver();
const api = client(r.url);
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

async function keyRow(id: string) {
  const q = await r.pool.query('SELECT *, allowed_ips::text[] AS ips FROM core.api_keys WHERE id = $1', [id]);
  return q.rows[0];
}

async function auditActions(resourceId: string): Promise<string[]> {
  const q = await r.pool.query<{ action: string }>('SELECT action FROM audit.events WHERE resource_id = $1 ORDER BY sequence_no', [resourceId]);
  return q.rows.map((x) => x.action);
}

/** 200 while the key authenticates (a * key lists keys), else the status it gets. */
const probe = async (key: string, base = r.url) => (await client(base)('GET', '/v1/api_keys', key)).status;

test('create returns the raw key once; the list and GET show only the prefix', async () => {
  const c = await api('POST', '/v1/api_keys', r.key, { name: 'ci agent' });
  assert.equal(c.status, 201, c.text);
  assert.match(c.body.key, /^stra_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(c.body.scopes, ['traces:write', 'policies:read'], 'Strathon default scopes');
  assert.equal(c.body.key_prefix, c.body.key.slice(0, 12));
  assert.equal(c.body.project_id, DEFAULT_PROJECT_ID);
  for (const f of ['id', 'name', 'created_at', 'last_used_at', 'revoked_at', 'deprecated_at', 'expires_at', 'rotated_from_id', 'allowed_ips']) {
    assert.ok(f in c.body, `key object has ${f}`);
  }
  assert.ok(!('key_hash' in c.body));
  const row = await keyRow(c.body.id);
  assert.deepEqual(row.key_hash, sha256(c.body.key), 'only the SHA-256 is stored');
  assert.equal(row.key_prefix, c.body.key.slice(0, 12));

  const list = await api('GET', '/v1/api_keys', r.key);
  assert.equal(list.status, 200);
  const listed = list.body.api_keys.find((k: { id: string }) => k.id === c.body.id);
  assert.equal(listed.key_prefix, c.body.key_prefix);
  assert.ok(!('key' in listed) && !('key_hash' in listed));
  assert.ok(!list.text.includes(c.body.key), 'the raw key never appears again');
  assert.deepEqual(list.body.data, list.body.api_keys, 'the CLI admin command reads "data"');

  const one = await api('GET', `/v1/api_keys/${c.body.id}`, r.key);
  assert.equal(one.status, 200);
  assert.equal(one.body.key_prefix, c.body.key_prefix);
  assert.ok(!one.text.includes(c.body.key));
  assert.deepEqual(await auditActions(c.body.id), ['api_key.create']);
  const audit = await r.pool.query('SELECT details::text AS d FROM audit.events WHERE resource_id = $1', [c.body.id]);
  assert.ok(!String(audit.rows[0].d).includes(c.body.key), 'the audit row never holds the raw key');
});

test('create validates scopes, name, expires_at and allowed_ips (422 with loc)', async () => {
  const cases: [unknown, (string | number)[]][] = [
    [{ name: 'x', scopes: ['traces:write', 'nope:read'] }, ['body', 'scopes', 1]],
    [{ name: 'x', scopes: [] }, ['body', 'scopes']],
    [{ name: 'x', scopes: 'traces:read' }, ['body', 'scopes']],
    [{}, ['body', 'name']],
    [{ name: '' }, ['body', 'name']],
    [{ name: 'a\u0000b' }, ['body', 'name']],
    [{ name: 'x', expires_at: '2001-01-01T00:00:00Z' }, ['body', 'expires_at']],
    [{ name: 'x', expires_at: 'tomorrow' }, ['body', 'expires_at']],
    [{ name: 'x', expires_at: '2999-02-30T00:00:00Z' }, ['body', 'expires_at']],
    [{ name: 'x', allowed_ips: ['10.0.0.0/33'] }, ['body', 'allowed_ips', 0]],
    [{ name: 'x', allowed_ips: ['127.0.0.1', 'not-an-ip'] }, ['body', 'allowed_ips', 1]],
  ];
  for (const [body, loc] of cases) {
    const res = await api('POST', '/v1/api_keys', r.key, body);
    assert.equal(res.status, 422, `${JSON.stringify(body)} → ${res.text}`);
    assert.deepEqual(res.body.detail[0].loc, loc, JSON.stringify(body));
  }
  const ok = await api('POST', '/v1/api_keys', r.key, {
    name: 'net', scopes: ['traces:read', 'traces:read'], expires_at: '2999-01-01', allowed_ips: ['10.1.2.3/8', '192.168.1.5', '2001:db8::1/32'],
  });
  assert.equal(ok.status, 201, ok.text);
  assert.deepEqual(ok.body.scopes, ['traces:read']);
  assert.equal(ok.body.expires_at, '2999-01-01T00:00:00.000Z');
  assert.deepEqual(ok.body.allowed_ips.sort(), ['10.0.0.0/8', '192.168.1.5/32', '2001:db8::/32'].sort());
});

test('expires_at and allowed_ips are enforced', async () => {
  const far = await api('POST', '/v1/api_keys', r.key, { name: 'elsewhere', scopes: ['api_keys:read'], allowed_ips: ['10.0.0.0/8'] });
  assert.equal(far.status, 201);
  assert.equal(await probe(far.body.key), 403, 'a key bound to 10/8 is refused from 127.0.0.1');
  const here = await api('POST', '/v1/api_keys', r.key, { name: 'here', scopes: ['api_keys:read'], allowed_ips: ['127.0.0.1'] });
  assert.equal(await probe(here.body.key), 200);

  const soon = await api('POST', '/v1/api_keys', r.key, { name: 'soon', scopes: ['api_keys:read'], expires_at: new Date(Date.now() + 3600_000).toISOString() });
  assert.equal(await probe(soon.body.key), 200);
  await r.pool.query(`UPDATE core.api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [soon.body.id]);
  // A change made straight in SQL reaches the receiver's key cache by NOTIFY (auth/invalidation.ts).
  const deadline = Date.now() + 1000;
  while ((await probe(soon.body.key)) !== 401 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
  assert.equal(await probe(soon.body.key), 401);
});

test('a key is never created with a scope its creator lacks', async () => {
  const limited = await makeKey(r.pool, ['api_keys:write', 'api_keys:read', 'traces:read']);
  assert.equal((await api('POST', '/v1/api_keys', limited, { name: 'sub', scopes: ['traces:read'] })).status, 201);
  for (const scopes of [['policies:write'], ['*'], ['traces:read', 'audit:read'], undefined]) {
    const res = await api('POST', '/v1/api_keys', limited, { name: 'escalate', ...(scopes ? { scopes } : {}) });
    assert.equal(res.status, 403, `${JSON.stringify(scopes)}: ${res.text}`);
    assert.match(res.body.detail, /cannot grant scope/);
  }
  // Without * every named scope is still not *: only a * holder grants *.
  const allNamed = await makeKey(r.pool, [...ALL_SCOPES]);
  assert.equal((await api('POST', '/v1/api_keys', allNamed, { name: 'star', scopes: ['*'] })).status, 403);
  assert.equal((await api('POST', '/v1/api_keys', allNamed, { name: 'every', scopes: [...ALL_SCOPES] })).status, 201);
  assert.equal((await api('POST', '/v1/api_keys', r.key, { name: 'star', scopes: ['*'] })).status, 201);
});

test('users: a viewer cannot create keys; an admin cannot mint *; an owner can', async () => {
  const viewer = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'viewer');
  const admin = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'admin');
  const owner = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'owner');
  const v = await api('POST', '/v1/api_keys', viewer.token, { name: 'v' });
  assert.equal(v.status, 403);
  assert.equal(v.body.detail, 'requires role admin');
  assert.equal((await api('GET', '/v1/api_keys', viewer.token)).status, 200, 'viewers read keys (api_keys:read)');
  const a = await api('POST', '/v1/api_keys', admin.token, { name: 'a', scopes: ['*'] });
  assert.equal(a.status, 403, a.text);
  assert.equal((await api('POST', '/v1/api_keys', admin.token, { name: 'a', scopes: ['api_keys:write', 'projects:manage'] })).status, 201);
  const o = await api('POST', '/v1/api_keys', owner.token, { name: 'o', scopes: ['*'] });
  assert.equal(o.status, 201, o.text);
  assert.equal((await keyRow(o.body.id)).created_by, owner.email);
});

test('revoke: 401 at once, also on a second receiver sharing the database; 409 when repeated', async () => {
  const { log } = memoryLogger('warn');
  const r2 = await startReceiver(testConfig(r.databaseUrl), log);
  try {
    const c = await api('POST', '/v1/api_keys', r.key, { name: 'doomed', scopes: ['*'] });
    assert.equal(await probe(c.body.key), 200);
    assert.equal(await probe(c.body.key, r2.url), 200, 'the second replica accepts the key (and has looked it up)');

    const del = await api('DELETE', `/v1/api_keys/${c.body.id}`, r.key);
    assert.equal(del.status, 204);
    assert.equal(del.text, '');
    assert.equal(await probe(c.body.key), 401, 'refused at once on this replica');
    assert.equal(await probe(c.body.key, r2.url), 401, 'refused at once on the other replica');

    const list = await api('GET', '/v1/api_keys', r.key);
    assert.ok(!list.body.api_keys.some((k: { id: string }) => k.id === c.body.id), 'revoked keys are omitted');
    const all = await api('GET', '/v1/api_keys?include_revoked=true', r.key);
    const revoked = all.body.api_keys.find((k: { id: string }) => k.id === c.body.id);
    assert.ok(revoked?.revoked_at, 'include_revoked=true shows it, with revoked_at');

    const again = await api('DELETE', `/v1/api_keys/${c.body.id}`, r.key);
    assert.equal(again.status, 409);
    assert.equal(again.body.detail, 'API key already revoked');
    assert.deepEqual(await auditActions(c.body.id), ['api_key.create', 'api_key.revoke']);
  } finally {
    await r2.close();
  }
});

test('rotate: a new key with the same scopes; the old one works until its grace ends', async () => {
  const old = await api('POST', '/v1/api_keys', r.key, { name: 'sdk', scopes: ['api_keys:read', 'traces:write'] });
  const rot = await api('POST', `/v1/api_keys/${old.body.id}/rotate`, r.key, {});
  assert.equal(rot.status, 201, rot.text);
  assert.equal(rot.body.name, 'sdk (rotated)');
  assert.equal(rot.body.rotated_from_id, old.body.id);
  assert.deepEqual(rot.body.scopes, ['api_keys:read', 'traces:write']);
  assert.match(rot.body.key, /^stra_/);
  assert.notEqual(rot.body.key, old.body.key);
  assert.equal(await probe(rot.body.key), 200);
  assert.equal(await probe(old.body.key), 200, 'the old key works during the grace period');
  const row = await keyRow(old.body.id);
  assert.ok(row.deprecated_at);
  const graceS = (row.expires_at.getTime() - row.deprecated_at.getTime()) / 1000;
  assert.ok(Math.abs(graceS - 259200) < 2, `default grace is 72 h (got ${graceS} s)`);

  const twice = await api('POST', `/v1/api_keys/${old.body.id}/rotate`, r.key, {});
  assert.equal(twice.status, 409, 'an already rotated key is not rotated again');

  const short = await api('POST', `/v1/api_keys/${rot.body.id}/rotate`, r.key, { grace_seconds: 2 });
  assert.equal(short.status, 201);
  assert.equal(await probe(rot.body.key), 200);
  await new Promise((res) => setTimeout(res, 2300));
  assert.equal(await probe(rot.body.key), 401, 'the grace period is over');
  assert.equal(await probe(short.body.key), 200);
  assert.deepEqual(await auditActions(old.body.id), ['api_key.create', 'api_key.rotate']);
});

test('rotate with grace 0 retires the old key at once; grace is validated', async () => {
  const old = await api('POST', '/v1/api_keys', r.key, { name: 'now', scopes: ['api_keys:read'] });
  const rot = await api('POST', `/v1/api_keys/${old.body.id}/rotate`, r.key, { grace_seconds: 0 });
  assert.equal(rot.status, 201);
  assert.equal(await probe(old.body.key), 401);
  assert.equal(await probe(rot.body.key), 200);
  const viaHours = await api('POST', `/v1/api_keys/${rot.body.id}/rotate`, r.key, { grace_period_hours: 2 });
  assert.equal(viaHours.status, 201, 'Strathon\'s grace_period_hours is accepted too');
  assert.equal(viaHours.body.grace_seconds, 7200);
  for (const g of [-1, 30 * 86400 + 1, 1.5, '60']) {
    const res = await api('POST', `/v1/api_keys/${viaHours.body.id}/rotate`, r.key, { grace_seconds: g });
    assert.equal(res.status, 422, `grace_seconds ${JSON.stringify(g)}`);
  }
});

test('a key cannot be rotated into scopes the rotator lacks', async () => {
  const powerful = await api('POST', '/v1/api_keys', r.key, { name: 'admin key', scopes: ['*'] });
  const rotator = await makeKey(r.pool, ['api_keys:write', 'api_keys:read']);
  const res = await api('POST', `/v1/api_keys/${powerful.body.id}/rotate`, rotator, {});
  assert.equal(res.status, 403, res.text);
  assert.equal((await keyRow(powerful.body.id)).deprecated_at, null, 'nothing changed');
  const count = await r.pool.query('SELECT count(*)::int AS n FROM core.api_keys WHERE rotated_from_id = $1', [powerful.body.id]);
  assert.equal(count.rows[0].n, 0);
});

test('another project\'s key cannot be read, rotated or revoked (404)', async () => {
  const mine = await api('POST', '/v1/api_keys', r.key, { name: 'mine', scopes: ['api_keys:read'] });
  const other = await makeKey(r.pool, ['*'], await makeProject(r.pool));
  for (const [method, path] of [['GET', `/v1/api_keys/${mine.body.id}`], ['POST', `/v1/api_keys/${mine.body.id}/rotate`], ['DELETE', `/v1/api_keys/${mine.body.id}`]] as const) {
    const res = await api(method, path, other, method === 'POST' ? {} : undefined);
    assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
    assert.equal(res.body.detail, 'API key not found');
  }
  const row = await keyRow(mine.body.id);
  assert.equal(row.revoked_at, null);
  assert.equal(row.deprecated_at, null);
  assert.equal(await probe(mine.body.key), 200);
  const list = await api('GET', '/v1/api_keys', other);
  assert.ok(!list.text.includes(mine.body.id) && !list.text.includes(DEFAULT_PROJECT_ID), 'its list shows only its own keys');
  for (const bad of ['not-a-uuid', '00000000-0000-0000-0000-00000000000g']) {
    assert.equal((await api('DELETE', `/v1/api_keys/${bad}`, r.key)).status, 404);
  }
});
