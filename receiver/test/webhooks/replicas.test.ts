// Two receivers on one database (SPEC §9, §13.5): NOTIFY wakes the sweepers at commit (delivery
// well under the sweep interval), FOR UPDATE SKIP LOCKED makes each event arrive exactly once,
// and a claim whose replica died is retried (at once when its session is gone, else after its lease).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emitEvent } from '../../src/webhooks/outbox.js';
import { createTestDatabase, DEFAULT_PROJECT_ID } from '../helpers.js';
import { createChannel, deliveryRows, endpoint, sleep, waitFor, webhookReceiver } from './support.js';

// A 60 s sweep interval: only NOTIFY can make a delivery arrive quickly.
const INTERVAL_S = 60;
const db = await createTestDatabase();
const env = { STRATHON_WEBHOOK_SWEEPER_INTERVAL_SECONDS: String(INTERVAL_S) };
const workers = { firstRunDelaySeconds: INTERVAL_S };
const a = await webhookReceiver(env, workers, db);
const b = await webhookReceiver({ ...env, STRATHON_ENCRYPTION_KEY: a.encryptionKey }, workers, db);
const hook = await endpoint({
  // A little latency, so both replicas' sweeps overlap.
  '/slow': (_req, res) => { setTimeout(() => res.writeHead(200).end('ok'), 15); },
});

async function succeededMetric(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('strathon_webhook_deliveries_total{outcome="succeeded"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('the LISTEN connections are up on both replicas', async () => {
  await waitFor('two listeners', async () => {
    const r = await a.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN strathon_webhooks'`);
    return (r.rows[0]?.n ?? 0) >= 2;
  });
});

