// Multi-replica soak (bounded): two receivers on one database under ingest load with EVERY worker
// on a sub-second interval — no errors in logs, no duplicate spans, every acked span stored, no
// migration or partition race, locked worker runs never overlap across replicas, a budget breached
// by the load is recorded once per threshold with one halt, and each webhook event reaches a
// loopback sink exactly once. Duration: SOAK_SECONDS (default 20; `npm run bench -- soak` runs 120).
// With SOAK_REPORT=<file> the measured figures are written there as JSON (read by bench/soak.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createTestDatabase, makeKey, memoryLogger, testConfig, hex } from '../helpers.js';
import { startReceiver } from '../../src/receiver.js';
import { WORKER_NAMES } from '../../src/workers/workers.js';
import { migrationFiles } from '../../src/db/migrate.js';
import { api, encryptionKey, endpoint, sleep, waitFor } from '../webhooks/support.js';

const SOAK_S = Number(process.env.SOAK_SECONDS ?? 20);
const AGENT = 'soak-agent';
// Each trace carries one LLM call of AGENT: 1000 input + 100 output tokens of gpt-4o at the
// seeded prices ($2.50 / $10 per 1M) = $0.0035, so the $0.10 budget is exhausted after ~29 traces.
const llmAttrs = [
  { key: 'gen_ai.agent.name', value: { stringValue: AGENT } },
  { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o' } },
  { key: 'gen_ai.usage.input_tokens', value: { intValue: '1000' } },
  { key: 'gen_ai.usage.output_tokens', value: { intValue: '100' } },
];

interface Run { worker: string; replica_id: string; started_at: Date; finished_at: Date }

/** Pairs of consecutive runs of one locked worker (any replicas) whose intervals intersect. */
function overlapsOf(runs: Run[]): string[] {
  const found: string[] = [];
  for (let i = 1; i < runs.length; i++) {
    const prev = runs[i - 1]!;
    const cur = runs[i]!;
    if (cur.worker === prev.worker && cur.started_at.getTime() < prev.finished_at.getTime()) {
      found.push(`${cur.worker}: run of ${cur.replica_id} at ${cur.started_at.toISOString()} overlaps ${prev.replica_id}'s ending ${prev.finished_at.toISOString()}`);
    }
  }
  return found;
}

test(`two receivers on one database for ${SOAK_S} s: no errors, no duplicates, no overlapping locked runs, one crossing per threshold, each webhook once`, { timeout: (SOAK_S + 120) * 1000 }, async () => {
  const url = await createTestDatabase({ fromTemplate: false });
  const sink = await endpoint();
  const a = memoryLogger('warn');
  const b = memoryLogger('warn');
  const env = {
    STRATHON_RATE_LIMIT_ENABLED: 'false', STRATHON_RETENTION_DAYS: '30',
    STRATHON_ENCRYPTION_KEY: encryptionKey(), STRATHON_WEBHOOK_ALLOW_PRIVATE: 'true',
  };
  // Every worker of WORKER_NAMES on a short interval; all runs kept so overlaps are checked over the whole soak.
  const intervals = Object.fromEntries(WORKER_NAMES.map((w) => [w, 0.5]));
  const workers = { intervals, firstRunDelaySeconds: 0.2, keepRuns: 1_000_000 };
  // Booting together on an empty database also races the migrations and partition creation.
  const files = migrationFiles();
  const [ra, rb] = await Promise.all([
    startReceiver(testConfig(url, env), a.log, { workers: { ...workers, replicaId: 'replica-a' } }),
    startReceiver(testConfig(url, env), b.log, { workers: { ...workers, replicaId: 'replica-b' } }),
  ]);
  try {
    const key = await makeKey(ra.pool, ['traces:write']);
    const admin = await makeKey(ra.pool, ['*']);
    const channel = await api(ra.url, 'POST', '/v1/notification-channels', admin, { name: 'soak-sink', url: sink.url('/soak') });
    assert.equal(channel.status, 201, channel.text);
    const budget = await api(rb.url, 'POST', '/v1/budgets', admin, {
      name: 'soak agent cap', scope: 'agent', scope_value: AGENT, max_spend_usd: '0.10', thresholds: [50, 80, 100], action: 'halt',
    });
    assert.equal(budget.status, 201, budget.text);
    const budgetId: string = budget.body.id;

    const acked: string[] = [];
    let requests = 0;
    let other = 0;
    const deadline = Date.now() + SOAK_S * 1000;
    const now = BigInt(Date.now()) * 1_000_000n;
    const client = async (i: number) => {
      let n = 0;
      while (Date.now() < deadline) {
        const t = hex(16);
        const spans = Array.from({ length: 10 }, (_, k) => ({
          traceId: t, spanId: hex(8), name: `soak${k}`, startTimeUnixNano: String(now + BigInt(k)), endTimeUnixNano: String(now + 1000n + BigInt(k)),
          ...(k === 0 ? { attributes: llmAttrs } : {}),
        }));
        const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
        const target = (i + n++) % 2 === 0 ? ra.url : rb.url;
        // Every trace goes to one replica, then (sometimes) again to the other: the retry must not duplicate.
        const res = await fetch(`${target}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body });
        await res.arrayBuffer();
        requests++;
        if (res.status === 200) {
          acked.push(t);
          if (n % 5 === 0) {
            const again = await fetch(`${target === ra.url ? rb.url : ra.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body });
            await again.arrayBuffer();
            requests++;
            if (again.status !== 200) other++;
          }
        } else other++;
      }
    };
    // Alongside the spans, test events through both replicas: both sweepers deliver while ingest runs.
    const testEvents: string[] = [];
    const eventSender = async () => {
      for (let n = 0; Date.now() < deadline; n++) {
        const sent = await api(n % 2 ? ra.url : rb.url, 'POST', `/v1/notification-channels/${channel.body.id}/test`, admin, {});
        if (sent.status === 202) testEvents.push(sent.body.webhook_id);
        else other++;
        await sleep(100);
      }
    };
    await Promise.all([...Array.from({ length: 6 }, (_, i) => client(i)), eventSender()]);

    // The breach is recorded by whichever replica's monitor holds the lock; its events then drain to the sink.
    await waitFor('the 100 % crossing', async () => (await ra.pool.query(`SELECT 1 FROM core.budget_crossings WHERE budget_id = $1 AND threshold = 100`, [budgetId])).rowCount === 1, 30_000);
    await waitFor('every delivery settled', async () => {
      const r = await ra.pool.query(`SELECT count(*) FILTER (WHERE status <> 'succeeded')::int AS pending FROM core.webhook_deliveries WHERE channel_id = $1`, [channel.body.id]);
      return r.rows[0].pending === 0;
    }, 30_000);
    await sleep(1500); // a duplicate delivery or a late locked run would land now

    const q = async <T = any>(sql: string, params: unknown[] = []): Promise<T[]> => (await ra.pool.query(sql, params)).rows as T[];
    const countOf = async (sql: string) => Number((await q<{ n: number }>(sql))[0]?.n);
    const duplicates = await countOf(`SELECT count(*)::int n FROM (SELECT 1 FROM telemetry.spans GROUP BY project_id, trace_id, span_id HAVING count(*) > 1) d`);
    const spansStored = await countOf(`SELECT count(*)::int n FROM telemetry.spans`);
    const counts = new Map((await q<{ t: string; n: number }>(`SELECT encode(trace_id,'hex') t, count(*)::int n FROM telemetry.spans GROUP BY 1`)).map((x) => [x.t, x.n]));
    const badSummaries = await countOf(`SELECT count(*)::int n FROM telemetry.traces t WHERE span_count <> (SELECT count(*) FROM telemetry.spans s WHERE s.project_id = t.project_id AND s.trace_id = t.trace_id)`);
    const migrations = await q<{ name: string; n: number }>(`SELECT name, count(*)::int n FROM public.pgmigrations GROUP BY name ORDER BY name`);
    const inDefault = await countOf(`SELECT count(*)::int n FROM telemetry.spans_default`);

    // Only advisory-locked workers are singletons; SKIP LOCKED workers (lock_kind none) run everywhere.
    const lockedWorkers = (await q<{ worker: string }>(`SELECT DISTINCT worker FROM core.worker_status WHERE lock_kind = 'advisory' ORDER BY 1`)).map((x) => x.worker);
    const runs = await q<Run>(`SELECT worker, replica_id, started_at, finished_at FROM core.worker_runs WHERE worker = ANY($1) ORDER BY worker, started_at, id`, [lockedWorkers]);
    const overlaps = overlapsOf(runs);
    const status = await q<{ worker: string; replica_id: string; runs: number; skips: number; failures: number }>(
      `SELECT worker, replica_id, runs::int, skips::int, failures::int FROM core.worker_status ORDER BY worker, replica_id`);
    const perWorker: Record<string, { runs: number; skips: number; failures: number; replicas: string[] }> = {};
    for (const s of status) {
      const w = (perWorker[s.worker] ??= { runs: 0, skips: 0, failures: 0, replicas: [] });
      w.runs += s.runs; w.skips += s.skips; w.failures += s.failures;
      if (s.runs > 0) w.replicas.push(s.replica_id);
    }

    const crossings = await q<{ window_start: Date; t: number; halts: number; event_type: string }>(
      `SELECT window_start, threshold::float8 AS t, cardinality(halt_ids) AS halts, event_type FROM core.budget_crossings WHERE budget_id = $1 ORDER BY window_start, threshold`, [budgetId]);
    const halts = await q<{ scope: string; scope_value: string }>(`SELECT scope, scope_value FROM core.halts WHERE budget_id = $1`, [budgetId]);
    const events = await q<{ type: string; n: number }>(`SELECT type, count(*)::int n FROM core.webhook_events GROUP BY type ORDER BY type`);
    const eventCount = (type: string) => events.find((e) => e.type === type)?.n ?? 0;
    const deliveries = await q<{ webhook_id: string; status: string }>(`SELECT webhook_id, status FROM core.webhook_deliveries WHERE channel_id = $1`, [channel.body.id]);
    const perWebhookId = new Map<string, number>();
    for (const c of sink.at('/soak')) perWebhookId.set(String(c.headers['webhook-id']), (perWebhookId.get(String(c.headers['webhook-id'])) ?? 0) + 1);
    const deliveredTwice = [...perWebhookId].filter(([, n]) => n > 1).map(([id]) => id);
    const errorLines = [...a.lines, ...b.lines].filter((l) => /"level":"(error|fatal)"/.test(l));

    if (process.env.SOAK_REPORT) {
      writeFileSync(process.env.SOAK_REPORT, `${JSON.stringify({
        seconds: SOAK_S, requests, tracesAcked: acked.length, refused: other, spansStored, duplicates, badSummaries,
        lockedWorkers, perWorker, lockedRuns: runs.length, overlaps: overlaps.length, logErrors: errorLines.length,
        crossings: crossings.map((c) => ({ threshold: c.t, halts: c.halts })), halts: halts.length,
        webhookEvents: events, testEvents: testEvents.length, deliveries: deliveries.length, sinkRequests: sink.at('/soak').length, deliveredTwice: deliveredTwice.length,
      }, null, 2)}\n`);
    }

    assert.ok(acked.length > 20, `load ran (${acked.length} traces acked)`);
    assert.equal(other, 0, 'no request was refused or failed');
    assert.equal(duplicates, 0, 'no duplicate spans');
    assert.deepEqual(acked.filter((t) => counts.get(t) !== 10), [], 'every acked trace stored whole, once');
    assert.equal(badSummaries, 0, 'trace summaries count each span once despite re-sends to the other replica');

    // Migrations raced at boot: each applied once, all of them; the current month's partition exists (nothing in DEFAULT).
    assert.deepEqual(migrations.map((m) => m.name), files, 'every migration applied');
    assert.deepEqual(migrations.filter((m) => m.n !== 1), [], 'no migration applied twice');
    assert.equal(inDefault, 0, 'no span landed in the DEFAULT partition');

    assert.deepEqual(Object.keys(perWorker).sort(), [...WORKER_NAMES].sort(), 'every worker reported status');
    for (const w of WORKER_NAMES) {
      assert.ok(perWorker[w]!.runs >= 2, `${w} ran repeatedly (${JSON.stringify(perWorker[w])})`);
      assert.equal(perWorker[w]!.failures, 0, `${w} never failed`);
    }
    assert.deepEqual(lockedWorkers, [...WORKER_NAMES].filter((w) => w !== 'webhook_sweeper_task').sort(), 'the locked workers');
    const replicasSeen = new Set(runs.map((r) => r.replica_id));
    assert.equal(replicasSeen.size, 2, `both replicas ran locked runs (${[...replicasSeen].join(', ')})`);
    assert.deepEqual(overlaps, [], 'locked runs never overlap');

    // The budget: each threshold crossed once per window, one halt (of the agent) at 100 %, one event per crossing.
    const windows = new Set(crossings.map((c) => c.window_start.getTime()));
    assert.deepEqual(crossings.map((c) => [c.t, c.halts, c.event_type]),
      [...windows].flatMap(() => [[50, 0, 'budget.threshold'], [80, 0, 'budget.threshold'], [100, 1, 'budget.exceeded']]));
    assert.deepEqual(halts, [...windows].map(() => ({ scope: 'agent', scope_value: AGENT })), 'one halt of the agent per exhausted window');
    assert.equal(eventCount('budget.threshold'), 2 * windows.size);
    assert.equal(eventCount('budget.exceeded'), windows.size);
    assert.equal(eventCount('halt.created'), windows.size);

    // Webhooks: every event has its delivery, every delivery succeeded and arrived once.
    const totalEvents = events.reduce((n, e) => n + e.n, 0);
    assert.equal(deliveries.length, totalEvents, 'one delivery per event');
    assert.ok(deliveries.every((d) => d.status === 'succeeded'), 'every delivery succeeded');
    assert.deepEqual(deliveredTwice, [], 'no webhook-id delivered twice');
    assert.deepEqual([...perWebhookId.keys()].sort(), deliveries.map((d) => d.webhook_id).sort(), 'every event reached the sink');
    assert.ok(testEvents.length > 10, `test events sent during the load (${testEvents.length})`);
    assert.equal(eventCount('webhook.test'), testEvents.length);
    assert.deepEqual(testEvents.filter((id) => perWebhookId.get(id) !== 1), [], 'each test event arrived once');

    assert.deepEqual(errorLines, [], 'no errors logged by either replica');
    for (const r of [ra, rb]) assert.equal((await fetch(`${r.url}/ready`)).status, 200);
  } finally {
    await Promise.all([ra.close(), rb.close()]);
  }
});
