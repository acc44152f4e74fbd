// The trace summaries the writer upserts (per-request trace parts folded per batch, the staging path
// for re-sent spans) equal the summary recomputed by SQL from the stored spans, however the spans of
// a trace are split over requests and batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pg from 'pg';
import { createTestDatabase, memoryLogger, DEFAULT_PROJECT_ID } from '../helpers.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { IngestWriter } from '../../src/ingest/writer.js';
import { normalizeRequest } from '../../src/ingest/normalize.js';
import type { ExportRequestShape, KeyValueShape, SpanShape } from '../../src/ingest/otlp-wire.js';

const SEED = 4242;
const RUNS = 60;

// The per-span aggregation the writer used before trace parts, over everything stored.
const RECOMPUTED_SQL = `
SELECT encode(trace_id, 'hex') AS trace_id,
  min(start_time)::text AS start_time,
  max(start_time + ((end_time_unix_nano - start_time_unix_nano) / 1000) * interval '1 microsecond')::text AS end_time,
  min(start_time_unix_nano)::text AS start_ns, max(end_time_unix_nano)::text AS end_ns,
  (array_agg(name) FILTER (WHERE parent_span_id IS NULL))[1] AS root_name,
  encode((array_agg(span_id) FILTER (WHERE parent_span_id IS NULL))[1], 'hex') AS root_span_id,
  coalesce((array_agg(service_name) FILTER (WHERE parent_span_id IS NULL AND service_name IS NOT NULL))[1],
           (array_agg(service_name) FILTER (WHERE service_name IS NOT NULL))[1]) AS service_name,
  coalesce((array_agg(agent_name) FILTER (WHERE parent_span_id IS NULL AND agent_name IS NOT NULL))[1],
           (array_agg(agent_name) FILTER (WHERE agent_name IS NOT NULL))[1]) AS agent_name,
  count(*)::integer AS span_count,
  (count(*) FILTER (WHERE status_code = 2))::integer AS error_count,
  (count(*) FILTER (WHERE is_llm))::integer AS llm_span_count,
  (count(*) FILTER (WHERE is_tool))::integer AS tool_span_count,
  coalesce(sum(input_tokens), 0)::bigint::text AS input_tokens,
  coalesce(sum(output_tokens), 0)::bigint::text AS output_tokens,
  coalesce(sum(cost_usd), 0)::numeric(20, 10)::text AS cost_usd,
  coalesce(array_agg(DISTINCT model) FILTER (WHERE model IS NOT NULL), '{}') AS models
FROM telemetry.spans WHERE project_id = $1 GROUP BY trace_id ORDER BY trace_id`;

const STORED_SQL = `
SELECT encode(trace_id, 'hex') AS trace_id, start_time::text AS start_time, end_time::text AS end_time, start_time_unix_nano::text AS start_ns, end_time_unix_nano::text AS end_ns,
  root_name, encode(root_span_id, 'hex') AS root_span_id, service_name, agent_name, span_count, error_count, llm_span_count,
  tool_span_count, input_tokens::text AS input_tokens, output_tokens::text AS output_tokens, cost_usd::text AS cost_usd, models
FROM telemetry.traces WHERE project_id = $1 ORDER BY trace_id`;

const MODELS = ['gpt-4o', 'claude "q"', 'a\\b', 'm,1', 'x y'];

interface GenSpan {
  trace: number; root: boolean; service: boolean; agent: boolean; error: boolean;
  model: number | null; input: number | null; output: number | null; cost: number | null;
  start: bigint; duration: bigint;
}

