// One writer's dedicated Postgres session. A batch is one message — COPY its rows, then one statement —
// with the rows right behind it (CopyBatchQuery): one implicit transaction, one round trip.
//  - Normally every span is new: the spans, events and links are copied straight into their tables
//    and the trace summaries are upserted from a staging copy of each request's per-trace parts
//    (TRACE_PART_COLUMNS).
//  - A span already stored (a client's retry) makes that COPY fail with 23505 and roll back; the batch
//    is then written through the staging tables by INSERT … ON CONFLICT DO NOTHING, which keeps only
//    the new spans and their events and links.
// The staging tables are temp tables created once per session (ON COMMIT DELETE ROWS). A session
// whose connection fails is dropped with them and reopened by the next batch; a statement error rolls
// back and leaves it usable.
//
// Measured (one process, one connection, the benchmark's GenAI rows, variants taking turns batch by
// batch; ms per batch / Postgres CPU µs per span):
//   5,000 spans: JSON statement (json_to_recordset) 536 / 95, staging path 387 / 52, direct 357 / 47;
//   200 spans: 23.3 / 98, 18.0 / 69, 17.0 / 64;  20 spans: 6.1 / 229, 6.4 / 237, 5.9 / 207.
// So no JSON path for small batches. Earlier run, same method: BEGIN; COPY (pg-copy-streams);
// statement; COMMIT took 421 ms per 5,000 spans against 362 ms as one message (200: 30.0 / 29.1 ms),
// and under load its three extra round trips also wait behind request decoding in the event loop.
// temp_buffers 32MB (db/pool.ts sessionConfig): 5,000-span batches 1.09–1.14× faster (no spill).
// Trace parts (one row per trace of a request) instead of one summary row per span: Postgres CPU per
// span 29.3–29.8 → 27.0–27.1 µs at 2,800-span batches, 29.6–33.3 → 27.5–30.8 at 600 (same method).
import pg from 'pg';
import {
  COPY_EVENTS_DIRECT_SQL, COPY_EVENTS_SQL, COPY_LINKS_DIRECT_SQL, COPY_LINKS_SQL, COPY_SPANS_DIRECT_SQL, COPY_SPANS_SQL, COPY_TRACE_PARTS_SQL,
  CREATE_STAGING_SQL, INSERT_FROM_STAGING_SQL, SUMMARIES_FROM_PARTS_SQL,
} from './batch-sql.js';
import { CopyBatchQuery } from './copy-batch-query.js';

/** One batch: the COPY text of its requests' rows, per table (one piece per request that has rows). */
export interface BatchRows { spans: Buffer[]; traceParts: Buffer[]; events: Buffer[]; links: Buffer[] }

// The statement texts a batch can need (events and links are often absent).
const STATEMENTS = new Map<string, string>();
function batchStatement(direct: boolean, events: boolean, links: boolean): string {
  const key = `${direct}${events}${links}`;
  let text = STATEMENTS.get(key);
  if (!text) {
    text = direct
      ? `${COPY_SPANS_DIRECT_SQL};\n${events ? `${COPY_EVENTS_DIRECT_SQL};\n` : ''}${links ? `${COPY_LINKS_DIRECT_SQL};\n` : ''}${COPY_TRACE_PARTS_SQL};\n${SUMMARIES_FROM_PARTS_SQL}`
      : `${COPY_SPANS_SQL};\n${events ? `${COPY_EVENTS_SQL};\n` : ''}${links ? `${COPY_LINKS_SQL};\n` : ''}${INSERT_FROM_STAGING_SQL}`;
    STATEMENTS.set(key, text);
  }
  return text;
}

const UNIQUE_VIOLATION = '23505';

export class WriterSession {
  private client: pg.Client | undefined;
  private closed = false;

  constructor(private readonly config: pg.ClientConfig) {}

  /** Insert one batch in its own transaction; resolves with the number of new spans once committed. */
  async write(rows: BatchRows): Promise<number> {
    try {
      return await this.run(rows, true);
    } catch (err) {
      // A span of the batch is already stored (a client's retry): the whole COPY rolled back; take the
      // staging path, which skips stored spans (ON CONFLICT DO NOTHING) and their events and links.
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    }
    return this.run(rows, false);
  }

  private async run(rows: BatchRows, direct: boolean): Promise<number> {
    const client = this.client ?? (await this.open());
    const copies = [rows.spans];
    if (rows.events.length) copies.push(rows.events);
    if (rows.links.length) copies.push(rows.links);
    if (direct) copies.push(rows.traceParts);
    const query = client.query(new CopyBatchQuery(batchStatement(direct, rows.events.length > 0, rows.links.length > 0), copies));
    const [inserted] = await query.result;
    return Number(inserted ?? 0);
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    // The connection can die at any time (Postgres restarted): forget it, the next batch opens a new one.
    client.on('error', () => this.drop(client));
    try {
      await client.connect();
      await client.query(CREATE_STAGING_SQL);
      if (this.closed) throw new Error('Connection terminated: the writer is closing');
    } catch (err) {
      this.drop(client);
      throw err;
    }
    this.client = client;
    return client;
  }

  private drop(client: pg.Client) {
    if (this.client === client) this.client = undefined;
    void client.end().catch(() => undefined);
  }

  /** End the session (a batch still running fails, so it is never acknowledged). */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
