// The worker framework against a real Postgres: failure → `failed` with the reason → recovery;
// backoff and stale heartbeats; advisory locks between two "replicas"; stop() semantics; the
// heartbeat rows, run history and metrics it records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Registry } from 'prom-client';
import { createFramework, type WorkerDefinition, type FrameworkOptions } from '../../src/workers/framework.js';
import { createTestDatabase, memoryLogger } from '../helpers.js';
import { sleep, testPool, waitFor } from './support.js';

const url = await createTestDatabase();
const pool = testPool(url, 20);

function framework(defs: WorkerDefinition[], opts: FrameworkOptions = {}, p: pg.Pool = pool) {
  const { log, lines } = memoryLogger('debug');
  const registry = new Registry();
  const w = createFramework({ pool: p, log, registry }, defs, { graceSeconds: 5, firstRunDelaySeconds: 0, ...opts });
  return { w, lines, registry };
}

async function lockIsFree(key: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key]);
    return r.rows[0]!.ok;
  } finally {
    await c.end();
  }
}

test('a worker that throws is failed with the reason, keeps the process alive, and recovers to ok', async () => {
  let healthy = false;
  let calls = 0;
  const flaky: WorkerDefinition = {
    name: 'flaky_task', intervalSeconds: 0.05, enabled: true, lock: { kind: 'advisory', key: 'test.flaky' },
    async run() {
      calls++;
      if (!healthy) throw new Error('boom: disk on fire');
      return { calls };
    },
  };
  const { w, lines, registry } = framework([flaky], { maxBackoffSeconds: 0.1, replicaId: 'replica-flaky' });
  assert.equal(w.checks().flaky_task!.status, 'ok', 'not yet had time to run counts as ok');
  w.start();
  await waitFor('three consecutive failures', () => (w.state('flaky_task')?.consecutiveFailures ?? 0) >= 3);
  const failed = w.checks().flaky_task!;
  assert.equal(failed.status, 'failed');
  assert.match(failed.reason ?? '', /consecutive failures; last error: boom: disk on fire/);

  // Logged once per failure with the stack under `err`.
  const logged = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'worker run failed');
  assert.equal(logged.worker, 'flaky_task');
  assert.equal(logged.level, 'error');
  assert.match(logged.err.stack, /boom: disk on fire\n\s+at /);

  // Heartbeat row and run history in Postgres.
  await waitFor('failure recorded in core.worker_status', async () => {
    const r = await pool.query(`SELECT consecutive_failures FROM core.worker_status WHERE worker = 'flaky_task' AND replica_id = 'replica-flaky'`);
    return (r.rows[0]?.consecutive_failures ?? 0) >= 3;
  });
  const st = (await pool.query(`SELECT * FROM core.worker_status WHERE worker = 'flaky_task'`)).rows[0];
  assert.equal(st.last_error, 'boom: disk on fire');
  assert.equal(st.last_succeeded_at, null);
  assert.equal(st.lock_kind, 'advisory');
  const runs = await pool.query(`SELECT outcome, error FROM core.worker_runs WHERE worker = 'flaky_task' ORDER BY id`);
  assert.ok(runs.rows.length >= 3);
  assert.deepEqual(runs.rows[0], { outcome: 'failed', error: 'boom: disk on fire' });

  healthy = true;
  await waitFor('a successful run', () => w.state('flaky_task')?.lastOutcome === 'succeeded');
  const ok = w.checks().flaky_task!;
  assert.equal(ok.status, 'ok');
  assert.equal(ok.consecutive_failures, 0);
  assert.equal(ok.reason, undefined);
  await w.stop(1000);

  const text = await registry.metrics();
  const value = (name: string) => Number(new RegExp(`^${name}\\{worker="flaky_task"\\} (\\S+)$`, 'm').exec(text)?.[1]);
  assert.ok(value('strathon_worker_failures_total') >= 3);
  assert.ok(value('strathon_worker_runs_total') >= 4);
  assert.ok(value('strathon_worker_last_success_timestamp_seconds') > Date.now() / 1000 - 60);
  assert.ok(value('strathon_worker_duration_seconds_count') >= 4);
  const row = (await pool.query(`SELECT consecutive_failures, last_succeeded_at, runs, failures FROM core.worker_status WHERE worker = 'flaky_task'`)).rows[0];
  assert.equal(row.consecutive_failures, 0);
  assert.ok(row.last_succeeded_at instanceof Date);
  assert.ok(Number(row.runs) > Number(row.failures));
});

