// Worker checks in GET /ready: the real receiver's three workers (ok, or disabled by config without
// failing readiness), and the real /ready handler turning 503 on a failing worker and back to 200.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import express from 'express';
import { readyHandler } from '../../src/api/health.js';
import { WORKER_NAMES, type WorkerDefinition } from '../../src/workers/workers.js';
import { startTestReceiver } from '../helpers.js';
import { waitFor, workerContext, workersFor } from './support.js';

async function ready(url: string) {
  const res = await fetch(`${url}/ready`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, { status: string; reason?: string }> } };
}

test('STRATHON_RETENTION_ENABLED=false: both retention workers are `disabled` and /ready stays 200', async () => {
  const r = await startTestReceiver({ STRATHON_RETENTION_ENABLED: 'false' });
  const { status, body } = await ready(r.url);
  assert.equal(status, 200);
  assert.equal(body.status, 'ready');
  assert.equal(body.checks.retention_task?.status, 'disabled');
  assert.match(body.checks.retention_task?.reason ?? '', /STRATHON_RETENTION_ENABLED=false/);
  assert.equal(body.checks.retention_cleanup_task?.status, 'disabled');
  assert.equal(body.checks.spans_partition_task?.status, 'ok');
  await waitFor('disabled workers recorded', async () =>
    (await r.pool.query(`SELECT count(*)::int AS n FROM core.worker_status WHERE NOT enabled`)).rows[0].n === 2);
});

test('a receiver reports exactly its workers, each ok before its first run, with worker metrics', async () => {
  const r = await startTestReceiver();
  const { status, body } = await ready(r.url);
  assert.equal(status, 200);
  const workerChecks = Object.keys(body.checks).filter((k) => k.endsWith('_task')).sort();
  assert.deepEqual(workerChecks, [...WORKER_NAMES].sort());
  for (const name of WORKER_NAMES) assert.equal(body.checks[name]?.status, 'ok', name);
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  for (const m of ['strathon_worker_runs_total', 'strathon_worker_failures_total', 'strathon_worker_duration_seconds', 'strathon_worker_last_success_timestamp_seconds']) {
    assert.match(metrics, new RegExp(`# TYPE ${m} `), m);
  }
});

test('/ready is 503 with the failing worker\'s reason, and 200 again once it recovers', async () => {
  const h = await workerContext();
  let healthy = false;
  const flaky: WorkerDefinition = {
    name: 'flaky_task', intervalSeconds: 0.05, enabled: true, lock: { kind: 'none' },
    async run() { if (!healthy) throw new Error('upstream refused: ECONNREFUSED'); },
  };
  // First runs at once: spans_partition_task creates this month's partition (the `partitions` check).
  const workers = workersFor(h, { extra: [flaky], firstRunDelaySeconds: 0, maxBackoffSeconds: 0.1 });
  const app = express();
  app.get('/ready', readyHandler(h.pool, () => workers.checks(), () => false));
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    workers.start();
    await waitFor('spans_partition_task ran', () => workers.state('spans_partition_task')?.lastOutcome === 'succeeded');
    await waitFor('flaky_task failed three times', () => (workers.state('flaky_task')?.consecutiveFailures ?? 0) >= 3);
    const down = await ready(url);
    assert.equal(down.status, 503, JSON.stringify(down.body));
    assert.equal(down.body.status, 'not_ready');
    assert.equal(down.body.checks.flaky_task?.status, 'failed');
    assert.match(down.body.checks.flaky_task?.reason ?? '', /last error: upstream refused: ECONNREFUSED/);
    for (const name of WORKER_NAMES) assert.equal(down.body.checks[name]?.status, 'ok', `${name}: ${JSON.stringify(down.body)}`);

    healthy = true;
    await waitFor('flaky_task recovered', () => workers.state('flaky_task')?.lastOutcome === 'succeeded');
    // Every check is bounded to 500 ms; on a loaded test machine the db check may need a second try.
    let up = await ready(url);
    for (let i = 0; i < 5 && up.status !== 200; i++) up = await ready(url);
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.equal(up.body.checks.flaky_task?.status, 'ok');
    assert.equal(up.body.checks.partitions?.status, 'ok', 'spans_partition_task created this month\'s partition');
  } finally {
    await workers.stop(1000);
    await new Promise((r) => server.close(r));
  }
});
