// Multi-replica soak (bounded): two receivers on one database under ingest load with workers on
// short intervals — no errors in logs, no duplicate spans, every acked span stored, locked worker
// ticks never overlap across replicas. Duration: SOAK_SECONDS (default 20; bench/CI may raise it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, makeKey, memoryLogger, testConfig, hex } from '../helpers.js';
import { startReceiver } from '../../src/receiver.js';

const SOAK_S = Number(process.env.SOAK_SECONDS ?? 20);

test(`two receivers on one database for ${SOAK_S} s: no errors, no duplicates, no overlapping locked ticks`, { timeout: (SOAK_S + 90) * 1000 }, async () => {
  const url = await createTestDatabase({ fromTemplate: false });
  const a = memoryLogger('warn');
  const b = memoryLogger('warn');
  const env = { STRATHON_RATE_LIMIT_ENABLED: 'false', STRATHON_RETENTION_DAYS: '30' };
  const workers = { intervals: { spans_partition_task: 0.5, retention_task: 0.5, retention_cleanup_task: 0.5 }, firstRunDelaySeconds: 0.2 };
  // Booting together on an empty database also races the migrations and partition creation.
  const [ra, rb] = await Promise.all([
    startReceiver(testConfig(url, env), a.log, { workers: { ...workers, replicaId: 'replica-a' } }),
    startReceiver(testConfig(url, env), b.log, { workers: { ...workers, replicaId: 'replica-b' } }),
  ]);
  try {
    const key = await makeKey(ra.pool, ['traces:write']);
    const acked: string[] = [];
    const spanIds = new Map<string, string[]>();
    let other = 0;
    const deadline = Date.now() + SOAK_S * 1000;
    const now = BigInt(Date.now()) * 1_000_000n;
    const client = async (i: number) => {
      let n = 0;
      while (Date.now() < deadline) {
        const t = hex(16);
        const ids = Array.from({ length: 10 }, () => hex(8));
        const spans = ids.map((id, k) => ({ traceId: t, spanId: id, name: `soak${k}`, startTimeUnixNano: String(now + BigInt(k)), endTimeUnixNano: String(now + 1000n + BigInt(k)) }));
        const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
        const target = (i + n++) % 2 === 0 ? ra.url : rb.url;
        // Every trace goes to one replica, then (sometimes) again to the other: the retry must not duplicate.
        const res = await fetch(`${target}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body });
        await res.arrayBuffer();
        if (res.status === 200) {
          acked.push(t);
          spanIds.set(t, ids);
          if (n % 5 === 0) {
            const again = await fetch(`${target === ra.url ? rb.url : ra.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body });
            await again.arrayBuffer();
            if (again.status !== 200) other++;
          }
        } else other++;
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => client(i)));
    assert.ok(acked.length > 20, `load ran (${acked.length} traces acked)`);
    assert.equal(other, 0, 'no request was refused or failed');

    const dup = await ra.pool.query(`SELECT count(*)::int n FROM (SELECT 1 FROM telemetry.spans GROUP BY project_id, trace_id, span_id HAVING count(*) > 1) d`);
    assert.equal(dup.rows[0].n, 0, 'no duplicate spans');
    const stored = await ra.pool.query(`SELECT encode(trace_id,'hex') t, count(*)::int n FROM telemetry.spans GROUP BY 1`);
    const counts = new Map(stored.rows.map((x: { t: string; n: number }) => [x.t, x.n]));
    assert.deepEqual(acked.filter((t) => counts.get(t) !== 10), [], 'every acked trace stored whole, once');
    const sums = await ra.pool.query(`SELECT count(*)::int n FROM telemetry.traces t WHERE span_count <> (SELECT count(*) FROM telemetry.spans s WHERE s.project_id = t.project_id AND s.trace_id = t.trace_id)`);
    assert.equal(sums.rows[0].n, 0, 'trace summaries count each span once despite re-sends to the other replica');

    // Only advisory-locked workers are singletons; SKIP LOCKED workers (lock_kind none) run everywhere.
    const runs = await ra.pool.query(`SELECT r.worker, r.replica_id, r.started_at, r.finished_at FROM core.worker_runs r
      WHERE r.worker IN (SELECT worker FROM core.worker_status WHERE lock_kind = 'advisory') ORDER BY r.worker, r.started_at`);
    const byWorker = new Map<string, { replica_id: string; started_at: Date; finished_at: Date }[]>();
    for (const r of runs.rows) byWorker.set(r.worker, [...(byWorker.get(r.worker) ?? []), r]);
    assert.ok(byWorker.size >= 3, `all workers ran (${[...byWorker.keys()].join(', ')})`);
    const replicasSeen = new Set(runs.rows.map((r: { replica_id: string }) => r.replica_id));
    assert.ok(replicasSeen.size === 2, `both replicas ran locked ticks (${[...replicasSeen].join(', ')})`);
    for (const [worker, list] of byWorker) {
      for (let i = 1; i < list.length; i++) {
        const prev = list[i - 1]!;
        const cur = list[i]!;
        assert.ok(cur.started_at.getTime() >= prev.finished_at.getTime(), `${worker}: tick of ${cur.replica_id} at ${cur.started_at.toISOString()} overlaps ${prev.replica_id}'s ending ${prev.finished_at.toISOString()}`);
      }
    }
    const errorLines = [...a.lines, ...b.lines].filter((l) => /"level":"(error|fatal)"/.test(l));
    assert.deepEqual(errorLines, [], 'no errors logged by either replica');
    for (const r of [ra, rb]) assert.equal((await fetch(`${r.url}/ready`)).status, 200);
  } finally {
    await Promise.all([ra.close(), rb.close()]);
  }
});