test('a failure whose backoff outlasts the heartbeat window fails the check before three failures', async () => {
  const { w } = framework([{
    name: 'slow_backoff_task', intervalSeconds: 1, enabled: true, lock: { kind: 'none' },
    async run() { throw new Error('nope'); },
  }], { graceSeconds: 0 });
  assert.equal(await w.runOnce('slow_backoff_task'), 'failed');
  // Backoff 2 s = 2 × interval + 0 s grace: still inside the window.
  assert.equal(w.checks().slow_backoff_task!.status, 'ok');
  assert.equal(await w.runOnce('slow_backoff_task'), 'failed');
  const c = w.checks().slow_backoff_task!;
  assert.equal(c.status, 'failed');
  assert.match(c.reason ?? '', /next retry in 4 s exceeds the 2 s heartbeat window; last error: nope/);
  await w.stop(100);
});

test('a run that hangs past 2 × interval + grace makes the heartbeat stale', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const { w } = framework([{
    name: 'hanging_task', intervalSeconds: 0.05, enabled: true, lock: { kind: 'none' },
    async run() { await gate; },
  }], { graceSeconds: 0 });
  w.start();
  await sleep(250);
  const stale = w.checks().hanging_task!;
  assert.equal(stale.status, 'failed');
  assert.match(stale.reason ?? '', /heartbeat stale: current run has not finished/);
  release();
  await waitFor('the run finishes', () => w.state('hanging_task')?.lastOutcome === 'succeeded');
  assert.equal(w.checks().hanging_task!.status, 'ok');
  await w.stop(1000);
});

test('a disabled worker is `disabled` with its reason and never runs', async () => {
  let ran = false;
  const { w } = framework([{
    name: 'off_task', intervalSeconds: 0.01, enabled: false, disabledReason: 'switched off by TEST_FLAG=false', lock: { kind: 'none' },
    async run() { ran = true; },
  }]);
  w.start();
  await sleep(100);
  assert.deepEqual(w.checks().off_task, { status: 'disabled', reason: 'switched off by TEST_FLAG=false' });
  assert.equal(ran, false);
  await waitFor('disabled worker has a status row', async () =>
    (await pool.query(`SELECT enabled FROM core.worker_status WHERE worker = 'off_task'`)).rows[0]?.enabled === false);
  await w.stop(100);
});

test('two replicas on one database never run a locked worker at the same time', async () => {
  await pool.query('CREATE TABLE exclusive_ticks (replica text NOT NULL, started_at timestamptz NOT NULL, finished_at timestamptz)');
  let inside = 0;
  let maxInside = 0;
  const def = (replica: string): WorkerDefinition => ({
    name: 'exclusive_task', intervalSeconds: 0.01, enabled: true, lock: { kind: 'advisory', key: 'test.exclusive' },
    async run({ client }) {
      maxInside = Math.max(maxInside, ++inside);
      const r = await client.query<{ id: string }>('INSERT INTO exclusive_ticks (replica, started_at) VALUES ($1, clock_timestamp()) RETURNING ctid::text AS id', [replica]);
      await sleep(25);
      await client.query('UPDATE exclusive_ticks SET finished_at = clock_timestamp() WHERE ctid = $1::tid', [r.rows[0]!.id]);
      inside--;
    },
  });
  // Separate pools, as two processes would have.
  const a = framework([def('a')], { replicaId: 'replica-a' }, testPool(url, 3));
  const b = framework([def('b')], { replicaId: 'replica-b' }, testPool(url, 3));
  a.w.start();
  b.w.start();
  await waitFor('both replicas ran and skipped', () => {
    const [sa, sb] = [a.w.state('exclusive_task')!, b.w.state('exclusive_task')!];
    return sa.runs >= 5 && sb.runs >= 5 && sa.skips + sb.skips >= 5;
  }, 20_000);
  await Promise.all([a.w.stop(2000), b.w.stop(2000)]);

  assert.equal(maxInside, 1);
  const rows = (await pool.query<{ replica: string; started_at: Date; finished_at: Date | null }>(
    `SELECT replica, started_at, finished_at FROM exclusive_ticks ORDER BY started_at`)).rows;
  assert.ok(rows.every((r) => r.finished_at), 'every tick finished');
  for (let i = 1; i < rows.length; i++) {
    assert.ok(rows[i]!.started_at >= rows[i - 1]!.finished_at!, `tick ${i} (${rows[i]!.replica}) started before tick ${i - 1} (${rows[i - 1]!.replica}) finished`);
  }
  assert.ok(new Set(rows.map((r) => r.replica)).size === 2);
  const status = (await pool.query(`SELECT replica_id, runs, skips FROM core.worker_status WHERE worker = 'exclusive_task' ORDER BY replica_id`)).rows;
  assert.deepEqual(status.map((s) => s.replica_id), ['replica-a', 'replica-b']);
  assert.ok(await lockIsFree('test.exclusive'), 'both replicas released the lock');
});

