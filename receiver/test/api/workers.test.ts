// GET /v1/workers (SPEC §7.3, §11): every worker of the receiver with its /ready check, its
// heartbeat per replica and its last 20 runs, newest first; admin role only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, startTestReceiver } from '../helpers.js';
import { call, makeUser } from '../access/fixtures.js';
import { WORKER_RUNS_SHOWN } from '../../src/api/workers.js';

const r = await startTestReceiver();

test('an admin sees each worker with its check, its replica row and at most the last 20 runs', async () => {
  // 23 runs of one worker, one tick at a time (runOnce waits for it).
  for (let i = 0; i < WORKER_RUNS_SHOWN + 3; i++) assert.equal(await r.workers.runOnce('spans_partition_task'), 'succeeded');
  const admin = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'admin');
  const res = await call(r.url, 'GET', '/v1/workers', admin.token);
  assert.equal(res.status, 200, res.text);
  const ready = (await call(r.url, 'GET', '/ready')).body.checks;
  const names = res.body.data.map((w: any) => w.name);
  assert.deepEqual([...names].sort(), Object.keys(ready).filter((k) => k.endsWith('_task')).sort(), 'the same workers as /ready');
  const partition = res.body.data.find((w: any) => w.name === 'spans_partition_task');
  assert.equal(partition.check.status, 'ok');
  assert.equal(partition.last_runs.length, WORKER_RUNS_SHOWN);
  const ids = partition.last_runs.map((x: any) => BigInt(x.id));
  assert.deepEqual(ids, [...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)), 'newest first');
  assert.ok(partition.last_runs.every((x: any) => x.outcome === 'succeeded' && x.replica_id === r.workers.replicaId));
  assert.equal(partition.replicas.length, 1);
  assert.equal(partition.replicas[0].this_replica, true);
  assert.ok(partition.replicas[0].runs >= WORKER_RUNS_SHOWN + 3);
});

test('an operator is refused with the role it needs; an API key is refused', async () => {
  const operator = await makeUser(r.pool, DEFAULT_PROJECT_ID, 'operator');
  const res = await call(r.url, 'GET', '/v1/workers', operator.token);
  assert.equal(res.status, 403);
  assert.match(String(res.body.detail), /requires role admin/);
  assert.equal((await call(r.url, 'GET', '/v1/workers', r.key)).status, 403);
  assert.equal((await call(r.url, 'GET', '/v1/workers')).status, 401);
});
