// Durable group-commit writer. Concurrent requests share one batch (its own transaction, on one of the
// writers' dedicated sessions); each request is acknowledged only when that batch has committed.
// Rows are COPY-encoded when a request is queued, so the queue holds compact bytes, bounded by size.
import type pg from 'pg';
import { sessionConfig } from '../db/pool.js';
import { BadRequest, Unavailable } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { EventRow, LinkRow, SpanRow } from './normalize.js';
import { encodeRows, type CopyRows } from './copy-rows.js';
import { WriterSession, type BatchRows } from './writer-session.js';

export { INSERT_BATCH_SQL } from './batch-sql.js';

export interface WriteResult { inserted: number; duplicates: number }

interface Item {
  rows: CopyRows;
  resolve: (r: WriteResult) => void; reject: (e: Error) => void;
}

export interface WriterOptions {
  maxQueueSpans: number; maxQueueBytes: number; maxBatchSpans: number; writers: number;
  log: Logger; metrics: Metrics;
}

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
  /** Sessions not running a batch; one per writer, each opened on first use. */
  private readonly idle: WriterSession[] = [];
  private readonly sessions: WriterSession[] = [];

  constructor(pool: pg.Pool, private readonly opts: WriterOptions) {
    const config = sessionConfig(pool, 'writer');
    for (let i = 0; i < opts.writers; i++) this.sessions.push(new WriterSession(config));
    this.idle.push(...this.sessions);
  }

  get depth() {
    return { spans: this.queuedSpans, bytes: this.queuedBytes, inFlightBatches: this.inFlight };
  }

  /** True while the last batch failed for a database reason (circuit open). */
  /** Throws the queue-full 503 when the queue is at its bound, so a request can be refused before
   *  its body is read and decoded (under overload, refused requests then cost no memory). */
  assertRoom(): void {
    if (this.queuedSpans >= this.opts.maxQueueSpans || this.queuedBytes >= this.opts.maxQueueBytes) {
      this.opts.metrics.requestsRefused.inc({ reason: 'queue_full' });
      throw new Unavailable('ingest queue full, retry later', 1);
    }
  }

  get databaseDown(): boolean {
    return this.dbDownSince > 0;
  }

  /**
   * Queue spans for the next group commit; resolves after they are committed. Refuses at once
   * (503 + Retry-After) when the queue is full, the writer is closing, or the database is down.
   * The queue's byte bound counts the rows' COPY text, which is all it keeps of them.
   */
  submit(spans: SpanRow[], events: EventRow[], links: LinkRow[]): Promise<WriteResult> {
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
    if (!empty && this.queuedSpans + spans.length > this.opts.maxQueueSpans) return this.refuseFull();
    const rows = encodeRows(spans, events, links);
    if (!empty && this.queuedBytes + rows.bytes > this.opts.maxQueueBytes) return this.refuseFull();
    return new Promise<WriteResult>((resolve, reject) => {
      this.pending.push({ rows, resolve, reject });
      this.queuedSpans += rows.spanCount;
      this.queuedBytes += rows.bytes;
      this.updateGauges();
      this.pump();
    });
  }

  private refuseFull(): Promise<never> {
    this.opts.metrics.requestsRefused.inc({ reason: 'queue_full' });
    return Promise.reject(new Unavailable('ingest queue full, retry later', 1));
  }

  private updateGauges() {
    this.opts.metrics.queueSpans.set(this.queuedSpans);
    this.opts.metrics.queueBytes.set(this.queuedBytes);
  }

  private pump() {
    while (this.idle.length > 0 && this.pending.length > 0) {
      const session = this.idle.pop() as WriterSession;
      const batch: Item[] = [];
      let n = 0;
      while (this.pending.length > 0) {
        const next = this.pending[0] as Item;
        if (batch.length > 0 && n + next.rows.spanCount > this.opts.maxBatchSpans) break;
        batch.push(this.pending.shift() as Item);
        n += next.rows.spanCount;
      }
      this.inFlight++;
      void this.runBatch(session, batch).finally(() => {
        this.inFlight--;
        this.idle.push(session);
        for (const it of batch) {
          this.queuedSpans -= it.rows.spanCount;
          this.queuedBytes -= it.rows.bytes;
        }
        this.updateGauges();
        if (this.pending.length > 0) this.pump();
        else if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async execute(session: WriterSession, items: Item[]): Promise<number> {
    const rows: BatchRows = { spans: [], traceParts: [], events: [], links: [] };
    for (const { rows: r } of items) {
      rows.spans.push(r.spans);
      rows.traceParts.push(r.traceParts);
      if (r.events) rows.events.push(r.events);
      if (r.links) rows.links.push(r.links);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await session.write(rows);
      } catch (err) {
        const code = (err as { code?: string }).code;
        // Deadlock / serialization failure between concurrent batches on the same traces: retry.
        if ((code === '40P01' || code === '40001') && attempt < 4) continue;
        throw err;
      }
    }
  }

  private async runBatch(session: WriterSession, batch: Item[]): Promise<void> {
    const spanCount = batch.reduce((a, it) => a + it.rows.spanCount, 0);
    const t0 = performance.now();
    try {
      const inserted = await this.execute(session, batch);
      this.markUp();
      this.opts.metrics.commitDuration.observe((performance.now() - t0) / 1000);
      this.opts.metrics.batchSpans.observe(spanCount);
      this.opts.metrics.batchRequests.observe(batch.length);
      this.opts.metrics.spansAccepted.inc({ protocol: 'otlp' }, spanCount);
      if (spanCount > inserted) this.opts.metrics.spansDuplicate.inc(spanCount - inserted);
      // Duplicates across items of one batch are not attributed to a single request.
      for (const it of batch) it.resolve({ inserted: it.rows.spanCount, duplicates: 0 });
    } catch (err) {
      if (isDataError(err) && batch.length > 1) {
        // One request's data poisoned the batch: commit the others, fail only the culprit.
        this.opts.metrics.batchFailures.inc({ reason: 'data_split' });
        for (const it of batch) await this.runBatch(session, [it]);
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

  /** Stop accepting, then wait (up to timeoutMs) until every queued request has its answer; end the sessions. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (this.pending.length > 0 || this.inFlight > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => setTimeout(r, timeoutMs).unref()),
      ]);
      for (const it of this.pending.splice(0)) it.reject(new Unavailable('receiver is shutting down', 1));
    }
    // A batch still running now fails with its session (503, never a 200 for an uncommitted batch).
    await Promise.race([
      Promise.allSettled(this.sessions.map((s) => s.close())),
      new Promise<void>((r) => setTimeout(r, 1000).unref()),
    ]);
  }
}
