// Durable group-commit writer. Concurrent requests share one INSERT statement (its own transaction);
// each request is acknowledged only when the statement that carries its spans has committed.
import type pg from 'pg';
import { BadRequest, Unavailable } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventRow, LinkRow, SpanRow } from './normalize.js';

export interface WriteResult { inserted: number; duplicates: number }

interface Item {
  spans: SpanRow[]; events: EventRow[]; links: LinkRow[]; bytes: number;
  resolve: (r: WriteResult) => void; reject: (e: Error) => void;
}

export interface WriterOptions {
  maxQueueSpans: number; maxQueueBytes: number; maxBatchSpans: number; writers: number;
  log: Logger; metrics: Metrics;
}

// One statement: insert spans (skipping re-sent ones), then the events/links of the spans that were
// new, then fold the new spans into the trace summaries. Rows arrive as one JSON document per table,
// which Postgres expands row by row in C (json_to_recordset: measured 1.1–1.2× faster than the
// jsonb form, which parses and re-encodes the whole document first — bench/writer-sql.mjs).
export const INSERT_BATCH_SQL = `
WITH input AS (
  SELECT * FROM json_to_recordset($1::json) AS r(
    project_id uuid, trace_id text, span_id text, parent_span_id text, trace_state text, name text, kind smallint,
    start_time timestamptz, start_ns bigint, end_ns bigint, status_code smallint, status_message text, flags bigint,
    resource_attributes jsonb, resource_dropped integer, resource_schema_url text, scope_name text, scope_version text,
    scope_attributes jsonb, scope_dropped integer, scope_schema_url text, attributes jsonb, dropped_attributes integer,
    dropped_events integer, dropped_links integer, event_count integer, link_count integer, service_name text, agent_name text,
    model text, provider text, operation_name text, tool_name text, input_tokens bigint, output_tokens bigint,
    cost_usd numeric, is_llm boolean, is_tool boolean)
), ins AS (
  INSERT INTO telemetry.spans (
    project_id, trace_id, span_id, start_time, parent_span_id, trace_state, name, kind, start_time_unix_nano, end_time_unix_nano,
    status_code, status_message, flags, resource_attributes, resource_dropped_attributes_count, resource_schema_url,
    scope_name, scope_version, scope_attributes, scope_dropped_attributes_count, scope_schema_url, attributes,
    dropped_attributes_count, dropped_events_count, dropped_links_count, event_count, link_count, service_name, agent_name,
    model, provider, operation_name, tool_name, input_tokens, output_tokens, cost_usd, is_llm, is_tool)
  SELECT project_id, decode(trace_id, 'hex'), decode(span_id, 'hex'), start_time, decode(parent_span_id, 'hex'), trace_state,
    name, kind, start_ns, end_ns, status_code, status_message, flags, resource_attributes, resource_dropped, resource_schema_url,
    scope_name, scope_version, scope_attributes, scope_dropped, scope_schema_url, attributes, dropped_attributes,
    dropped_events, dropped_links, event_count, link_count, service_name, agent_name, model, provider, operation_name, tool_name,
    input_tokens, output_tokens, cost_usd, is_llm, is_tool
  FROM input
  ORDER BY project_id, trace_id, span_id
  ON CONFLICT DO NOTHING
  RETURNING project_id, trace_id, span_id, start_time, parent_span_id, name, start_time_unix_nano, end_time_unix_nano,
    status_code, service_name, agent_name, model, input_tokens, output_tokens, cost_usd, is_llm, is_tool
), ev AS (
  INSERT INTO telemetry.span_events (project_id, trace_id, span_id, span_start_time, event_index, time_unix_nano, name, attributes, dropped_attributes_count)
  SELECT e.project_id, decode(e.trace_id, 'hex'), decode(e.span_id, 'hex'), e.span_start_time, e.idx, e.time_ns, e.name, e.attributes, e.dropped
  FROM json_to_recordset($2::json) AS e(project_id uuid, trace_id text, span_id text, span_start_time timestamptz, idx integer,
    time_ns bigint, name text, attributes jsonb, dropped integer)
  JOIN ins ON ins.project_id = e.project_id AND ins.trace_id = decode(e.trace_id, 'hex') AND ins.span_id = decode(e.span_id, 'hex')
    AND ins.start_time = e.span_start_time
  ON CONFLICT DO NOTHING
), ln AS (
  INSERT INTO telemetry.span_links (project_id, trace_id, span_id, span_start_time, link_index, linked_trace_id, linked_span_id, trace_state, attributes, dropped_attributes_count, flags)
  SELECT l.project_id, decode(l.trace_id, 'hex'), decode(l.span_id, 'hex'), l.span_start_time, l.idx, decode(l.linked_trace_id, 'hex'),
    decode(l.linked_span_id, 'hex'), l.trace_state, l.attributes, l.dropped, l.flags
  FROM json_to_recordset($3::json) AS l(project_id uuid, trace_id text, span_id text, span_start_time timestamptz, idx integer,
    linked_trace_id text, linked_span_id text, trace_state text, attributes jsonb, dropped integer, flags bigint)
  JOIN ins ON ins.project_id = l.project_id AND ins.trace_id = decode(l.trace_id, 'hex') AND ins.span_id = decode(l.span_id, 'hex')
    AND ins.start_time = l.span_start_time
  ON CONFLICT DO NOTHING
), agg AS (
  SELECT project_id, trace_id,
    min(start_time) AS start_time,
    max(start_time + ((end_time_unix_nano - start_time_unix_nano) / 1000) * interval '1 microsecond') AS end_time,
    min(start_time_unix_nano) AS start_ns, max(end_time_unix_nano) AS end_ns,
    (array_agg(name) FILTER (WHERE parent_span_id IS NULL))[1] AS root_name,
    (array_agg(span_id) FILTER (WHERE parent_span_id IS NULL))[1] AS root_span_id,
    coalesce((array_agg(service_name) FILTER (WHERE parent_span_id IS NULL AND service_name IS NOT NULL))[1],
             (array_agg(service_name) FILTER (WHERE service_name IS NOT NULL))[1]) AS service_name,
    coalesce((array_agg(agent_name) FILTER (WHERE parent_span_id IS NULL AND agent_name IS NOT NULL))[1],
             (array_agg(agent_name) FILTER (WHERE agent_name IS NOT NULL))[1]) AS agent_name,
    count(*)::integer AS span_count,
    (count(*) FILTER (WHERE status_code = 2))::integer AS error_count,
    (count(*) FILTER (WHERE is_llm))::integer AS llm_span_count,
    (count(*) FILTER (WHERE is_tool))::integer AS tool_span_count,
    coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
    coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(array_agg(DISTINCT model) FILTER (WHERE model IS NOT NULL), '{}') AS models,
    bool_or(parent_span_id IS NULL) AS has_root
  FROM ins GROUP BY project_id, trace_id
), tr AS (
  INSERT INTO telemetry.traces AS t (project_id, trace_id, start_time, end_time, start_time_unix_nano, end_time_unix_nano,
    root_name, root_span_id, service_name, agent_name, span_count, error_count, llm_span_count, tool_span_count,
    input_tokens, output_tokens, cost_usd, models)
  SELECT project_id, trace_id, start_time, end_time, start_ns, end_ns, root_name, root_span_id, service_name, agent_name,
    span_count, error_count, llm_span_count, tool_span_count, input_tokens, output_tokens, cost_usd, models
  FROM agg ORDER BY project_id, trace_id
  ON CONFLICT (project_id, trace_id) DO UPDATE SET
    start_time = least(t.start_time, excluded.start_time),
    end_time = greatest(t.end_time, excluded.end_time),
    start_time_unix_nano = least(t.start_time_unix_nano, excluded.start_time_unix_nano),
    end_time_unix_nano = greatest(t.end_time_unix_nano, excluded.end_time_unix_nano),
    root_name = coalesce(excluded.root_name, t.root_name),
    root_span_id = coalesce(excluded.root_span_id, t.root_span_id),
    service_name = CASE WHEN excluded.root_span_id IS NOT NULL THEN coalesce(excluded.service_name, t.service_name) ELSE coalesce(t.service_name, excluded.service_name) END,
    agent_name = CASE WHEN excluded.root_span_id IS NOT NULL THEN coalesce(excluded.agent_name, t.agent_name) ELSE coalesce(t.agent_name, excluded.agent_name) END,
    span_count = t.span_count + excluded.span_count,
    error_count = t.error_count + excluded.error_count,
    llm_span_count = t.llm_span_count + excluded.llm_span_count,
    tool_span_count = t.tool_span_count + excluded.tool_span_count,
    input_tokens = t.input_tokens + excluded.input_tokens,
    output_tokens = t.output_tokens + excluded.output_tokens,
    cost_usd = t.cost_usd + excluded.cost_usd,
    models = (SELECT coalesce(array_agg(DISTINCT m), '{}') FROM unnest(t.models || excluded.models) AS m),
    updated_at = now()
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::integer AS inserted, (SELECT count(*) FROM tr)::integer AS traces`;