test('a replica whose lock is held elsewhere stays healthy', async () => {
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  await holder.query(`SELECT pg_advisory_lock(hashtext('test.held'))`);
  let ran = 0;
  const { w } = framework([{
    name: 'held_task', intervalSeconds: 0.2, enabled: true, lock: { kind: 'advisory', key: 'test.held' },
    async run() { ran++; },
  }], { graceSeconds: 0 });
  w.start();
  await sleep(1000); // well past 2 × interval + grace
  const c = w.checks().held_task!;
  assert.equal(c.status, 'ok');
  assert.equal(c.lock_held_by_other_replica, true);
  assert.equal(ran, 0);
  assert.ok(w.state('held_task')!.skips >= 3);
  await holder.end();
  await waitFor('runs once the lock is free', () => ran > 0);
  await w.stop(1000);
});

test('stop() waits for the running tick, then releases its lock', async () => {
  await pool.query('CREATE TABLE stop_ticks (done_at timestamptz NOT NULL)');
  let started = false;
  const { w } = framework([{
    name: 'busy_task', intervalSeconds: 3600, enabled: true, lock: { kind: 'advisory', key: 'test.busy' },
    async run({ client }) {
      started = true;
      await sleep(300); // ignores the abort signal on purpose
      await client.query('INSERT INTO stop_ticks VALUES (clock_timestamp())');
    },
  }]);
  w.start();
  await waitFor('tick started', () => started);
  assert.equal(await lockIsFree('test.busy'), false, 'the tick holds the lock');
  const t0 = Date.now();
  await w.stop(5000);
  assert.ok(Date.now() - t0 >= 200, 'stop() returned only after the tick');
  assert.equal((await pool.query('SELECT count(*)::int AS n FROM stop_ticks')).rows[0].n, 1);
  assert.equal(w.state('busy_task')!.lastOutcome, 'succeeded');
  assert.ok(await lockIsFree('test.busy'));
  await assert.rejects(w.runOnce('busy_task'), /stopped/);
});

test("stop() asks cooperative runs to finish, and past its timeout ends the tick's session (freeing the lock)", async () => {
  let sawAbort = false;
  let started = 0;
  const { w } = framework([
    {
      name: 'cooperative_task', intervalSeconds: 3600, enabled: true, lock: { kind: 'none' },
      async run({ signal }) {
        started++;
        while (!signal.aborted) await sleep(10);
        sawAbort = true;
      },
    },
    {
      name: 'stuck_task', intervalSeconds: 3600, enabled: true, lock: { kind: 'advisory', key: 'test.stuck' },
      async run({ client }) {
        started++;
        await client.query('SELECT pg_sleep(30)');
      },
    },
  ]);
  w.start();
  await waitFor('both ticks started', () => started === 2);
  await sleep(50);
  const t0 = Date.now();
  await w.stop(300);
  assert.ok(Date.now() - t0 < 2000, 'stop() is bounded by its timeout');
  assert.equal(sawAbort, true);
  await waitFor('the stuck tick\'s lock is released', () => lockIsFree('test.stuck'), 5000);
  await waitFor('the stuck tick is recorded as failed', () => w.state('stuck_task')?.lastOutcome === 'failed', 5000);
});

test('the run history keeps the last N runs per worker', async () => {
  let n = 0;
  const { w } = framework([{
    name: 'history_task', intervalSeconds: 3600, enabled: true, lock: { kind: 'none' },
    async run() { n++; return { n }; },
  }], { keepRuns: 3 });
  for (let i = 0; i < 6; i++) assert.equal(await w.runOnce('history_task'), 'succeeded');
  const rows = (await pool.query(`SELECT details FROM core.worker_runs WHERE worker = 'history_task' ORDER BY id`)).rows;
  assert.deepEqual(rows.map((r) => r.details.n), [4, 5, 6]);
  await w.stop(100);
});
