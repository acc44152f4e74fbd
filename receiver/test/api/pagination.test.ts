// Keyset pagination over 10 000 traces visits each exactly once while ingest keeps adding new
// traces (interleaved in time with the old ones) and new spans to old traces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { getJson, ns, postSpans, traceId, type SpanSpec } from './otlp-json.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });
const TOTAL = 10_000;
const BATCH = 500;
const base = ns('2024-05-01T00:00:00Z');
// Groups of 4 traces share one start instant, so ties on start_time are broken by trace_id.
const startOf = (i: number) => base + BigInt(Math.floor(i / 4)) * 1_000_000n + (i % 4 === 3 ? 7n : 0n);

/** (start microsecond DESC, trace_id ASC): the order the API promises. */
function inOrder(a: { start_time_unix_nano: string; trace_id: string }, b: { start_time_unix_nano: string; trace_id: string }): boolean {
  const ua = BigInt(a.start_time_unix_nano) / 1000n;
  const ub = BigInt(b.start_time_unix_nano) / 1000n;
  return ua > ub || (ua === ub && a.trace_id < b.trace_id);
}

test('pagination over 10 000 traces visits each exactly once while ingest continues', { timeout: 300_000 }, async () => {
  const ids: string[] = [];
  const spans: SpanSpec[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const tid = traceId();
    ids.push(tid);
    spans.push({ traceId: tid, name: `page-${i}`, startNs: startOf(i) });
  }
  const batches = [];
  for (let i = 0; i < TOTAL; i += BATCH) batches.push(spans.slice(i, i + BATCH));
  await Promise.all(batches.map((b) => postSpans(r.url, r.key, 'pager', b)));
  const stored = await r.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM telemetry.traces`);
  assert.equal(stored.rows[0]?.n, TOTAL);

  // Concurrent ingest: new traces scattered across the same time range (some land behind the
  // cursor and must appear once, some ahead and must not cause repeats), plus late child spans
  // added to already-listed traces (their summaries change, their position does not).
  let paging = true;
  let posted = 0;
  const added = new Set<string>();
  const writer = (async () => {
    let round = 0;
    while (paging) {
      const fresh: SpanSpec[] = [];
      for (let k = 0; k < 50; k++) {
        const tid = traceId();
        added.add(tid);
        fresh.push({ traceId: tid, name: `late-${round}-${k}`, startNs: startOf(Math.floor(Math.random() * TOTAL)) + 1n });
      }
      for (let k = 0; k < 20; k++) {
        const i = Math.floor(Math.random() * TOTAL);
        fresh.push({ traceId: ids[i] as string, parentSpanId: 'ffffffffffffffff', name: 'late-child', startNs: startOf(i) + 500_000n });
      }
      await postSpans(r.url, r.key, 'pager', fresh);
      posted++;
      round++;
    }
  })();

  const seen = new Map<string, number>();
  let cursor: string | undefined;
  let pages = 0;
  let prev: { start_time_unix_nano: string; trace_id: string } | undefined;
  try {
    do {
      const res = await getJson(r.url, r.key, '/v1/traces', { limit: 137, cursor });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      for (const t of res.body.data) {
        seen.set(t.trace_id, (seen.get(t.trace_id) ?? 0) + 1);
        if (prev) assert.ok(inOrder(prev, t), `order broken between ${prev.trace_id} and ${t.trace_id}`);
        prev = t;
      }
      cursor = res.body.next_cursor ?? undefined;
      pages++;
      // Give the writer room to land batches between pages.
      if (pages % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    } while (cursor);
  } finally {
    paging = false;
    await writer;
  }

  assert.ok(posted >= 3, `ingest ran concurrently (${posted} batches)`);
  const repeated = [...seen].filter(([, n]) => n > 1);
  assert.deepEqual(repeated, [], 'no trace listed twice');
  const missing = ids.filter((id) => !seen.has(id));
  assert.deepEqual(missing, [], 'every original trace listed');
  const original = new Set(ids);
  for (const id of seen.keys()) assert.ok(original.has(id) || added.has(id), `unexpected trace ${id}`);
  assert.ok(pages >= Math.ceil(TOTAL / 137), `${pages} pages`);
  // Traces added behind the cursor while paging were picked up, those ahead were not: together
  // the listing is a consistent walk, never an OFFSET skip or repeat.
  const lateSeen = [...seen.keys()].filter((id) => added.has(id)).length;
  assert.ok(lateSeen <= added.size);
});