const spanArb = fc.record({
  trace: fc.integer({ min: 0, max: 2 }), root: fc.integer({ min: 0, max: 3 }).map((n) => n === 0), service: fc.boolean(), agent: fc.boolean(), error: fc.boolean(),
  model: fc.option(fc.integer({ min: 0, max: MODELS.length - 1 })),
  input: fc.option(fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(Number.MAX_SAFE_INTEGER))),
  output: fc.option(fc.integer({ min: 0, max: 5000 })),
  cost: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true })),
  // Small counts (no whole millisecond), realistic epochs, and nanosecond remainders that move end_time's µs.
  start: fc.oneof(fc.bigInt({ min: 1n, max: 3_000n }), fc.bigInt({ min: 1n, max: 999_999n }), fc.bigInt({ min: 1_700_000_000_000_000_000n, max: 1_700_000_100_000_000_000n })),
  duration: fc.oneof(fc.bigInt({ min: 0n, max: 2_000n }), fc.bigInt({ min: 0n, max: 10_000_000_000n })),
});

// Spans, then how they are cut: request sizes, which requests share a wave (submitted together and
// so batched together), batch size, and spans re-sent later (the staging path).
const scenarioArb = fc.record({
  spans: fc.array(spanArb, { minLength: 1, maxLength: 40 }),
  cuts: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 40, maxLength: 40 }),
  waves: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 40, maxLength: 40 }),
  maxBatchSpans: fc.integer({ min: 1, max: 30 }),
  resend: fc.array(fc.nat(), { maxLength: 6 }),
});

// end_time is not a function of end_ns alone: A ends later (2,400 ns) but at 1 µs (500 ns + 1 whole
// µs), B at 2 µs (2,000 ns + 0): the per-span expression, not the latest end_ns, decides.
const plain = { root: false, service: false, agent: false, error: false, model: null, input: null, output: null, cost: null };
const END_TIME_EXAMPLE = {
  spans: [{ ...plain, trace: 0, start: 500n, duration: 1_900n }, { ...plain, trace: 0, start: 2_000n, duration: 300n }],
  cuts: [2], waves: [1], maxBatchSpans: 30, resend: [],
};

const id = (prefix: number, n: number, bytes: number) => Buffer.from(`${prefix.toString(16).padStart(8, '0')}${n.toString(16).padStart(bytes * 2 - 8, '0')}`, 'hex');
const str = (key: string, value: string): KeyValueShape => ({ key, value: { stringValue: value } });

/** One span per resource (its service.name may differ per span); at most one root per trace, and
 *  every non-root span of a trace has the same service or none, so "first non-null" does not depend
 *  on arrival order and the SQL over stored spans is the expected summary. */
function request(run: number, spans: { s: GenSpan; i: number }[], rootOf: Map<number, number>): ExportRequestShape {
  return {
    resourceSpans: spans.map(({ s, i }) => {
      const root = rootOf.get(s.trace) === i;
      const attributes: KeyValueShape[] = [];
      if (root && s.agent) attributes.push(str('gen_ai.agent.name', `agent-root-${s.trace}`));
      if (s.model !== null) attributes.push(str('gen_ai.request.model', MODELS[s.model] as string));
      if (s.input !== null) attributes.push({ key: 'gen_ai.usage.input_tokens', value: { intValue: s.input } });
      if (s.output !== null) attributes.push({ key: 'gen_ai.usage.output_tokens', value: { intValue: s.output } });
      if (s.cost !== null) attributes.push({ key: 'gen_ai.usage.cost', value: { doubleValue: s.cost } });
      if (i % 3 === 0) attributes.push(str('gen_ai.operation.name', 'execute_tool'));
      const span: SpanShape = {
        traceId: id(run, s.trace + 1, 16), spanId: id(run, i + 1, 8), parentSpanId: root ? undefined : id(run, 999_999, 8),
        name: `span-${i}`, startTimeUnixNano: `${s.start}`, endTimeUnixNano: `${s.start + s.duration}`, attributes,
        status: { code: s.error ? 2 : 0 },
      };
      const service = s.service ? (root ? `svc-root-${s.trace}` : `svc-${s.trace}`) : null;
      return { resource: { attributes: service ? [str('service.name', service)] : [] }, scopeSpans: [{ spans: [span] }] };
    }),
  };
}