/** Errors that mean "the database could not take it right now": the client should retry. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  if (/^(08|53|57|58|40)/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  const msg = (err as Error).message ?? '';
  return /Connection terminated|timeout|Client has encountered a connection error|not queryable|connection/i.test(msg);
}

/** Errors caused by the data of a request (invalid text, value out of range): retrying never helps. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('22') || code.startsWith('23');
}

export class IngestWriter {
  private pending: Item[] = [];
  private queuedSpans = 0;
  private queuedBytes = 0;
  private inFlight = 0;
  private closed = false;
  private dbDownSince = 0;
  private lastProbeAt = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly pool: pg.Pool, private readonly opts: WriterOptions) {}

  get depth() {
    return { spans: this.queuedSpans, bytes: this.queuedBytes, inFlightBatches: this.inFlight };
  }

  /** True while the last batch failed for a database reason (circuit open). */
  get databaseDown(): boolean {
    return this.dbDownSince > 0;
  }

  /**
   * Queue spans for the next group commit; resolves after they are committed. Refuses at once
   * (503 + Retry-After) when the queue is full, the writer is closing, or the database is down.
   */
  submit(spans: SpanRow[], events: EventRow[], links: LinkRow[], bytes: number): Promise<WriteResult> {
    if (spans.length === 0) return Promise.resolve({ inserted: 0, duplicates: 0 });
    if (this.closed) {
      this.opts.metrics.requestsRefused.inc({ reason: 'shutting_down' });
      return Promise.reject(new Unavailable('receiver is shutting down', 1));
    }
    if (this.dbDownSince > 0) {
      // Circuit open: let one request through per second as the probe; refuse the rest at once.
      const now = Date.now();
      if (now - this.lastProbeAt < 1000 || this.inFlight > 0) {
        this.opts.metrics.requestsRefused.inc({ reason: 'database_unavailable' });
        return Promise.reject(new Unavailable('database unavailable, retry later', 2));
      }
      this.lastProbeAt = now;
    }
    // A single request larger than the queue is admitted when the queue is empty (it is bounded by
    // the body limit); refusing it would make the client retry something that can never fit.
    const empty = this.queuedSpans === 0;
    if (!empty && (this.queuedSpans + spans.length > this.opts.maxQueueSpans || this.queuedBytes + bytes > this.opts.maxQueueBytes)) {
      this.opts.metrics.requestsRefused.inc({ reason: 'queue_full' });
      return Promise.reject(new Unavailable('ingest queue full, retry later', 1));
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.pending.push({ spans, events, links, bytes, resolve, reject });
      this.queuedSpans += spans.length;
      this.queuedBytes += bytes;
      this.updateGauges();
      this.pump();
    });
  }

  private updateGauges() {
    this.opts.metrics.queueSpans.set(this.queuedSpans);
    this.opts.metrics.queueBytes.set(this.queuedBytes);
  }

  private pump() {
    while (this.inFlight < this.opts.writers && this.pending.length > 0) {
      const batch: Item[] = [];
      let n = 0;
      while (this.pending.length > 0) {
        const next = this.pending[0] as Item;
        if (batch.length > 0 && n + next.spans.length > this.opts.maxBatchSpans) break;
        batch.push(this.pending.shift() as Item);
        n += next.spans.length;
      }
      this.inFlight++;
      void this.runBatch(batch).finally(() => {
        this.inFlight--;
        for (const it of batch) {
          this.queuedSpans -= it.spans.length;
          this.queuedBytes -= it.bytes;
        }
        this.updateGauges();
        if (this.pending.length > 0) this.pump();
        else if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async execute(items: Item[]): Promise<number> {
    const spans: SpanRow[] = [];
    const events: EventRow[] = [];
    const links: LinkRow[] = [];
    for (const it of items) {
      for (const s of it.spans) spans.push(s);
      for (const e of it.events) events.push(e);
      for (const l of it.links) links.push(l);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.pool.query<{ inserted: number }>(INSERT_BATCH_SQL, [JSON.stringify(spans), JSON.stringify(events), JSON.stringify(links)]);
        return r.rows[0]?.inserted ?? 0;
      } catch (err) {
        const code = (err as { code?: string }).code;
        // Deadlock / serialization failure between concurrent batches on the same traces: retry.
        if ((code === '40P01' || code === '40001') && attempt < 4) continue;
        throw err;
      }
    }
  }

  private async runBatch(batch: Item[]): Promise<void> {
    const spanCount = batch.reduce((a, it) => a + it.spans.length, 0);
    const t0 = performance.now();
    try {
      const inserted = await this.execute(batch);
      this.markUp();
      this.opts.metrics.commitDuration.observe((performance.now() - t0) / 1000);
      this.opts.metrics.batchSpans.observe(spanCount);
      this.opts.metrics.batchRequests.observe(batch.length);
      this.opts.metrics.spansAccepted.inc({ protocol: 'otlp' }, spanCount);
      if (spanCount > inserted) this.opts.metrics.spansDuplicate.inc(spanCount - inserted);
      // Duplicates across items of one batch are not attributed to a single request.
      for (const it of batch) it.resolve({ inserted: it.spans.length, duplicates: 0 });
    } catch (err) {
      if (isDataError(err) && batch.length > 1) {
        // One request's data poisoned the batch: commit the others, fail only the culprit.
        this.opts.metrics.batchFailures.inc({ reason: 'data_split' });
        for (const it of batch) await this.runBatch([it]);
        return;
      }
      this.failBatch(batch, err);
    }
  }

  private failBatch(batch: Item[], err: unknown) {
    if (isDataError(err)) {
      this.opts.metrics.batchFailures.inc({ reason: 'data' });
      this.opts.log.warn({ err: (err as Error).message, code: (err as { code?: string }).code }, 'request refused by Postgres as invalid data');
      for (const it of batch) it.reject(new BadRequest(`spans could not be stored: ${(err as Error).message}`));
      return;
    }
    const transient = isTransient(err);
    this.opts.metrics.batchFailures.inc({ reason: transient ? 'database_unavailable' : 'error' });
    if (transient) this.markDown(err);
    else this.opts.log.error({ err }, 'ingest batch failed');
    for (const it of batch) it.reject(new Unavailable(transient ? 'database unavailable, retry later' : 'spans could not be stored, retry later', transient ? 2 : 1));
  }

  private markDown(err: unknown) {
    if (this.dbDownSince === 0) {
      this.dbDownSince = Date.now();
      this.lastProbeAt = Date.now();
      this.opts.log.error({ err: (err as Error).message }, 'database unavailable: ingest answers 503 until a write succeeds');
    }
  }

  private markUp() {
    if (this.dbDownSince > 0) {
      this.opts.log.info({ down_ms: Date.now() - this.dbDownSince }, 'database available again: ingest resumed');
      this.dbDownSince = 0;
    }
  }

  /** Stop accepting, then wait (up to timeoutMs) until every queued request has its answer. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (this.pending.length === 0 && this.inFlight === 0) return;
    await Promise.race([
      new Promise<void>((r) => this.idleWaiters.push(r)),
      new Promise<void>((r) => setTimeout(r, timeoutMs).unref()),
    ]);
    for (const it of this.pending.splice(0)) it.reject(new Unavailable('receiver is shutting down', 1));
  }
}
