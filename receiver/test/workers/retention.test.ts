// retention_task deletes exactly the expired traces (summary, spans, events, links) per project's
// retention, oldest first and at most the batch size per project per sweep; retention_cleanup_task
// drops whole partitions once every project's retention has passed them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, makeProject } from '../helpers.js';
import { DAY_MS, month, seedTrace, tableExists, traceRows, workerContext, workersFor, type SeededTrace } from './support.js';

const ago = (days: number) => new Date(Date.now() - days * DAY_MS);

test('retention_task deletes exactly the expired traces of each project, batch by batch, and nothing newer', async () => {
  const h = await workerContext({ STRATHON_RETENTION_DAYS: '20', STRATHON_RETENTION_BATCH_SIZE: '5' });
  const { pool } = h;
  await pool.query('SELECT telemetry.ensure_month_partitions(3)');
  const a = await makeProject(pool);
  const b = await makeProject(pool);
  await pool.query('UPDATE core.projects SET retention_days = 10 WHERE id = $1', [a]);
  await pool.query('UPDATE core.projects SET retention_days = 40 WHERE id = $1', [b]);

  const seed = (project: string, days: number[]) => Promise.all(days.map((d) => seedTrace(pool, project, ago(d))));
  const aExpired = await seed(a, [11, 12, 13, 14, 15, 16, 17]); // 7 > batch of 5
  const aKept = await seed(a, [1, 5, 9.9]);
  const bExpired = await seed(b, [41, 42, 45]);
  const bKept = await seed(b, [11, 17, 25, 39.9]); // older than a's retention, within b's
  const dExpired = await seed(DEFAULT_PROJECT_ID, [21, 30]); // default project: STRATHON_RETENTION_DAYS=20
  const dKept = await seed(DEFAULT_PROJECT_ID, [19.9]);

  const expectRows = async (traces: SeededTrace[], rows: [number, number, number, number], what: string) => {
    for (const t of traces) assert.deepEqual(await traceRows(pool, t), rows, `${what}: trace started ${((Date.now() - t.start.getTime()) / DAY_MS).toFixed(1)} days ago`);
  };
  const all = [...aExpired, ...aKept, ...bExpired, ...bKept, ...dExpired, ...dKept];
  await expectRows(all, [1, 2, 2, 2], 'seeded');

  const workers = workersFor(h);
  assert.equal(await workers.runOnce('retention_task'), 'succeeded');
  // First sweep: the 5 oldest of a's 7 expired traces, all of b's and the default project's.
  assert.deepEqual(workers.state('retention_task')!.lastDetails, { projects: 3, traces: 5 + 3 + 2, spans: 20, events: 20, links: 20 });
  const byAge = [...aExpired].sort((x, y) => x.start.getTime() - y.start.getTime());
  await expectRows(byAge.slice(0, 5), [0, 0, 0, 0], 'oldest expired of a, first sweep');
  await expectRows(byAge.slice(5), [1, 2, 2, 2], 'newer expired of a, beyond the batch');
  await expectRows([...bExpired, ...dExpired], [0, 0, 0, 0], 'expired in b and default');
  await expectRows([...aKept, ...bKept, ...dKept], [1, 2, 2, 2], 'within retention');

  assert.equal(await workers.runOnce('retention_task'), 'succeeded');
  assert.deepEqual(workers.state('retention_task')!.lastDetails, { projects: 3, traces: 2, spans: 4, events: 4, links: 4 });
  await expectRows(aExpired, [0, 0, 0, 0], 'every expired trace of a');
  await expectRows([...aKept, ...bKept, ...dKept], [1, 2, 2, 2], 'within retention, after the second sweep');

  assert.equal(await workers.runOnce('retention_task'), 'succeeded');
  assert.equal((workers.state('retention_task')!.lastDetails as { traces: number }).traces, 0);
  const left = await pool.query(`SELECT (SELECT count(*) FROM telemetry.traces)::int AS t, (SELECT count(*) FROM telemetry.spans)::int AS s`);
  assert.deepEqual(left.rows[0], { t: 8, s: 16 });
  assert.ok(h.lines.some((l) => /"msg":"retention: expired traces deleted"/.test(l) && l.includes(`"project_id":"${a}"`) && /"batch_full":true/.test(l)));
});