test('telemetry.traces equals the per-span summary of telemetry.spans for any split over requests and batches', { timeout: 600_000 }, async () => {
  const url = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const { log } = memoryLogger('error');
  const metrics = createMetrics();
  let run = 0;
  let traces = 0;
  let resent = 0;
  try {
    await fc.assert(fc.asyncProperty(scenarioArb, async (sc) => {
      run++;
      const writer = new IngestWriter(pool, { maxQueueSpans: 100_000, maxQueueBytes: 1e9, maxBatchSpans: sc.maxBatchSpans, writers: 1 + (run % 2), log, metrics });
      try {
        await pool.query('TRUNCATE telemetry.spans, telemetry.traces');
        const rootOf = new Map<number, number>();
        sc.spans.forEach((s, i) => { if (s.root && !rootOf.has(s.trace)) rootOf.set(s.trace, i); });
        const indexed = sc.spans.map((s, i) => ({ s, i }));
        // Requests: consecutive slices; re-sent spans go in extra requests at the end.
        const requests: { s: GenSpan; i: number }[][] = [];
        for (let at = 0, k = 0; at < indexed.length; k++) {
          const n = sc.cuts[k % sc.cuts.length] as number;
          requests.push(indexed.slice(at, at + n));
          at += n;
        }
        const again = sc.resend.map((r) => indexed[r % indexed.length] as { s: GenSpan; i: number });
        if (again.length) requests.push(again, again.slice(0, 1).concat(again));
        resent += again.length;
        for (let at = 0, k = 0; at < requests.length; k++) {
          const n = sc.waves[k % sc.waves.length] as number;
          const wave = requests.slice(at, at + n).map((r) => {
            const b = normalizeRequest(request(run, r, rootOf), { projectId: DEFAULT_PROJECT_ID, samplingRate: 1, prices: () => undefined });
            assert.equal(b.rejected, 0, b.firstErrors.join('; '));
            return writer.submit(b.spans, b.events, b.links);
          });
          await Promise.all(wave);
          at += n;
        }
        const expected = (await pool.query(RECOMPUTED_SQL, [DEFAULT_PROJECT_ID])).rows;
        const stored = (await pool.query(STORED_SQL, [DEFAULT_PROJECT_ID])).rows;
        assert.equal(expected.length, new Set(sc.spans.map((s) => s.trace)).size);
        assert.deepEqual(stored, expected);
        traces += stored.length;
      } finally {
        await writer.close(5000);
      }
    }), { seed: SEED, numRuns: RUNS, examples: [[END_TIME_EXAMPLE]] });
    assert.ok(traces >= RUNS, 'traces were compared');
    assert.ok(resent > 0, 're-sent spans took the staging path');
  } finally {
    await pool.end();
  }
});

test('trace parts sum any decimal cost_usd as the numeric(20, 10) column rounds it', async () => {
  const url = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const { log } = memoryLogger('error');
  const writer = new IngestWriter(pool, { maxQueueSpans: 1000, maxQueueBytes: 1e8, maxBatchSpans: 1000, writers: 1, log, metrics: createMetrics() });
  try {
    const costs = ['0.5', '1.00000000005', '0.00000000004', '123.4', '7', '0.0000000000', null];
    const spans: GenSpan[] = costs.map((_, i) => ({ ...plain, trace: i % 2, start: 1_700_000_000_000_000_000n + BigInt(i), duration: 1_000n }));
    const rootOf = new Map<number, number>();
    const b = normalizeRequest(request(9, spans.map((s, i) => ({ s, i })), rootOf), { projectId: DEFAULT_PROJECT_ID, samplingRate: 1, prices: () => undefined });
    b.spans.forEach((s, i) => { s.cost_usd = costs[i] ?? null; });
    await writer.submit(b.spans, b.events, b.links);
    const expected = (await pool.query(RECOMPUTED_SQL, [DEFAULT_PROJECT_ID])).rows;
    const stored = (await pool.query(STORED_SQL, [DEFAULT_PROJECT_ID])).rows;
    assert.deepEqual(stored.map((r) => r.cost_usd), ['7.5000000000', '124.4000000001']);
    assert.deepEqual(stored, expected);
  } finally {
    await writer.close(5000);
    await pool.end();
  }
});
