// Channels API (SPEC §9, §7.3): one-time secret reveal, encryption at rest, validation, project
// isolation, deliveries pagination; the outbox's routing and its transactionality.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Fernet } from '../../src/auth/fernet.js';
import { emitEvent } from '../../src/webhooks/outbox.js';
import { makeKey, makeProject, memoryLogger, testConfig, createTestDatabase } from '../helpers.js';
import { startReceiver } from '../../src/receiver.js';
import { api, createChannel, endpoint, sleep, webhookReceiver } from './support.js';

// Sweeper ticks only when a NOTIFY wakes it: this file looks at rows more than at deliveries.
const r = await webhookReceiver({}, { firstRunDelaySeconds: 3600, intervals: { webhook_sweeper_task: 3600 } });
const hook = await endpoint();

test('create reveals the secret once; GET and list never show it; it is stored encrypted', async () => {
  const res = await api(r.url, 'POST', '/v1/notification-channels', r.key, {
    name: 'ops', url: hook.url(), description: 'on-call', events: ['halt.created', 'budget.exceeded'],
  });
  assert.equal(res.status, 201, res.text);
  const secret = res.body.secret as string;
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(secret.slice(6), 'base64').length, 32);
  assert.equal(res.body.channel_type, 'webhook');
  assert.equal(res.body.enabled, true);
  assert.deepEqual(res.body.events, ['halt.created', 'budget.exceeded']);
  assert.equal(res.body.description, 'on-call');

  const one = await api(r.url, 'GET', `/v1/notification-channels/${res.body.id}`, r.key);
  assert.equal(one.status, 200);
  assert.equal(one.body.secret, undefined);
  assert.ok(!one.text.includes(secret.slice(6)));
  const list = await api(r.url, 'GET', '/v1/notification-channels', r.key);
  assert.equal(list.status, 200);
  assert.ok(Array.isArray(list.body.data));
  assert.ok(list.body.data.some((c: { id: string }) => c.id === res.body.id));
  assert.ok(!list.text.includes('secret_enc') && !list.text.includes(secret.slice(6)) && !list.text.includes('"secret"'));

  // At rest: a Fernet token under STRATHON_ENCRYPTION_KEY, not the secret; nowhere in the row or the audit log.
  const row = (await r.pool.query<{ secret_enc: string; whole: string }>(
    'SELECT secret_enc, row_to_json(c)::text AS whole FROM core.notification_channels c WHERE id = $1', [res.body.id])).rows[0]!;
  assert.ok(!row.whole.includes(secret.slice(6)), 'the plaintext secret is not in the row');
  assert.equal(new Fernet(r.encryptionKey).decryptString(row.secret_enc), secret);
  const audit = await r.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit.events WHERE details::text LIKE '%' || $1 || '%'`, [secret.slice(6, 30)]);
  assert.equal(audit.rows[0]?.n, 0);
  const audited = await r.pool.query<{ action: string }>(`SELECT action FROM audit.events WHERE resource_id = $1`, [res.body.id]);
  assert.deepEqual(audited.rows.map((x) => x.action), ['notification_channel.create']);
});

test('422: unknown event type, bad URL, missing name, wrong channel_type; nothing to update', async () => {
  const bad = async (body: Record<string, unknown>, loc: (string | number)[], msg: RegExp) => {
    const res = await api(r.url, 'POST', '/v1/notification-channels', r.key, { name: 'x', url: hook.url(), ...body });
    assert.equal(res.status, 422, res.text);
    assert.deepEqual(res.body.detail[0].loc, loc);
    assert.match(res.body.detail[0].msg, msg);
  };
  await bad({ events: ['halt.created', 'halt.exploded'] }, ['body', 'events', 1], /unknown event type: halt\.exploded/);
  await bad({ events: 'halt.created' }, ['body', 'events'], /list/);
  await bad({ url: 'not a url' }, ['body', 'url'], /not a valid absolute URL/);
  await bad({ url: 'ftp://example.com/x' }, ['body', 'url'], /https/);
  await bad({ url: 'http://user:pw@example.com/x' }, ['body', 'url'], /credentials/);
  await bad({ url: undefined }, ['body', 'url'], /required/);
  await bad({ name: undefined }, ['body', 'name'], /required/);
  await bad({ channel_type: 'slack' }, ['body', 'channel_type'], /webhook/);
  const { id } = await createChannel(r, hook.url());
  const empty = await api(r.url, 'PATCH', `/v1/notification-channels/${id}`, r.key, {});
  assert.equal(empty.status, 422);
  const badPatch = await api(r.url, 'PATCH', `/v1/notification-channels/${id}`, r.key, { events: ['nope'] });
  assert.equal(badPatch.status, 422);
  assert.deepEqual(badPatch.body.detail[0].loc, ['body', 'events', 0]);
});

test('PATCH changes what is given; DELETE answers 204 and removes the channel and its deliveries', async () => {
  const { id } = await createChannel(r, hook.url(), { events: ['halt.created'] });
  const res = await api(r.url, 'PATCH', `/v1/notification-channels/${id}`, r.key, { name: 'renamed', enabled: false, events: [], description: 'd' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.name, 'renamed');
  assert.equal(res.body.enabled, false);
  assert.deepEqual(res.body.events, []);
  assert.equal(res.body.url, hook.url());
  const cleared = await api(r.url, 'PATCH', `/v1/notification-channels/${id}`, r.key, { description: null, enabled: true });
  assert.equal(cleared.body.description, null);
  await emitEvent(r.pool, { projectId: cleared.body.project_id, type: 'halt.cleared', data: {} });
  assert.equal((await r.pool.query('SELECT 1 FROM core.webhook_deliveries WHERE channel_id = $1', [id])).rowCount, 1);

  const del = await api(r.url, 'DELETE', `/v1/notification-channels/${id}`, r.key);
  assert.equal(del.status, 204);
  assert.equal((await api(r.url, 'GET', `/v1/notification-channels/${id}`, r.key)).status, 404);
  assert.equal((await api(r.url, 'DELETE', `/v1/notification-channels/${id}`, r.key)).status, 404);
  assert.equal((await r.pool.query('SELECT 1 FROM core.webhook_deliveries WHERE channel_id = $1', [id])).rowCount, 0);
});

test("another project's channel and delivery are 404 on every route; unknown and malformed ids too", async () => {
  const { id } = await createChannel(r, hook.url());
  const sent = await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  assert.equal(sent.status, 202, sent.text);
  const other = await makeKey(r.pool, ['*'], await makeProject(r.pool));
  for (const [method, path, body] of [
    ['GET', `/v1/notification-channels/${id}`],
    ['PATCH', `/v1/notification-channels/${id}`, { name: 'stolen' }],
    ['DELETE', `/v1/notification-channels/${id}`],
    ['POST', `/v1/notification-channels/${id}/rotate-secret`, {}],
    ['POST', `/v1/notification-channels/${id}/test`, {}],
    ['GET', `/v1/notification-channels/${id}/deliveries`],
    ['POST', `/v1/notification-deliveries/${sent.body.delivery_id}/retry`, {}],
  ] as [string, string, unknown?][]) {
    const res = await api(r.url, method, path, other, body);
    assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
  }
  const list = await api(r.url, 'GET', '/v1/notification-channels', other);
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.data, []);
  assert.equal((await api(r.url, 'GET', `/v1/notification-channels/${randomUUID()}`, r.key)).status, 404);
  assert.equal((await api(r.url, 'GET', '/v1/notification-channels/not-a-uuid', r.key)).status, 404);
  assert.equal((await api(r.url, 'POST', `/v1/notification-deliveries/${randomUUID()}/retry`, r.key, {})).status, 404);
  // The channel is untouched.
  assert.notEqual((await api(r.url, 'GET', `/v1/notification-channels/${id}`, r.key)).body.name, 'stolen');
});

test('scopes: notifications:read lists but cannot create; notifications:write is needed to change', async () => {
  const reader = await makeKey(r.pool, ['notifications:read']);
  assert.equal((await api(r.url, 'GET', '/v1/notification-channels', reader)).status, 200);
  const res = await api(r.url, 'POST', '/v1/notification-channels', reader, { name: 'x', url: hook.url() });
  assert.equal(res.status, 403);
  assert.equal(res.body.detail, 'missing required scope: notifications:write');
});

test('emitEvent: only enabled channels subscribed to the type (or to everything) get a delivery', async () => {
  const project = await makeProject(r.pool);
  const key = await makeKey(r.pool, ['*'], project);
  const halts = await createChannel(r, hook.url(), { events: ['halt.created'] }, key);
  const all = await createChannel(r, hook.url(), { events: [] }, key);
  const off = await createChannel(r, hook.url(), { events: ['halt.created'], enabled: false }, key);
  await emitEvent(r.pool, { projectId: project, type: 'halt.created', data: { halt_id: 1 } });
  await emitEvent(r.pool, { projectId: project, type: 'budget.exceeded', data: { budget_id: 'b', spent: 10n } });
  const rows = await r.pool.query<{ channel_id: string; type: string; payload: Record<string, unknown> }>(
    `SELECT d.channel_id, e.type, e.payload FROM core.webhook_deliveries d JOIN core.webhook_events e ON e.project_id = d.project_id AND e.id = d.event_id
     WHERE d.project_id = $1 ORDER BY e.created_at, e.type`, [project]);
  const got = rows.rows.map((x) => `${x.channel_id === halts.id ? 'halts' : x.channel_id === all.id ? 'all' : 'off'}:${x.type}`).sort();
  assert.deepEqual(got, ['all:budget.exceeded', 'all:halt.created', 'halts:halt.created']);
  assert.equal(rows.rows.find((x) => x.type === 'budget.exceeded')?.payload.spent, '10');
  assert.ok(!rows.rows.some((x) => x.channel_id === off.id));
  // An event no channel receives is not stored at all.
  const before = (await r.pool.query('SELECT 1 FROM core.webhook_events WHERE project_id = $1', [project])).rowCount;
  await emitEvent(r.pool, { projectId: await makeProject(r.pool), type: 'halt.created', data: {} });
  assert.equal((await r.pool.query('SELECT 1 FROM core.webhook_events WHERE project_id = $1', [project])).rowCount, before);
});

test('emitEvent inside a rolled-back transaction leaves no event, no delivery and no notification', async () => {
  const project = await makeProject(r.pool);
  const key = await makeKey(r.pool, ['*'], project);
  await createChannel(r, hook.url(), {}, key);
  const listener = await r.pool.connect();
  const notes: string[] = [];
  listener.on('notification', (n) => notes.push(n.channel));
  await listener.query('LISTEN strathon_webhooks');
  const client = await r.pool.connect();
  try {
    await client.query('BEGIN');
    await emitEvent(client, { projectId: project, type: 'halt.created', data: { halt_id: 7 } });
    assert.equal((await client.query('SELECT 1 FROM core.webhook_deliveries WHERE project_id = $1', [project])).rowCount, 1, 'visible inside');
    await client.query('ROLLBACK');
    await sleep(200);
    assert.equal((await r.pool.query('SELECT 1 FROM core.webhook_deliveries WHERE project_id = $1', [project])).rowCount, 0);
    assert.equal((await r.pool.query('SELECT 1 FROM core.webhook_events WHERE project_id = $1', [project])).rowCount, 0);
    assert.deepEqual(notes, [], 'NOTIFY of a rolled-back transaction is never sent');
    // The same, committed: the row and the notification appear.
    await client.query('BEGIN');
    await emitEvent(client, { projectId: project, type: 'halt.created', data: { halt_id: 8 } });
    await client.query('COMMIT');
    await sleep(200);
    assert.equal((await r.pool.query('SELECT 1 FROM core.webhook_deliveries WHERE project_id = $1', [project])).rowCount, 1);
    assert.deepEqual(notes, ['strathon_webhooks']);
  } finally {
    client.release();
    listener.release(true);
  }
});

test('deliveries list: newest first, cursor pagination without overlap, status filter', async () => {
  const { id } = await createChannel(r, hook.url());
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
    assert.equal(res.status, 202);
    ids.push(res.body.delivery_id);
    assert.match(res.body.webhook_id, /^msg_[0-9a-f]{32}$/);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: { status: number; body: any } = await api(r.url, 'GET', `/v1/notification-channels/${id}/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`, r.key);
    assert.equal(res.status, 200);
    assert.ok(res.body.data.length <= 2);
    for (const d of res.body.data) {
      seen.push(d.id);
      // The NOTIFY wake-up may already have delivered them to the local endpoint.
      assert.ok(['pending', 'delivering', 'succeeded'].includes(d.status), d.status);
      assert.equal(d.event_type, 'webhook.test');
      assert.ok(d.attempts <= 1);
    }
    cursor = res.body.next_cursor;
    pages++;
  } while (cursor && pages < 10);
  assert.equal(pages, 3);
  assert.deepEqual(seen, [...ids].reverse());
  const dead = await api(r.url, 'GET', `/v1/notification-channels/${id}/deliveries?status=dead`, r.key);
  assert.deepEqual(dead.body.data, []);
  assert.equal((await api(r.url, 'GET', `/v1/notification-channels/${id}/deliveries?cursor=zzz`, r.key)).status, 422);
  assert.equal((await api(r.url, 'GET', `/v1/notification-channels/${id}/deliveries?status=lost`, r.key)).status, 422);
  // Only dead deliveries can be retried.
  const notDead = await api(r.url, 'POST', `/v1/notification-deliveries/${ids[0]}/retry`, r.key, {});
  assert.equal(notDead.status, 409);
  assert.match(notDead.body.detail, /^delivery is (pending|delivering|succeeded): only a dead delivery can be retried$/);
});

test('test on a disabled channel is refused with 409', async () => {
  const { id } = await createChannel(r, hook.url(), { enabled: false });
  const res = await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  assert.equal(res.status, 409);
});

test('without STRATHON_ENCRYPTION_KEY creating a channel answers 503 naming the variable', async () => {
  const url = await createTestDatabase();
  const { log } = memoryLogger();
  const plain = await startReceiver(testConfig(url, { STRATHON_RATE_LIMIT_ENABLED: 'false' }), log, { workers: { firstRunDelaySeconds: 3600 } });
  after(() => plain.close());
  const key = await makeKey(plain.pool, ['*']);
  const res = await api(plain.url, 'POST', '/v1/notification-channels', key, { name: 'x', url: hook.url() });
  assert.equal(res.status, 503, res.text);
  assert.match(res.body.detail, /STRATHON_ENCRYPTION_KEY/);
  assert.equal((await plain.pool.query('SELECT 1 FROM core.notification_channels')).rowCount, 0);
});
