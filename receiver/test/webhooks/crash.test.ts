// A receiver process killed with SIGKILL in the middle of a sweep (SPEC §9, §11): no event is lost,
// and the only ones delivered twice are those in flight at the kill, again under the same
// webhook-id. The claims the dead process held are taken back as soon as its Postgres sessions are
// gone, not after their lease (70 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPool } from '../../src/db/pool.js';
import { freePort } from '../../src/db/embedded.js';
import { emitEvent } from '../../src/webhooks/outbox.js';
import { createTestDatabase, DEFAULT_PROJECT_ID, makeKey } from '../helpers.js';
import { api, endpoint, encryptionKey, sleep, waitFor } from './support.js';

const MAIN = path.resolve(import.meta.dirname, '../../dist/main.js');

/** `node receiver/dist/main.js` on its own port, resolved once GET /ready answers 200. */
async function receiverProcess(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH, PORT: String(port), STRATHON_HOST: '127.0.0.1', STRATHON_GRPC_ENABLED: 'false', STRATHON_RATE_LIMIT_ENABLED: 'false', STRATHON_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => { out += String(d); });
  child.stderr?.on('data', (d) => { out += String(d); });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('receiver ready', async () => {
    if (child.exitCode !== null) throw new Error(`receiver exited (${child.exitCode}): ${out}`);
    return (await fetch(`${url}/ready`).then((r) => r.status === 200, () => false)) || undefined;
  }, 30_000);
  return { child, url, output: () => out };
}

const exited = (child: ChildProcess) => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));

test('kill -9 mid-sweep: every event arrives, duplicates only for the in-flight ones, same webhook-id', { timeout: 120_000 }, async (t) => {
  const databaseUrl = await createTestDatabase();
  const pool = createPool(databaseUrl, { max: 4 });
  const env = {
    DATABASE_URL: databaseUrl,
    STRATHON_ENCRYPTION_KEY: encryptionKey(),
    STRATHON_WEBHOOK_ALLOW_PRIVATE: 'true',
    STRATHON_WEBHOOK_SWEEPER_INTERVAL_SECONDS: '1',
  };
  // A slow endpoint: each request is answered 400 ms after it arrived, so a batch is in flight.
  const hook = await endpoint({ '/slow': (_req, res) => { setTimeout(() => { if (!res.destroyed) res.writeHead(200).end('ok'); }, 400); } });
  const first = await receiverProcess(env);
  let second: Awaited<ReturnType<typeof receiverProcess>> | undefined;
  try {
    const key = await makeKey(pool, ['notifications:read', 'notifications:write']);
    const created = await api(first.url, 'POST', '/v1/notification-channels', key, { name: 'crash', url: hook.url('/slow'), events: ['halt.created'] });
    assert.equal(created.status, 201, created.text);

    const N = 150;
    for (let i = 0; i < N; i++) await emitEvent(pool, { projectId: DEFAULT_PROJECT_ID, type: 'halt.created', data: { n: i } });
    const all = (await pool.query<{ webhook_id: string }>('SELECT webhook_id FROM core.webhook_deliveries')).rows.map((x) => x.webhook_id);
    assert.equal(all.length, N);

    // Kill while a batch is being sent: some requests arrived, their answers not yet written back.
    await waitFor('a sweep under way', () => hook.at('/slow').length >= 30, 30_000);
    first.child.kill('SIGKILL');
    await exited(first.child);
    const inFlight = (await pool.query<{ webhook_id: string }>(`SELECT webhook_id FROM core.webhook_deliveries WHERE status = 'delivering'`)).rows.map((x) => x.webhook_id);
    const doneAtKill = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM core.webhook_deliveries WHERE status = 'succeeded'`)).rows[0]?.n ?? 0;
    assert.ok(inFlight.length > 0, 'the kill interrupted deliveries in flight');
    assert.ok(doneAtKill < N, 'the kill came before the end of the queue');

    // A new process takes over; the orphaned claims are recovered well before their 70 s lease.
    second = await receiverProcess(env);
    await waitFor('every delivery succeeded', async () => {
      const r = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM core.webhook_deliveries WHERE status = 'succeeded'`);
      return r.rows[0]?.n === N;
    }, 40_000);
    await sleep(500); // a late extra copy would arrive now

    const calls = hook.at('/slow');
    const byId = new Map<string, string[]>();
    for (const c of calls) byId.set(String(c.headers['webhook-id']), [...(byId.get(String(c.headers['webhook-id'])) ?? []), c.body]);
    assert.deepEqual(all.filter((id) => !byId.has(id)), [], 'no event lost');
    assert.deepEqual([...byId.keys()].filter((id) => !all.includes(id)), [], 'nothing but these events');
    const twice = [...byId].filter(([, bodies]) => bodies.length > 1);
    assert.deepEqual(twice.filter(([, bodies]) => bodies.length > 2).map(([id]) => id), [], 'none more than twice');
    assert.deepEqual(twice.map(([id]) => id).filter((id) => !inFlight.includes(id)), [], 'only deliveries in flight at the kill were sent again');
    t.diagnostic(`${N} events; ${doneAtKill} delivered before the kill, ${inFlight.length} in flight, ${twice.length} sent twice`);
    for (const [, bodies] of twice) assert.equal(bodies[0], bodies[1], 'a repeat is the same message');
    const retried = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM core.webhook_deliveries WHERE attempts = 2`);
    assert.equal(retried.rows[0]?.n, inFlight.length, 'each interrupted delivery counted its lost attempt');
  } finally {
    for (const p of [first, second]) if (p && p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await exited(p.child);
    }
    await pool.end();
  }
});
