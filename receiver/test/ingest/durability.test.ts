// A 200 means committed: ack-after-commit, 503 + Retry-After while Postgres is down (recovery
// without restart, no acknowledged span lost), graceful shutdown answers every queued request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startTestReceiver, createTestDatabase, memoryLogger, testConfig, makeKey, hex } from '../helpers.js';
import { startEmbeddedPostgres, freePort } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { startReceiver } from '../../src/receiver.js';

function spanBody(traceId: string, n = 1): string {
  const spans = Array.from({ length: n }, (_, i) => ({
    traceId, spanId: (i + 1).toString(16).padStart(16, '0'), name: `s${i}`,
    startTimeUnixNano: `${1_700_000_000_000_000_000n + BigInt(i)}`, endTimeUnixNano: `${1_700_000_000_000_001_000n + BigInt(i)}`,
  }));
  return JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'dur' } }] }, scopeSpans: [{ spans }] }] });
}

async function post(url: string, key: string, body: string) {
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

async function countSpans(pool: pg.Pool | pg.Client, traceId: string): Promise<number> {
  const r = await pool.query(`SELECT count(*)::int n FROM telemetry.spans WHERE trace_id = decode($1,'hex')`, [traceId]);
  return r.rows[0].n;
}

test('a request is answered only after its rows are visible from another connection', async () => {
  const r = await startTestReceiver();
  const blocker = new pg.Client({ connectionString: r.databaseUrl });
  const observer = new pg.Client({ connectionString: r.databaseUrl });
  await blocker.connect();
  await observer.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE telemetry.traces IN ACCESS EXCLUSIVE MODE');
    const traceId = hex(16);
    let answered = false;
    const pending = post(r.url, r.key, spanBody(traceId, 3)).then((x) => { answered = true; return x; });
    await new Promise((res) => setTimeout(res, 700));
    assert.equal(answered, false, 'no answer while the commit is blocked');
    assert.equal(await countSpans(observer, traceId), 0, 'rows not visible before commit');
    await blocker.query('COMMIT');
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(await countSpans(observer, traceId), 3, 'rows visible once answered');
  } finally {
    await blocker.end();
    await observer.end();
  }
});

test('Postgres stopped under load: 503 + Retry-After, /ready names the db, recovery without restart, no acknowledged span lost', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-dur-pg-'));
  const { log } = memoryLogger('error');
  const pgPort = await freePort();
  let embedded = await startEmbeddedPostgres({ dataDir: dir, port: pgPort, log, database: 'strathon' });
  const r = await startReceiver(testConfig(embedded.url, { STRATHON_RATE_LIMIT_ENABLED: 'false' }), log);
  try {
    const key = await makeKey(r.pool, ['traces:write']);
    const acked: string[] = [];
    const refused: string[] = [];
    const statuses = new Map<number, number>();
    let running = true;
    const client = async () => {
      while (running) {
        const traceId = hex(16);
        try {
          const res = await post(r.url, key, spanBody(traceId, 5));
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 200) acked.push(traceId);
          else {
            assert.equal(res.status, 503, `unexpected status ${res.status}: ${res.body}`);
            assert.ok(Number(res.retryAfter) >= 1, 'Retry-After on 503');
            refused.push(traceId);
            await new Promise((x) => setTimeout(x, 50));
          }
        } catch (err) {
          assert.fail(`request failed at transport level: ${(err as Error).message}`);
        }
      }
    };
    const clients = Array.from({ length: 4 }, () => client());
    await new Promise((x) => setTimeout(x, 1500));
    const ackedBeforeStop = acked.length;
    assert.ok(ackedBeforeStop > 0, 'ingest works before the stop');

    await embedded.stop();
    // Postgres stays down for 10 s under load (SPEC §15): the clients keep sending the whole time.
    await new Promise((x) => setTimeout(x, 2500));
    const ready = await fetch(`${r.url}/ready`);
    assert.equal(ready.status, 503, '/ready is 503 while Postgres is down');
    const rb = (await ready.json()) as { checks: { db: { status: string; reason: string } } };
    assert.equal(rb.checks.db.status, 'failed');
    assert.ok(rb.checks.db.reason.length > 0);
    const refusedWhileDown = refused.length;
    assert.ok(refusedWhileDown > 0, 'requests were refused while Postgres was down');
    const health = await fetch(`${r.url}/health`);
    assert.equal(health.status, 200, 'liveness unaffected');

    await new Promise((x) => setTimeout(x, 7500));
    assert.equal((await fetch(`${r.url}/health`)).status, 200, 'still alive after 10 s without Postgres');
    embedded = await startEmbeddedPostgres({ dataDir: dir, port: pgPort, log, database: 'strathon' });
    const t0 = Date.now();
    const before = acked.length;
    while (acked.length === before && Date.now() - t0 < 20_000) await new Promise((x) => setTimeout(x, 200));
    assert.ok(acked.length > before, 'ingest recovered without restarting the receiver');
    await new Promise((x) => setTimeout(x, 1000));
    running = false;
    await Promise.all(clients);
    const readyAfter = await fetch(`${r.url}/ready`);
    assert.equal(readyAfter.status, 200, `/ready recovers: ${await readyAfter.text()}`);

    const check = new pg.Client({ connectionString: embedded.url });
    await check.connect();
    const stored = await check.query(`SELECT DISTINCT encode(trace_id,'hex') t FROM telemetry.spans`);
    await check.end();
    const have = new Set(stored.rows.map((x: { t: string }) => x.t));
    const missing = acked.filter((t) => !have.has(t));
    assert.deepEqual(missing, [], `every acknowledged trace is stored (${acked.length} acked, statuses ${JSON.stringify([...statuses])})`);
  } finally {
    await r.close();
    await embedded.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('graceful shutdown answers every queued request and commits them', async () => {
  const url = await createTestDatabase();
  const { log } = memoryLogger('error');
  const r = await startReceiver(testConfig(url), log);
  const key = await makeKey(r.pool, ['traces:write']);
  const blocker = new pg.Client({ connectionString: url });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE telemetry.traces IN ACCESS EXCLUSIVE MODE');
  const ids = Array.from({ length: 6 }, () => hex(16));
  const pending = ids.map((t) => post(r.url, key, spanBody(t, 2)));
  await new Promise((x) => setTimeout(x, 500));
  const closing = r.close();
  await new Promise((x) => setTimeout(x, 800));
  await blocker.query('COMMIT');
  await blocker.end();
  const results = await Promise.all(pending);
  await closing;
  assert.deepEqual(results.map((x) => x.status), ids.map(() => 200));
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  for (const t of ids) assert.equal(await countSpans(check, t), 2);
  await check.end();
  void runMigrations;
});
