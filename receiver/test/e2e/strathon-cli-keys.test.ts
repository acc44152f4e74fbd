// The real Strathon CLI (cli/ of the public strathon/strathon repository) against a real receiver:
// `keys list/create/rotate/revoke`, `projects list/create` and the `admin` member commands.
// Skips (with the reason) when the CLI source or its Python packages are absent.
// CLI source: $STRATHON_CLI_DIR (the cli/ folder or the repository root), else exported from the
// bare mirror $STRATHON_MIRROR (default /work/.mirror/strathon+strathon/repo). Python:
// $STRATHON_CLI_PYTHON, else Debian's /usr/bin/python3 (python3-click/httpx/rich/yaml).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, startTestReceiver, type TestReceiver } from '../helpers.js';
import { call, makeUser } from '../access/fixtures.js';
import { locateStrathonCli, runStrathon } from './strathon-cli.js';

const located = await locateStrathonCli();
const skip = 'reason' in located ? located.reason : undefined;
const cliDir = 'dir' in located ? located.dir : '';
const r: TestReceiver | undefined = skip ? undefined : await startTestReceiver();

interface Out { code: number; stdout: string; stderr: string }

/** Run `strathon <args>` against the receiver with `key` (default: the receiver's * key). */
async function strathon(args: string[], key = r?.key): Promise<Out> {
  return runStrathon(cliDir, r?.url ?? '', key ?? '', args);
}

