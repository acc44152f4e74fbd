// Delivery (SPEC §9): a real local endpoint receives signed Standard Webhooks requests; failures
// are retried with backoff under the same webhook-id, then dead-lettered and re-queueable; after a
// rotation both secrets sign.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_TYPES, emitEvent } from '../../src/webhooks/outbox.js';
import { DEFAULT_PROJECT_ID } from '../helpers.js';
import { tamper } from '../audit/support.js';
import { api, createChannel, deliveryRows, endpoint, sleep, verifySignatures, waitFor, webhookReceiver } from './support.js';

const MAX_ATTEMPTS = 3;
const r = await webhookReceiver({ STRATHON_WEBHOOK_MAX_ATTEMPTS: String(MAX_ATTEMPTS) }, {
  firstRunDelaySeconds: 0.05,
  intervals: { webhook_sweeper_task: 0.05 },
  webhookSweeper: { backoffBaseMs: 40, timeoutMs: 2000 },
});

let failFlaky = 1;
let alwaysFail = true;
const hook = await endpoint({
  '/flaky': (_req, res, n) => { if (n <= failFlaky) res.writeHead(500).end('temporarily broken'); else res.writeHead(204).end(); },
  '/broken': (_req, res) => { if (alwaysFail) res.writeHead(500, { 'content-type': 'text/plain' }).end('database on fire'); else res.writeHead(200).end('ok'); },
});

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a webhook.test delivery arrives with valid Standard Webhooks headers and body', async () => {
  const { id, secret } = await createChannel(r, hook.url('/ok'));
  const before = Math.floor(Date.now() / 1000);
  const sent = await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  assert.equal(sent.status, 202, sent.text);
  const got = await waitFor('the test delivery', () => hook.at('/ok')[0]);
  assert.equal(got.headers['content-type'], 'application/json');
  assert.match(String(got.headers['user-agent']), /^Strathon-Webhooks\//);
  assert.equal(got.headers['webhook-id'], sent.body.webhook_id);
  const ts = Number(got.headers['webhook-timestamp']);
  assert.ok(Number.isInteger(ts) && ts >= before - 1 && ts <= Math.floor(Date.now() / 1000) + 1, `timestamp ${ts}`);
  assert.match(String(got.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(verifySignatures([secret], got.headers, got.body), [true]);
  assert.deepEqual(verifySignatures(['whsec_' + Buffer.alloc(32).toString('base64')], got.headers, got.body), [false], 'another secret does not verify');

  const body = JSON.parse(got.body);
  assert.deepEqual(Object.keys(body).sort(), ['data', 'timestamp', 'type']);
  assert.equal(body.type, 'webhook.test');
  assert.equal(body.data.channel_id, id);
  assert.ok(!Number.isNaN(Date.parse(body.timestamp)));

  const rows = await waitFor('succeeded row', async () => {
    const x = await deliveryRows(r.pool, id);
    return x[0]?.status === 'succeeded' ? x : undefined;
  });
  assert.equal(rows[0]?.attempts, 1);
  assert.equal(rows[0]?.last_status_code, 200);
  const list = await api(r.url, 'GET', `/v1/notification-channels/${id}/deliveries`, r.key);
  assert.equal(list.body.data[0].status, 'succeeded');
  assert.ok(list.body.data[0].delivered_at);
  assert.equal(list.body.data[0].next_attempt_at, null);
});

test('an endpoint answering 500 then 2xx: retried after a backoff, same webhook-id, succeeds', async () => {
  failFlaky = 1;
  const { id, secret } = await createChannel(r, hook.url('/flaky'));
  await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  const rows = await waitFor('the retried delivery', async () => {
    const x = await deliveryRows(r.pool, id);
    return x[0]?.status === 'succeeded' ? x : undefined;
  });
  const calls = hook.at('/flaky');
  assert.equal(calls.length, 2);
  assert.equal(calls[0]?.headers['webhook-id'], calls[1]?.headers['webhook-id']);
  assert.equal(calls[0]?.body, calls[1]?.body, 'the body is the same on every attempt');
  assert.ok((calls[1]?.at ?? 0) - (calls[0]?.at ?? 0) >= 40 * 0.8 - 5, 'the retry waited for its backoff');
  for (const c of calls) assert.deepEqual(verifySignatures([secret], c.headers, c.body), [true]);
  assert.equal(rows[0]?.attempts, 2);
  assert.equal(rows[0]?.last_status_code, 204);
  assert.equal(rows[0]?.last_error, null);
});

test('an endpoint that always fails: dead after STRATHON_WEBHOOK_MAX_ATTEMPTS; retry re-queues it', async () => {
  alwaysFail = true;
  const deadBefore = await metric('strathon_webhook_deliveries_total', '{outcome="dead"}');
  const { id } = await createChannel(r, hook.url('/broken'));
  const sent = await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  const dead = await waitFor('dead delivery', async () => {
    const x = await deliveryRows(r.pool, id);
    return x[0]?.status === 'dead' ? x[0] : undefined;
  });
  assert.equal(dead.attempts, MAX_ATTEMPTS);
  assert.equal(dead.last_status_code, 500);
  assert.equal(dead.last_error, 'HTTP 500: database on fire');
  const calls = hook.at('/broken');
  assert.equal(calls.length, MAX_ATTEMPTS);
  assert.equal(new Set(calls.map((c) => c.headers['webhook-id'])).size, 1);
  // Backoff doubles: the second gap is longer than the first (40 ms then 80 ms, ±20 %).
  const gaps = calls.slice(1).map((c, i) => c.at - (calls[i]?.at ?? 0));
  assert.ok((gaps[1] ?? 0) > (gaps[0] ?? 0) * 1.1 || (gaps[1] ?? 0) >= 60, `gaps ${gaps.join(', ')}`);
  assert.equal(await metric('strathon_webhook_deliveries_total', '{outcome="dead"}'), deadBefore + 1);

  const listed = await api(r.url, 'GET', `/v1/notification-channels/${id}/deliveries?status=dead`, r.key);
  assert.equal(listed.body.data.length, 1);
  assert.equal(listed.body.data[0].last_error, 'HTTP 500: database on fire');

  // Fixed endpoint, re-queued delivery: delivered with the same webhook-id and a fresh attempt budget.
  alwaysFail = false;
  const retried = await api(r.url, 'POST', `/v1/notification-deliveries/${sent.body.delivery_id}/retry`, r.key, {});
  assert.equal(retried.status, 200, retried.text);
  assert.equal(retried.body.status, 'pending');
  assert.equal(retried.body.attempts, 0);
  const done = await waitFor('re-queued delivery succeeded', async () => {
    const x = await deliveryRows(r.pool, id);
    return x[0]?.status === 'succeeded' ? x[0] : undefined;
  });
  assert.equal(done.attempts, 1);
  assert.equal(hook.at('/broken').length, MAX_ATTEMPTS + 1);
  assert.equal(hook.at('/broken')[MAX_ATTEMPTS]?.headers['webhook-id'], sent.body.webhook_id);
  const again = await api(r.url, 'POST', `/v1/notification-deliveries/${sent.body.delivery_id}/retry`, r.key, {});
  assert.equal(again.status, 409);
  const audited = await r.pool.query('SELECT 1 FROM audit.events WHERE action = $1 AND resource_id = $2', ['notification_delivery.retry', sent.body.delivery_id]);
  assert.equal(audited.rowCount, 1);
});

test('rotate-secret: new secret revealed once; deliveries carry two signatures and both verify', async () => {
  const { id, secret: oldSecret } = await createChannel(r, hook.url('/rotated'));
  const rotated = await api(r.url, 'POST', `/v1/notification-channels/${id}/rotate-secret`, r.key, {});
  assert.equal(rotated.status, 200, rotated.text);
  const newSecret = rotated.body.secret as string;
  assert.match(newSecret, /^whsec_/);
  assert.notEqual(newSecret, oldSecret);
  const expires = Date.parse(rotated.body.previous_secret_expires_at);
  assert.ok(Math.abs(expires - (Date.now() + 24 * 3600_000)) < 60_000, 'the old secret stays valid for 24 h');
  assert.equal((await api(r.url, 'GET', `/v1/notification-channels/${id}`, r.key)).body.secret, undefined);

  await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  const got = await waitFor('delivery after rotation', () => hook.at('/rotated')[0]);
  const entries = String(got.headers['webhook-signature']).split(' ');
  assert.equal(entries.length, 2);
  assert.ok(entries.every((e) => /^v1,[A-Za-z0-9+/]{43}=$/.test(e)));
  assert.deepEqual(verifySignatures([newSecret, oldSecret], got.headers, got.body), [true, true]);

  // Once the old secret's 24 h are over, only the new one signs.
  await r.pool.query(`UPDATE core.notification_channels SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
  await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  const later = await waitFor('delivery after expiry', () => hook.at('/rotated')[1]);
  assert.equal(String(later.headers['webhook-signature']).split(' ').length, 1);
  assert.deepEqual(verifySignatures([newSecret, oldSecret], later.headers, later.body), [true, false]);
});

test('every SPEC §9 event type arrives once, signed so that standardwebhooks verifies it', async () => {
  const { id, secret } = await createChannel(r, hook.url('/all'), { events: [...EVENT_TYPES] });
  // Real API changes where the REST API makes them: halt created and cleared, a key created and
  // revoked, webhook.test, and a tampered audit chain found by GET /v1/audit/verify. The rest (their
  // changes come from workers and the SDK) through the outbox entry point those changes use.
  const halt = await api(r.url, 'POST', '/v1/halts', r.key, { scope: 'agent', agent_name: 'webhook-types-bot', reason: 'every event type' });
  assert.equal(halt.status, 201, halt.text);
  assert.equal((await api(r.url, 'DELETE', `/v1/halts/${halt.body.id}`, r.key)).status, 200);
  assert.equal((await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {})).status, 202);
  const key = await api(r.url, 'POST', '/v1/api_keys', r.key, { name: 'webhook-types-key', scopes: ['traces:read'] });
  assert.equal(key.status, 201, key.text);
  assert.equal((await api(r.url, 'DELETE', `/v1/api_keys/${key.body.id}`, r.key)).status, 204);
  const first = await r.pool.query<{ sequence_no: string }>('SELECT min(sequence_no) AS sequence_no FROM audit.events WHERE project_id = $1', [DEFAULT_PROJECT_ID]);
  await tamper(r.pool, [[`UPDATE audit.events SET details = details || '{"tampered": true}' WHERE project_id = $1 AND sequence_no = $2`, [DEFAULT_PROJECT_ID, first.rows[0]?.sequence_no]]]);
  const verification = await api(r.url, 'GET', '/v1/audit/verify', r.key);
  assert.equal(verification.body.valid, false, verification.text);
  const viaApi = ['halt.created', 'halt.cleared', 'webhook.test', 'api_key.created', 'api_key.revoked', 'audit.verification_failed'];
  const direct = EVENT_TYPES.filter((t) => !viaApi.includes(t));
  for (const type of direct) await emitEvent(r.pool, { projectId: DEFAULT_PROJECT_ID, type, data: { probe: type } });

  await waitFor('one delivery per event type', () => hook.at('/all').length >= EVENT_TYPES.length);
  await sleep(200); // a second copy of any of them would arrive now
  const calls = hook.at('/all');
  const types = calls.map((c) => JSON.parse(c.body).type as string);
  assert.deepEqual([...types].sort(), [...EVENT_TYPES].sort(), 'each type exactly once');
  assert.equal(new Set(calls.map((c) => c.headers['webhook-id'])).size, EVENT_TYPES.length);
  for (const c of calls) assert.deepEqual(verifySignatures([secret], c.headers, c.body), [true], `${JSON.parse(c.body).type} verifies`);
  const payload = (type: string) => JSON.parse(calls.find((c) => JSON.parse(c.body).type === type)?.body ?? '{}');
  assert.equal(String(payload('halt.created').data.halt.id), String(halt.body.id));
  for (const type of ['api_key.created', 'api_key.revoked']) {
    const k = payload(type).data.api_key;
    assert.equal(k.id, key.body.id, type);
    assert.equal(k.key_prefix, key.body.key_prefix, type);
    assert.ok(!JSON.stringify(payload(type)).includes(key.body.key), `${type} never carries the key`);
  }
  assert.ok(payload('api_key.revoked').data.api_key.revoked_at);
  assert.equal(payload('audit.verification_failed').data.first_bad_sequence, verification.body.first_bad_sequence);
  assert.equal(payload('audit.verification_failed').data.via, 'api');
  await waitFor('all succeeded', async () => (await deliveryRows(r.pool, id)).filter((d) => d.status === 'succeeded').length === EVENT_TYPES.length);
});

test('metrics: deliveries by outcome, attempt durations and the due gauge are exported', async () => {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  assert.match(text, /^strathon_webhook_deliveries_total\{outcome="succeeded"\} [1-9]/m);
  assert.match(text, /^strathon_webhook_deliveries_total\{outcome="failed"\} [1-9]/m);
  assert.match(text, /^strathon_webhook_delivery_duration_seconds_count [1-9]/m);
  assert.match(text, /^strathon_webhook_event_to_delivery_seconds_count [1-9]/m);
  assert.match(text, /^# TYPE strathon_webhook_queue_due gauge$/m);
  assert.match(text, /^strathon_webhook_queue_due \d+$/m);
  // The failed attempts were logged for operators, without the URL or any secret.
  const failed = r.lines.filter((l) => l.includes('webhook delivery attempt failed'));
  assert.ok(failed.length > 0);
  assert.ok(failed.every((l) => !l.includes('whsec_') && !l.includes('127.0.0.1')));
  assert.ok(failed.some((l) => /"delivery_id":"[0-9a-f-]{36}"/.test(l) && /"err":"HTTP 500/.test(l)));
});