test('NOTIFY at commit wakes a sweeper: delivery arrives well under the sweep interval', async () => {
  const { id } = await createChannel(a, hook.url('/fast'), { events: ['halt.created'] });
  const t0 = Date.now();
  const client = await a.pool.connect();
  try {
    await client.query('BEGIN');
    await emitEvent(client, { projectId: DEFAULT_PROJECT_ID, type: 'halt.created', data: { halt_id: 42 } });
    await sleep(300);
    assert.equal(hook.at('/fast').length, 0, 'nothing is sent before the transaction commits');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  const committed = Date.now();
  const got = await waitFor('the woken delivery', () => hook.at('/fast')[0], 5000);
  const latency = got.at - committed;
  assert.ok(latency < 1000, `delivered ${latency} ms after commit (interval ${INTERVAL_S} s)`);
  assert.equal(JSON.parse(got.body).data.halt_id, 42);
  assert.ok(got.at - t0 >= 300);
  await waitFor('succeeded', async () => (await deliveryRows(a.pool, id))[0]?.status === 'succeeded');
});

test('two receivers deliver each of 500 events exactly once (SKIP LOCKED)', async () => {
  const { id } = await createChannel(b, hook.url('/slow'), { events: ['budget.threshold'] });
  const beforeEach = [await succeededMetric(a.url), await succeededMetric(b.url)];
  const before = (beforeEach[0] ?? 0) + (beforeEach[1] ?? 0);
  const N = 500;
  // Each in its own transaction, from both replicas' pools: every commit NOTIFYs both sweepers.
  await Promise.all(Array.from({ length: N }, (_, i) => emitEvent(i % 2 ? a.pool : b.pool, { projectId: DEFAULT_PROJECT_ID, type: 'budget.threshold', data: { n: i } })));
  await waitFor('all delivered', async () => (await deliveryRows(a.pool, id)).filter((d) => d.status === 'succeeded').length === N, 60_000);
  await sleep(300); // a duplicate would arrive now
  const calls = hook.at('/slow');
  const perId = new Map<string, number>();
  for (const c of calls) perId.set(String(c.headers['webhook-id']), (perId.get(String(c.headers['webhook-id'])) ?? 0) + 1);
  assert.equal(calls.length, N, `requests received: ${calls.length}`);
  assert.equal(perId.size, N);
  assert.deepEqual([...perId.entries()].filter(([, n]) => n !== 1), [], 'no webhook-id arrived twice');
  // Both replicas took part (each sweeps on its own NOTIFY wake-up).
  const byReplica = [(await succeededMetric(a.url)) - (beforeEach[0] ?? 0), (await succeededMetric(b.url)) - (beforeEach[1] ?? 0)];
  assert.ok(byReplica.every((n) => n > 0), `deliveries per replica: ${byReplica.join(', ')}`);
  assert.deepEqual(calls.map((c) => JSON.parse(c.body).data.n).sort((x: number, y: number) => x - y), Array.from({ length: N }, (_, i) => i));
  const rows = await deliveryRows(a.pool, id);
  assert.ok(rows.every((d) => d.attempts === 1));
  assert.equal((await succeededMetric(a.url)) + (await succeededMetric(b.url)) - before, N, 'the replicas together counted N deliveries');
});

test("a claim left by a dead replica is retried after its lease, counting the lost attempt", async () => {
  const { id } = await createChannel(a, hook.url('/orphan'), { events: ['approval.requested'] });
  await emitEvent(a.pool, { projectId: DEFAULT_PROJECT_ID, type: 'approval.requested', data: {} });
  await waitFor('delivered', async () => (await deliveryRows(a.pool, id))[0]?.status === 'succeeded');
  // Simulate a replica that claimed the delivery and died: status delivering, lease already over.
  await a.pool.query(`UPDATE core.webhook_deliveries SET status = 'delivering', attempts = 1, next_attempt_at = now() - interval '1 second' WHERE channel_id = $1`, [id]);
  await a.workers.runOnce('webhook_sweeper_task');
  const [row] = await deliveryRows(a.pool, id);
  assert.equal(row?.status, 'succeeded');
  assert.equal(row?.attempts, 2);
  assert.equal(hook.at('/orphan').length, 2);
  // A lease still running whose claimer is alive (its session holds the claim's advisory lock) is
  // left alone; once that session is gone, the next sweep takes the claim back without waiting.
  const claimer = await a.pool.connect();
  try {
    await claimer.query('SELECT pg_advisory_lock(5770001, hashtext($1::text))', [row?.id]);
    await a.pool.query(`UPDATE core.webhook_deliveries SET status = 'delivering', next_attempt_at = now() + interval '1 minute' WHERE channel_id = $1`, [id]);
    await a.workers.runOnce('webhook_sweeper_task');
    assert.equal((await deliveryRows(a.pool, id))[0]?.status, 'delivering');
    assert.equal(hook.at('/orphan').length, 2);
  } finally {
    await claimer.query('SELECT pg_advisory_unlock_all()');
    claimer.release();
  }
  await a.workers.runOnce('webhook_sweeper_task');
  const [recovered] = await deliveryRows(a.pool, id);
  assert.equal(recovered?.status, 'succeeded', 'an orphaned claim is retried before its lease ends');
  assert.equal(recovered?.attempts, 3);
  assert.equal(hook.at('/orphan').length, 3);
  assert.equal(new Set(hook.at('/orphan').map((c) => c.headers['webhook-id'])).size, 1);
});

test('a LISTEN connection killed by Postgres is re-established, and NOTIFY wakes the sweeper again', async () => {
  const listeners = async () => (await a.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN strathon_webhooks'`)).rows.map((x) => x.pid);
  const before = await listeners();
  assert.equal(before.length, 2);
  await a.pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
  await waitFor('both listeners back on new connections', async () => {
    const now = await listeners();
    return now.length === 2 && now.every((p) => !before.includes(p));
  }, 10_000);
  assert.ok(a.lines.some((l) => l.includes('LISTEN strathon_webhooks connection lost: reconnecting')));
  const { id } = await createChannel(a, hook.url('/after-reconnect'), { events: ['halt.cleared'] });
  await emitEvent(a.pool, { projectId: DEFAULT_PROJECT_ID, type: 'halt.cleared', data: {} });
  await waitFor('woken delivery after reconnect', () => hook.at('/after-reconnect')[0], 3000);
  await waitFor('succeeded', async () => (await deliveryRows(a.pool, id))[0]?.status === 'succeeded');
});