function ok(res: Out, what: string) {
  assert.equal(res.code, 0, `${what} exited ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
}

const rawKeyIn = (s: string) => /stra_[A-Za-z0-9_-]{43}/.exec(s)?.[0];
/** The status a key gets on GET /v1/api_keys (200 = live with api_keys:read). */
const probe = async (key: string) => (await call(r?.url ?? '', 'GET', '/v1/api_keys', key)).status;

async function keyByName(name: string): Promise<{ id: string; key_prefix: string; scopes: string[]; revoked_at: string | null }> {
  const res = await call(r?.url ?? '', 'GET', '/v1/api_keys?include_revoked=true', r?.key);
  const k = res.body.api_keys.find((x: { name: string }) => x.name === name);
  assert.ok(k, `key ${name} listed`);
  return k;
}

test('strathon keys create prints the raw key once; keys list shows its prefix, never the key', { skip }, async () => {
  const created = await strathon(['keys', 'create', '--name', 'cli-made', '--scope', 'api_keys:read', '--scope', 'traces:read']);
  ok(created, 'keys create');
  assert.match(created.stdout, /Created API key 'cli-made'/);
  const raw = rawKeyIn(created.stdout);
  assert.ok(raw, created.stdout);
  assert.equal(await probe(raw), 200, 'the printed key works');
  const k = await keyByName('cli-made');
  assert.deepEqual(k.scopes, ['api_keys:read', 'traces:read']);

  const list = await strathon(['keys', 'list']);
  ok(list, 'keys list');
  assert.match(list.stdout, /API Keys/);
  assert.match(list.stdout, new RegExp(`cli-made.*${k.key_prefix}.*api_keys:read, traces:read.*never`), list.stdout);
  assert.ok(!list.stdout.includes(raw), 'the raw key is never listed');
  const json = JSON.parse((await strathon(['keys', 'list', '--json'])).stdout);
  assert.ok(json.some((x: { id: string }) => x.id === k.id));
  assert.ok(json.every((x: object) => !('key' in x) && !('key_hash' in x)));

  const defaults = await strathon(['keys', 'create', '--name', 'cli-default', '--expires-at', '2999-01-01T00:00:00']);
  ok(defaults, 'keys create (default scopes, naive --expires-at)');
  assert.deepEqual((await keyByName('cli-default')).scopes, ['traces:write', 'policies:read']);

  const bad = await strathon(['keys', 'create', '--name', 'bad', '--scope', 'nope:read']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Error 422: .*unknown scope: nope:read/);
  const above = await strathon(['keys', 'create', '--name', 'above', '--scope', '*'], raw);
  assert.equal(above.code, 1);
  assert.match(above.stderr, /Error 403: /, 'a key cannot mint a key above itself (here: it lacks api_keys:write)');
});

test('strathon keys rotate prints a new key; the old one keeps working for the grace period', { skip }, async () => {
  const created = await strathon(['keys', 'create', '--name', 'to-rotate', '--scope', 'api_keys:read']);
  const oldRaw = rawKeyIn(created.stdout) as string;
  const old = await keyByName('to-rotate');
  const rotated = await strathon(['keys', 'rotate', old.id]);
  ok(rotated, 'keys rotate');
  assert.match(rotated.stdout, new RegExp(`Rotated key ${old.id.slice(0, 12)}`));
  const newRaw = rawKeyIn(rotated.stdout);
  assert.ok(newRaw && newRaw !== oldRaw, rotated.stdout);
  assert.equal(await probe(newRaw), 200);
  assert.equal(await probe(oldRaw), 200, 'default grace: 72 h');
  const successor = await keyByName('to-rotate (rotated)');
  assert.deepEqual(successor.scopes, ['api_keys:read']);

  const again = await strathon(['keys', 'rotate', old.id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Error 409: API key was already rotated/);
});

test('strathon keys revoke: the key gets 401 at once; unknown ids are a clean 404', { skip }, async () => {
  const created = await strathon(['keys', 'create', '--name', 'to-revoke', '--scope', 'api_keys:read']);
  const raw = rawKeyIn(created.stdout) as string;
  const k = await keyByName('to-revoke');
  assert.equal(await probe(raw), 200);
  const revoked = await strathon(['keys', 'revoke', k.id, '--yes']);
  ok(revoked, 'keys revoke');
  assert.match(revoked.stdout, new RegExp(`Revoked key ${k.id.slice(0, 12)}`));
  assert.equal(await probe(raw), 401);
  assert.ok((await keyByName('to-revoke')).revoked_at);
  assert.ok(!(await strathon(['keys', 'list'])).stdout.includes(k.key_prefix), 'revoked keys leave the list');

  const unknown = await strathon(['keys', 'revoke', '00000000-0000-4000-8000-000000000000', '--yes']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /Error 404: API key not found/);
  const twice = await strathon(['keys', 'revoke', k.id, '--yes']);
  assert.match(twice.stderr, /Error 409: API key already revoked/);
});

test('strathon projects list / create', { skip }, async () => {
  const list = await strathon(['projects', 'list']);
  ok(list, 'projects list');
  assert.match(list.stdout, /Projects/);
  assert.match(list.stdout, new RegExp(`default.*Default project.*${DEFAULT_PROJECT_ID.slice(0, 12)}`), list.stdout);

  const created = await strathon(['projects', 'create', '--name', 'CLI Project', '--slug', 'cli-project']);
  ok(created, 'projects create');
  assert.match(created.stdout, /Project created: cli-project \([0-9a-f-]{36}\)/);
  const firstKey = rawKeyIn(created.stdout);
  assert.ok(firstKey, 'the first key is printed once');
  const ingest = await fetch(`${r?.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${firstKey}` }, body: '{}' });
  assert.equal(ingest.status, 200, 'the first key ingests into the new project');
  const dup = await strathon(['projects', 'create', '--name', 'again', '--slug', 'cli-project']);
  assert.match(dup.stderr, /Error 409: project with slug 'cli-project' already exists/);
  // A key manages its own project: the new one is not in this key's list.
  const json = JSON.parse((await strathon(['projects', 'list', '--json'])).stdout);
  assert.deepEqual(json.map((p: { slug: string }) => p.slug), ['default']);
});

test('strathon admin list-users / transfer-ownership (a key may not transfer ownership)', { skip }, async () => {
  const owner = await makeUser((r as TestReceiver).pool, DEFAULT_PROJECT_ID, 'owner', 'cli-owner@example.com');
  const users = await strathon(['admin', 'list-users']);
  ok(users, 'admin list-users');
  assert.match(users.stdout, /cli-owner@example\.com.*cli-owner.*owner/, users.stdout);
  const transfer = await strathon(['admin', 'transfer-ownership', '--to', owner.userId]);
  assert.equal(transfer.code, 1);
  assert.match(transfer.stderr, /Error 403: requires role owner \(a user session, not an API key\)/);
});

test('strathon admin revoke-all-keys revokes every key of the project (runs last)', { skip }, async () => {
  const before = (await call(r?.url ?? '', 'GET', '/v1/api_keys', r?.key)).body.api_keys.length;
  assert.ok(before > 1);
  // Keys are listed newest first, so the calling (oldest) key is revoked last and the loop completes.
  const res = await strathon(['admin', 'revoke-all-keys', '--yes']);
  ok(res, 'admin revoke-all-keys');
  assert.match(res.stdout, new RegExp(`Revoked ${before} API keys`));
  assert.equal(await probe(r?.key as string), 401);
  const live = await (r as TestReceiver).pool.query('SELECT count(*)::int AS n FROM core.api_keys WHERE project_id = $1 AND revoked_at IS NULL', [DEFAULT_PROJECT_ID]);
  assert.equal(live.rows[0].n, 0);
});
