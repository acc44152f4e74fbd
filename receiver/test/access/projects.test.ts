// Projects (SPEC §6.1, §7.3): the list shows only what the caller may manage, creation returns a
// first key once and makes the creating user owner, PATCH changes name/retention, and a project
// the caller cannot manage is a 404.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DEFAULT_PROJECT_ID, makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { client, makeUser } from './fixtures.js';

const r = await startTestReceiver();
const api = client(r.url);
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

test('GET /v1/projects: a key sees its own project, with the Strathon fields', async () => {
  const res = await api('GET', '/v1/projects', r.key);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.length, 1);
  const p = res.body.data[0];
  assert.equal(p.id, DEFAULT_PROJECT_ID);
  assert.equal(p.slug, 'default');
  assert.equal(p.api_key, null, 'the list never carries a raw key');
  for (const f of ['name', 'retention_days', 'api_key_scopes', 'created_at', 'deleted_at', 'resource_counts']) assert.ok(f in p, f);
  assert.deepEqual(p.api_key_scopes, ['*']);
  assert.ok(p.resource_counts.api_keys >= 1);
  assert.equal(typeof p.resource_counts.traces, 'number');

  const other = await makeKey(r.pool, ['projects:manage'], await makeProject(r.pool, 'other-one'));
  const o = await api('GET', '/v1/projects', other);
  assert.deepEqual(o.body.data.map((x: { slug: string }) => x.slug), ['other-one']);
  assert.equal((await api('GET', '/v1/projects', await makeKey(r.pool, ['traces:read']))).status, 403);
});

test('POST /v1/projects by a user: 201 with a first key (once), the user becomes owner', async () => {
  const admin = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'admin');
  const res = await api('POST', '/v1/projects', admin.token, { name: 'Production Agents' });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.slug, 'production-agents', 'slug derived from the name');
  assert.match(res.body.api_key, /^stra_/);
  assert.deepEqual(res.body.api_key_scopes, ['traces:write', 'policies:read']);
  const key = await r.pool.query('SELECT project_id, scopes FROM core.api_keys WHERE key_hash = $1', [sha256(res.body.api_key)]);
  assert.equal(key.rows[0].project_id, res.body.id);
  const m = await r.pool.query('SELECT role FROM core.members WHERE project_id = $1 AND user_id = $2', [res.body.id, admin.userId]);
  assert.equal(m.rows[0].role, 'owner');
  // The first key ingests into the new project.
  const ingest = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${res.body.api_key}` }, body: '{}' });
  assert.equal(ingest.status, 200);

  // Now a member of two projects: names one with X-Project-Id; sees both where they manage.
  const list = await api('GET', '/v1/projects', admin.token, undefined, { 'x-project-id': res.body.id });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.body.data.map((p: { id: string }) => p.id).sort(), [DEFAULT_PROJECT_ID, res.body.id].sort());
  assert.ok(!list.text.includes(res.body.api_key));

  const dup = await api('POST', '/v1/projects', admin.token, { name: 'Again', slug: 'production-agents' }, { 'x-project-id': res.body.id });
  assert.equal(dup.status, 409, dup.text);
  const derivedDup = await api('POST', '/v1/projects', admin.token, { name: 'Production Agents' }, { 'x-project-id': res.body.id });
  assert.equal(derivedDup.status, 201, 'a derived slug that is taken gets a suffix');
  assert.match(derivedDup.body.slug, /^production-agents-[0-9a-f]{6}$/);
  const audit = await r.pool.query(`SELECT project_id FROM audit.events WHERE action = 'project.create' AND resource_id = $1`, [res.body.id]);
  assert.deepEqual(audit.rows.map((x) => x.project_id).sort(), [DEFAULT_PROJECT_ID, res.body.id].sort(), 'audited in both chains');
});

test('POST /v1/projects validates and never mints a first key above its creator', async () => {
  for (const body of [{}, { name: 'x', slug: 'A' }, { name: 'x', slug: '-abc' }, { name: 'x', slug: 'ab' }, { name: 'x', api_key_scopes: ['bogus'] }]) {
    assert.equal((await api('POST', '/v1/projects', r.key, body)).status, 422, JSON.stringify(body));
  }
  const manager = await makeKey(r.pool, ['projects:manage']);
  const res = await api('POST', '/v1/projects', manager, { name: 'by key', slug: 'by-key' });
  assert.equal(res.status, 403, 'the default first key (traces:write, policies:read) exceeds the creating key');
  const ok = await api('POST', '/v1/projects', manager, { name: 'by key', slug: 'by-key', api_key_scopes: ['projects:manage'] });
  assert.equal(ok.status, 201, ok.text);
  assert.deepEqual(ok.body.api_key_scopes, ['projects:manage']);
  const viewer = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'viewer');
  const v = await api('POST', '/v1/projects', viewer.token, { name: 'nope' });
  assert.equal(v.status, 403);
  assert.equal(v.body.detail, 'requires role admin');
});

test('PATCH /v1/projects/{id}: name and retention; another project is 404', async () => {
  const pid = await makeProject(r.pool, 'patchme');
  const key = await makeKey(r.pool, ['projects:manage'], pid);
  const res = await api('PATCH', `/v1/projects/${pid}`, key, { name: 'Patched', retention_days: 30 });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.name, 'Patched');
  assert.equal(res.body.retention_days, 30);
  const row = await r.pool.query('SELECT name, retention_days FROM core.projects WHERE id = $1', [pid]);
  assert.deepEqual(row.rows[0], { name: 'Patched', retention_days: 30 });
  assert.equal((await api('PATCH', '/v1/projects/patchme', key, { retention_days: null })).body.retention_days, null, 'by slug; null = server default');
  for (const body of [{ retention_days: 0 }, { retention_days: 36501 }, { retention_days: '30' }, {}, { slug: 'new-slug' }, { name: '' }]) {
    assert.equal((await api('PATCH', `/v1/projects/${pid}`, key, body)).status, 422, JSON.stringify(body));
  }
  assert.equal((await api('PATCH', `/v1/projects/${pid}`, key, { retention_days: 36500 })).status, 200);

  // The default project's * key cannot touch it; a user who only views it cannot either.
  assert.equal((await api('PATCH', `/v1/projects/${pid}`, r.key, { name: 'hijack' })).status, 404);
  assert.equal((await api('PATCH', `/v1/projects/${DEFAULT_PROJECT_ID}`, key, { name: 'hijack' })).status, 404);
  const u = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'admin');
  await r.pool.query(`INSERT INTO core.members (project_id, user_id, role) VALUES ($1, $2, 'viewer')`, [pid, u.userId]);
  const viaAdminElsewhere = await api('PATCH', `/v1/projects/${pid}`, u.token, { name: 'hijack' }, { 'x-project-id': DEFAULT_PROJECT_ID });
  assert.equal(viaAdminElsewhere.status, 404, 'admin of another project, viewer here: cannot manage this one');
  assert.equal((await api('PATCH', '/v1/projects/00000000-0000-4000-8000-000000000000', r.key, { name: 'x' })).status, 404);
  const names = await r.pool.query('SELECT name FROM core.projects WHERE id = ANY($1::uuid[])', [[pid, DEFAULT_PROJECT_ID]]);
  assert.ok(!names.rows.some((x) => x.name === 'hijack'));
  const audit = await r.pool.query(`SELECT count(*)::int AS n FROM audit.events WHERE project_id = $1 AND action = 'project.update'`, [pid]);
  assert.equal(audit.rows[0].n, 3);
});
