// Spans outside every monthly partition (clocks in 1990 or 2200) are accepted and stored in the
// DEFAULT partitions; spans_partition_task, or creating that month later, moves them into their month.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, startTestReceiver } from '../helpers.js';
import { month, workerContext, workersFor } from './support.js';

const r = await startTestReceiver();

async function send(spans: { traceId: string; spanId: string; startNs: bigint }[]) {
  const body = {
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'clock-skew' } }] },
      scopeSpans: [{
        scope: { name: 'test' },
        spans: spans.map((s) => ({
          traceId: s.traceId, spanId: s.spanId, name: 'skewed', kind: 1,
          startTimeUnixNano: String(s.startNs), endTimeUnixNano: String(s.startNs + 1_000_000n),
          events: [{ timeUnixNano: String(s.startNs), name: 'ev' }],
          links: [{ traceId: hex(16), spanId: hex(8) }],
        })),
      }],
    }],
  };
  return fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${r.key}` }, body: JSON.stringify(body) });
}

/** Which partition of spans / span_events / span_links holds the rows of a trace. */
async function homes(traceId: string): Promise<string[]> {
  const q = await r.pool.query<{ s: string; e: string; l: string }>(`
    SELECT (SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM telemetry.spans WHERE trace_id = decode($1, 'hex')) AS s,
           (SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM telemetry.span_events WHERE trace_id = decode($1, 'hex')) AS e,
           (SELECT string_agg(DISTINCT tableoid::regclass::text, ',') FROM telemetry.span_links WHERE trace_id = decode($1, 'hex')) AS l`, [traceId]);
  const row = q.rows[0]!;
  return [row.s, row.e, row.l];
}

const ns = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

test('spans dated 1990 and 2200 are accepted, stored in the DEFAULT partitions, and moved out when their month is created', async () => {
  const past = { traceId: hex(16), spanId: hex(8), startNs: ns('1990-03-10T08:00:00Z') + 123n };
  const future = { traceId: hex(16), spanId: hex(8), startNs: ns('2200-07-04T12:00:00Z') + 456n };
  const res = await send([past, future]);
  assert.equal(res.status, 200);

  assert.deepEqual(await homes(past.traceId), ['telemetry.spans_default', 'telemetry.span_events_default', 'telemetry.span_links_default']);
  assert.deepEqual(await homes(future.traceId), ['telemetry.spans_default', 'telemetry.span_events_default', 'telemetry.span_links_default']);
  const stored = await r.pool.query(`SELECT start_time_unix_nano FROM telemetry.spans WHERE trace_id = ANY($1::bytea[]) ORDER BY 1`,
    [[past.traceId, future.traceId].map((t) => Buffer.from(t, 'hex'))]);
  assert.deepEqual(stored.rows.map((x) => x.start_time_unix_nano), [String(past.startNs), String(future.startNs)]);
  const summary = await r.pool.query(`SELECT start_time_unix_nano FROM telemetry.traces WHERE trace_id = decode($1, 'hex')`, [past.traceId]);
  assert.equal(summary.rows[0]?.start_time_unix_nano, String(past.startNs));

  // Creating those months (the function the worker calls, anchored at another date) moves the rows.
  await r.pool.query(`SELECT telemetry.ensure_month_partitions(0, '1990-03-15T00:00:00Z')`);
  await r.pool.query(`SELECT telemetry.ensure_month_partitions(0, '2200-07-15T00:00:00Z')`);
  assert.deepEqual(await homes(past.traceId), ['telemetry.spans_y1990m03', 'telemetry.span_events_y1990m03', 'telemetry.span_links_y1990m03']);
  assert.deepEqual(await homes(future.traceId), ['telemetry.spans_y2200m07', 'telemetry.span_events_y2200m07', 'telemetry.span_links_y2200m07']);
  const left = await r.pool.query(`SELECT count(*)::int AS n FROM telemetry.spans_default WHERE trace_id = ANY($1::bytea[])`,
    [[past.traceId, future.traceId].map((t) => Buffer.from(t, 'hex'))]);
  assert.equal(left.rows[0].n, 0);
});

test('spans_partition_task creates partitions further ahead and moves early arrivals out of DEFAULT', async () => {
  // The receiver keeps 3 months ahead (default); a span 6 months ahead lands in DEFAULT.
  const ahead = month(6);
  const early = { traceId: hex(16), spanId: hex(8), startNs: BigInt(ahead.mid.getTime()) * 1_000_000n };
  assert.equal((await send([early])).status, 200);
  assert.deepEqual(await homes(early.traceId), ['telemetry.spans_default', 'telemetry.span_events_default', 'telemetry.span_links_default']);

  const h = await workerContext({ STRATHON_PARTITION_MONTHS_AHEAD: '8' }, r.databaseUrl);
  const workers = workersFor(h);
  assert.equal(await workers.runOnce('spans_partition_task'), 'succeeded');
  const created = workers.state('spans_partition_task')!.lastDetails?.partitions_created;
  assert.equal(created, 15, '5 new months (4..8 ahead) × spans, events, links');
  assert.deepEqual(await homes(early.traceId), [`telemetry.spans_${ahead.suffix}`, `telemetry.span_events_${ahead.suffix}`, `telemetry.span_links_${ahead.suffix}`]);
  // Idempotent: a second run (or another replica) creates nothing.
  assert.equal(await workers.runOnce('spans_partition_task'), 'succeeded');
  assert.equal(workers.state('spans_partition_task')!.lastDetails?.partitions_created, 0);
});
