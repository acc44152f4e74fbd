// Fixtures for the worker tests: a worker context over a test database, traces written with the
// real ingest statement (so summaries are maintained as in production), month/partition names.
import { after } from 'node:test';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { createMetrics } from '../../src/observability/metrics.js';
import { createDb } from '../../src/db/db.js';
import { INSERT_BATCH_SQL } from '../../src/ingest/writer.js';
import type { EventRow, LinkRow, SpanRow } from '../../src/ingest/normalize.js';
import type { ReceiverContext } from '../../src/context.js';
import { createWorkers, type WorkerOptions, type Workers } from '../../src/workers/workers.js';
import { createTestDatabase, memoryLogger, testConfig } from '../helpers.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

export function testPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => undefined);
  after(() => pool.end());
  return pool;
}

export interface WorkerHarness { ctx: ReceiverContext; pool: pg.Pool; lines: string[]; url: string }

/** A context with the real config parser, pool, logger and metrics (no HTTP, no ingest). */
export async function workerContext(env: Record<string, string> = {}, url?: string): Promise<WorkerHarness> {
  const dbUrl = url ?? (await createTestDatabase());
  const pool = testPool(dbUrl);
  const { log, lines } = memoryLogger('debug');
  const ctx = { config: testConfig(dbUrl, env), pool, db: createDb(pool), log, metrics: createMetrics() } as unknown as ReceiverContext;
  return { ctx, pool, lines, url: dbUrl };
}

/** createWorkers, stopped after the test file. */
export function workersFor(h: WorkerHarness, options: WorkerOptions = {}): Workers {
  const w = createWorkers(h.ctx, { graceSeconds: 5, ...options });
  after(() => w.stop(2000));
  return w;
}

export const DAY_MS = 86_400_000;

/** The UTC month `offset` months from now, as [its 15th at noon, "yYYYYmMM"]. */
export function month(offset: number): { mid: Date; suffix: string } {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 15, 12));
  return { mid: d, suffix: `y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}` };
}

export interface SeededTrace { traceId: string; projectId: string; start: Date }

/** One trace of two spans (root + child, one event and one link each), through the ingest statement. */
export async function seedTrace(pool: pg.Pool, projectId: string, start: Date): Promise<SeededTrace> {
  const traceId = randomBytes(16).toString('hex');
  const spans: SpanRow[] = [];
  const events: EventRow[] = [];
  const links: LinkRow[] = [];
  let parent: string | null = null;
  for (let i = 0; i < 2; i++) {
    const spanId = randomBytes(8).toString('hex');
    const t = new Date(start.getTime() + i * 1000);
    const ns = BigInt(t.getTime()) * 1_000_000n;
    spans.push({
      project_id: projectId, trace_id: traceId, span_id: spanId, parent_span_id: parent, trace_state: null, name: i ? 'child' : 'root',
      kind: 1, start_time: t.toISOString(), start_ns: ns.toString(), end_ns: (ns + 500_000_000n).toString(), status_code: 0,
      status_message: null, flags: null, resource_attributes: {}, resource_dropped: 0, resource_schema_url: null, scope_name: 'test',
      scope_version: null, scope_attributes: null, scope_dropped: 0, scope_schema_url: null, attributes: {}, dropped_attributes: 0,
      dropped_events: 0, dropped_links: 0, event_count: 1, link_count: 1, service_name: 'svc', agent_name: null, model: null,
      provider: null, operation_name: null, tool_name: null, input_tokens: null, output_tokens: null, cost_usd: null, is_llm: false, is_tool: false,
    });
    events.push({ project_id: projectId, trace_id: traceId, span_id: spanId, span_start_time: t.toISOString(), idx: 0, time_ns: ns.toString(), name: 'ev', attributes: {}, dropped: 0 });
    links.push({
      project_id: projectId, trace_id: traceId, span_id: spanId, span_start_time: t.toISOString(), idx: 0,
      linked_trace_id: randomBytes(16).toString('hex'), linked_span_id: randomBytes(8).toString('hex'), trace_state: null, attributes: {}, dropped: 0, flags: null,
    });
    parent = spanId;
  }
  await pool.query(INSERT_BATCH_SQL, [JSON.stringify(spans), JSON.stringify(events), JSON.stringify(links)]);
  return { traceId, projectId, start };
}

/** Rows each table holds for a trace: [summary, spans, events, links]. */
export async function traceRows(pool: pg.Pool, t: SeededTrace): Promise<[number, number, number, number]> {
  const r = await pool.query<{ t: number; s: number; e: number; l: number }>(`
    SELECT (SELECT count(*) FROM telemetry.traces WHERE project_id = $1 AND trace_id = decode($2, 'hex'))::int AS t,
           (SELECT count(*) FROM telemetry.spans WHERE project_id = $1 AND trace_id = decode($2, 'hex'))::int AS s,
           (SELECT count(*) FROM telemetry.span_events WHERE project_id = $1 AND trace_id = decode($2, 'hex'))::int AS e,
           (SELECT count(*) FROM telemetry.span_links WHERE project_id = $1 AND trace_id = decode($2, 'hex'))::int AS l`, [t.projectId, t.traceId]);
  const row = r.rows[0]!;
  return [row.t, row.s, row.e, row.l];
}

export async function tableExists(pool: pg.Pool, name: string): Promise<boolean> {
  const r = await pool.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [name]);
  return r.rows[0]?.t != null;
}
