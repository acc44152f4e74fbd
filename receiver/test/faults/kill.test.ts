// Fault tests (bounded, loopback only): kill -9 of the receiver under sustained ingest loses no
// acknowledged span; Postgres killed mid-batch answers every request of the batch with an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase, makeKey, memoryLogger, testConfig, hex } from '../helpers.js';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { startReceiver } from '../../src/receiver.js';
import { createPool } from '../../src/db/pool.js';

const root = path.resolve(import.meta.dirname, '../../..');

function body(traceId: string, n: number) {
  const spans = Array.from({ length: n }, (_, i) => ({ traceId, spanId: (i + 1).toString(16).padStart(16, '0'), name: `k${i}`, startTimeUnixNano: `${1_700_000_000_000_000_000n + BigInt(i)}` }));
  return JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
}

async function spawnReceiver(databaseUrl: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(root, 'receiver/dist/main.js')], {
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, PORT: String(port), STRATHON_HOST: '127.0.0.1', STRATHON_GRPC_ENABLED: 'false', STRATHON_RATE_LIMIT_ENABLED: 'false', STRATHON_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => { out += String(d); });
  child.stderr?.on('data', (d) => { out += String(d); });
  const t0 = Date.now();
  while (!out.includes('is up')) {
    if (child.exitCode !== null) throw new Error(`receiver exited: ${out}`);
    if (Date.now() - t0 > 30_000) throw new Error(`receiver did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

test('kill -9 of the receiver during sustained ingest: every acknowledged span is in Postgres after restart', { timeout: 90_000 }, async () => {
  const url = await createTestDatabase();
  const pool = createPool(url, { max: 2 });
  const key = await makeKey(pool, ['traces:write']);
  const port = await freePort();
  let child = await spawnReceiver(url, port);
  const acked: string[] = [];
  let errors = 0;
  let running = true;
  const client = async () => {
    while (running) {
      const t = hex(16);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: body(t, 20) });
        await res.arrayBuffer();
        if (res.status === 200) acked.push(t);
        else errors++;
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const clients = Array.from({ length: 8 }, () => client());
  await new Promise((r) => setTimeout(r, 2000));
  const ackedAtKill = acked.length;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  child = await spawnReceiver(url, port);
  await new Promise((r) => setTimeout(r, 1500));
  running = false;
  await Promise.all(clients);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  assert.ok(ackedAtKill > 10, `load was sustained before the kill (${ackedAtKill} acked)`);
  assert.ok(acked.length > ackedAtKill, 'ingest resumed after the restart');
  const stored = await pool.query(`SELECT encode(trace_id,'hex') t, count(*)::int n FROM telemetry.spans GROUP BY 1`);
  const counts = new Map(stored.rows.map((x: { t: string; n: number }) => [x.t, x.n]));
  const missing = acked.filter((t) => counts.get(t) !== 20);
  assert.deepEqual(missing, [], `all ${acked.length} acknowledged traces stored whole (${errors} transport errors/refusals during the kill)`);
  await pool.end();
});

test('Postgres killed mid-batch: every request of the batch gets an error, none a 200, and none is stored', { timeout: 90_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-kill-pg-'));
  const { log } = memoryLogger('fatal');
  const pgPort = await freePort();
  let embedded = await startEmbeddedPostgres({ dataDir: dir, port: pgPort, log, database: 'strathon' });
  const r = await startReceiver(testConfig(embedded.url, { STRATHON_RATE_LIMIT_ENABLED: 'false' }), log);
  try {
    const key = await makeKey(r.pool, ['traces:write']);
    const blocker = new pg.Client({ connectionString: embedded.url });
    blocker.on('error', () => undefined);
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE telemetry.traces IN ACCESS EXCLUSIVE MODE');
    const ids = Array.from({ length: 6 }, () => hex(16));
    const pending = ids.map((t) => fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: body(t, 3) }).then(async (res) => ({ status: res.status, retry: res.headers.get('retry-after'), text: await res.text() })));
    await new Promise((x) => setTimeout(x, 800));
    const pmPid = Number(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pmPid, 'SIGKILL');
    // Children of a SIGKILLed postmaster exit on their own once they notice; wait for the lock file's owner to go.
    const results = await Promise.race([
      Promise.all(pending),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('requests still unanswered 20 s after Postgres was killed')), 20_000)),
    ]);
    for (const res of results) {
      assert.notEqual(res.status, 200, `no 200 for an uncommitted batch: ${res.text}`);
      assert.equal(res.status, 503, res.text);
      assert.ok(Number(res.retry) >= 1);
    }
    await Promise.race([blocker.end().catch(() => undefined), new Promise((x) => setTimeout(x, 2000))]);
    // The killed postmaster's handle cannot be stopped; start a new one on the same directory.
    for (let i = 0; i < 50; i++) {
      try {
        embedded = await startEmbeddedPostgres({ dataDir: dir, port: pgPort, log, database: 'strathon' });
        break;
      } catch {
        await new Promise((x) => setTimeout(x, 200));
      }
    }
    const check = new pg.Client({ connectionString: embedded.url });
    await check.connect();
    const q = await check.query(`SELECT count(*)::int n FROM telemetry.spans WHERE encode(trace_id,'hex') = ANY($1)`, [ids]);
    await check.end();
    assert.equal(q.rows[0].n, 0, 'nothing of the failed batch is stored');
  } finally {
    await r.close();
    await Promise.race([embedded.stop().catch(() => undefined), new Promise((x) => setTimeout(x, 5000))]);
    rmSync(dir, { recursive: true, force: true });
  }
});