test('retention_cleanup_task drops a partition every project has outlived, keeps one a longer retention still needs', async () => {
  const h = await workerContext({ STRATHON_RETENTION_DAYS: '30', STRATHON_RETENTION_BATCH_SIZE: '100' });
  const { pool } = h;
  const old = month(-24); // past every retention
  const mid = month(-6); // past 30 days, within b's 400
  for (const m of [old, mid]) await pool.query('SELECT telemetry.ensure_month_partitions(0, $1)', [m.mid]);
  await pool.query('SELECT telemetry.ensure_month_partitions(3)');
  const a = await makeProject(pool); // default retention (30 days)
  const b = await makeProject(pool);
  await pool.query('UPDATE core.projects SET retention_days = 400 WHERE id = $1', [b]);

  const aOld = await seedTrace(pool, a, old.mid);
  const bOld = await seedTrace(pool, b, old.mid);
  const aMid = await seedTrace(pool, a, mid.mid);
  const bMid = await seedTrace(pool, b, mid.mid);
  const bNow = await seedTrace(pool, b, ago(1));
  const future = await seedTrace(pool, b, new Date('2200-01-01T00:00:00Z')); // lives in DEFAULT
  const oldParts = ['spans', 'span_events', 'span_links'].map((t) => `telemetry.${t}_${old.suffix}`);
  const midParts = ['spans', 'span_events', 'span_links'].map((t) => `telemetry.${t}_${mid.suffix}`);
  const oldRows = await pool.query(`SELECT count(*)::int AS n FROM ${oldParts[0]}`);
  assert.equal(oldRows.rows[0].n, 4, 'the old partition holds both projects\' spans');

  const workers = workersFor(h);
  assert.equal(await workers.runOnce('retention_cleanup_task'), 'succeeded');
  const details = workers.state('retention_cleanup_task')!.lastDetails as { partitions_dropped: string[]; summaries: { traces: number } };
  const beforeOld = month(-25).suffix; // ensure_month_partitions(0, base) also creates the month before base
  assert.deepEqual(details.partitions_dropped.sort(), ['spans', 'span_events', 'span_links'].flatMap((t) => [`${t}_${beforeOld}`, `${t}_${old.suffix}`]).sort());
  for (const p of oldParts) assert.equal(await tableExists(pool, p), false, `${p} dropped`);
  for (const p of midParts) assert.equal(await tableExists(pool, p), true, `${p} kept for b's 400 days`);
  for (const p of ['spans_default', 'span_events_default', 'span_links_default', `spans_${month(0).suffix}`, `spans_${month(-1).suffix}`]) {
    assert.equal(await tableExists(pool, `telemetry.${p}`), true, `${p} never dropped`);
  }
  assert.equal(details.summaries.traces, 2);
  assert.deepEqual(await traceRows(pool, aOld), [0, 0, 0, 0]);
  assert.deepEqual(await traceRows(pool, bOld), [0, 0, 0, 0]);
  for (const t of [aMid, bMid, bNow, future]) assert.deepEqual(await traceRows(pool, t), [1, 2, 2, 2]);
  assert.ok(h.lines.some((l) => l.includes('"msg":"retention: expired partitions dropped"')));

  // Idempotent; and row-level retention then removes a's trace from the kept partition, not b's.
  assert.equal(await workers.runOnce('retention_cleanup_task'), 'succeeded');
  assert.deepEqual((workers.state('retention_cleanup_task')!.lastDetails as { partitions_dropped: string[] }).partitions_dropped, []);
  assert.equal(await workers.runOnce('retention_task'), 'succeeded');
  assert.deepEqual(await traceRows(pool, aMid), [0, 0, 0, 0]);
  for (const t of [bMid, bNow, future]) assert.deepEqual(await traceRows(pool, t), [1, 2, 2, 2]);
  for (const p of midParts) assert.equal(await tableExists(pool, p), true);
});

test('retention workers skip work another replica is doing (advisory lock) and honour a disabled config', async () => {
  const h = await workerContext({ STRATHON_RETENTION_ENABLED: 'false' });
  const workers = workersFor(h);
  const checks = workers.checks();
  assert.equal(checks.retention_task?.status, 'disabled');
  assert.equal(checks.retention_cleanup_task?.status, 'disabled');

  const on = await workerContext({}, h.url);
  const holder = await on.pool.connect();
  try {
    await holder.query(`SELECT pg_advisory_lock(hashtext('strathon.worker.retention_task'))`);
    const w = workersFor(on);
    assert.equal(await w.runOnce('retention_task'), 'skipped');
    assert.equal(w.checks().retention_task?.status, 'ok');
    await holder.query(`SELECT pg_advisory_unlock(hashtext('strathon.worker.retention_task'))`);
    assert.equal(await w.runOnce('retention_task'), 'succeeded');
  } finally {
    holder.release();
  }
});
