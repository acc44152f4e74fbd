// SPEC §5.1 "COPY or multi-row insert — whichever the benchmark shows faster": the shipped writer
// (WriterSession: COPY straight into the tables + per-trace summary parts, one message per batch)
// against the JSON-document statement (INSERT_BATCH_SQL, which tests seed with) and COPY-based
// variants of it, for the same rows, batch sizes and table state, at the SQL level (no HTTP).
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { INSERT_BATCH_SQL } from '../receiver/dist/ingest/writer.js';
import { decodeProtobuf } from '../receiver/dist/ingest/otlp-wire.js';
import { normalizeRequest } from '../receiver/dist/ingest/normalize.js';
import { PriceBook } from '../receiver/dist/ingest/prices.js';
import { buildTemplateBatch, newTraceId } from './lib/load.mjs';
import { createPool, sessionConfig } from '../receiver/dist/db/pool.js';
import { WriterSession } from '../receiver/dist/ingest/writer-session.js';
import { encodeRows } from '../receiver/dist/ingest/copy-rows.js';
import { migrate, receiverDefaults, resetTelemetry, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter, onCleanup } from './lib/proc.mjs';
import { fmtInt, fmtMs, median, progress, table, writeResult } from './lib/report.mjs';
import { writerVariants } from './lib/writer-variants.mjs';

const TOTAL_ROWS = Number(process.env.BENCH_WRITER_SQL_ROWS ?? 30_000);
const TITLE = 'Writer statement: JSON document vs COPY';

await benchMain(async () => {
  const derived = writerVariants(INSERT_BATCH_SQL);
  if (derived.reason) {
    writeResult('writer-sql', { title: TITLE, figures: [], markdown: `Skipped: ${derived.reason}.` });
    return;
  }
  const { variants: statementVariants, setupSql } = derived;
  const shipped = 'writer_session';
  const server = await startPostgres('writersql');
  const url = await server.createDatabase('w');
  await migrate(url);
  // A connection from the receiver's own pool factory: the same session settings (work_mem …) as its writer.
  const pool = createPool(url, { max: 1 });
  onCleanup(() => pool.end());
  const client = await pool.connect();
  onCleanup(() => client.release());
  await client.query(setupSql);

  const template = await buildTemplateBatch(Number(process.env.BENCH_BATCH_SPANS ?? 200));
  const prices = await new PriceBook(client).forProject(DEFAULT_PROJECT_ID);
  const decoded = decodeProtobuf(Buffer.from(ProtobufTraceSerializer.serializeRequest(template)));
  const rows = normalizeRequest(decoded, { projectId: DEFAULT_PROJECT_ID, samplingRate: 1, prices }).spans;
  const fresh = (n) => {
    const out = [];
    while (out.length < n) {
      const ids = new Map();
      for (const r of rows) {
        if (!ids.has(r.trace_id)) ids.set(r.trace_id, newTraceId());
        out.push({ ...r, trace_id: ids.get(r.trace_id) });
      }
    }
    return out.slice(0, n);
  };

  // The shipped writer: its own session (as writer.ts opens it), the rows COPY-encoded as ingest queues them.
  const session = new WriterSession(sessionConfig(pool, 'writer'));
  onCleanup(() => session.close());
  const variants = {
    [shipped]: async (_client, batch) => {
      const t0 = performance.now();
      const r = encodeRows(batch, [], []);
      const encodeMs = performance.now() - t0;
      return { encodeMs, inserted: await session.write({ spans: [r.spans], traceParts: [r.traceParts], events: [], links: [] }) };
    },
    ...statementVariants,
  };

  const writerBatch = receiverDefaults().ingestBatchMaxSpans;
  const meter = cpuMeter({ postmasterPid: server.postmasterPid });
  const names = Object.keys(variants);
  const results = [];
  for (const batchRows of [...new Set([writerBatch, template.length])]) {
    await resetTelemetry(client);
    // Small batches are about per-statement overhead: a third of the rows is enough to see it.
    const batches = Math.max(4, Math.round((batchRows === writerBatch ? TOTAL_ROWS : TOTAL_ROWS / 3) / batchRows));
    const acc = Object.fromEntries(names.map((v) => [v, { ms: [], encodeMs: 0, pgCpu: 0, clientCpu: 0, rows: 0 }]));
    // Rotate the order batch by batch so every variant sees the same table size and machine noise.
    for (let i = 0; i < batches; i++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length];
        const batch = fresh(batchRows);
        const b = meter.begin();
        const t0 = performance.now();
        const r = await variants[name](client, batch);
        const ms = performance.now() - t0;
        const cpu = meter.end(b, ms / 1000);
        if (r.inserted !== batchRows) throw new Error(`${name} inserted ${r.inserted} of ${batchRows}`);
        const a = acc[name];
        a.ms.push(ms);
        a.encodeMs += r.encodeMs;
        a.rows += batchRows;
        a.pgCpu += (cpu.pgCpu ?? NaN) * (ms / 1000);
        a.clientCpu += cpu.clientCpu * (ms / 1000);
      }
    }
    for (const [name, a] of Object.entries(acc)) {
      const seconds = a.ms.reduce((x, y) => x + y, 0) / 1000;
      results.push({
        variant: name, batchRows, batches, rows: a.rows, spansPerS: a.rows / seconds, p50Ms: median(a.ms),
        encodeMsPerBatch: a.encodeMs / batches, pgCpuUsPerSpan: (a.pgCpu / a.rows) * 1e6, clientCpuUsPerSpan: (a.clientCpu / a.rows) * 1e6,
      });
    }
    progress(`${batchRows}-span batches: ${results.filter((r) => r.batchRows === batchRows).map((r) => `${r.variant} ${fmtInt(r.spansPerS)}`).join(', ')} spans/s`);
  }

  // Where the current statement spends its time for one full batch (the table already holds rows).
  const plan = (await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${INSERT_BATCH_SQL}`, [JSON.stringify(fresh(writerBatch)), '[]', '[]']))
    .rows.map((r) => r['QUERY PLAN']).join('\n');
  const workMem = (await client.query('SHOW work_mem')).rows[0].work_mem;

  const figures = [...new Set(results.map((r) => r.batchRows))].map((batchRows) => {
    const group = results.filter((r) => r.batchRows === batchRows);
    const current = group.find((r) => r.variant === shipped);
    const fastest = group.reduce((x, y) => (y.spansPerS > x.spansPerS ? y : x));
    return {
      label: `Writer statement alone, ${fmtInt(batchRows)}-span batches: fastest variant`, value: `${fastest.variant}: ${fmtInt(fastest.spansPerS)} spans/s`,
      bound: `shipped (${shipped}) ${fmtInt(current.spansPerS)} spans/s`, ratio: `${(fastest.spansPerS / current.spansPerS).toFixed(2)}×`, target: 'use the faster',
      met: fastest === current ? true : undefined,
    };
  });
  const us = (v) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
  const markdown = [
    `Same rows (the receiver's own \`normalizeRequest\` output for the benchmark's GenAI batch, fresh trace ids per batch), one connection, one transaction per batch, into a fresh migrated database; the variants take turns batch by batch. Times include the client-side encoding (JSON.stringify or COPY text), as the writer would pay it.`,
    '',
    '- `writer_session` (**shipped**): `receiver/src/ingest/writer-session.ts` as the receiver runs it: the rows COPY-encoded (`copy-rows.ts`), one message per batch = `COPY` straight into `telemetry.spans` + `COPY` of one summary part per trace and request + one statement folding the parts into `telemetry.traces` (on 23505, a re-sent span, it retries through staging tables with ON CONFLICT); its own connection.',
    '- `json_to_recordset`: `INSERT_BATCH_SQL` (`receiver/src/ingest/batch-sql.ts`; tests seed with it): spans ON CONFLICT DO NOTHING … RETURNING, events, links, trace-summary upsert; the spans as one JSON document.',
    '- `jsonb_to_recordset`: the same statement with the document typed `jsonb` (whole document parsed and re-encoded first).',
    '- `copy_temp_then_insert_select`: `COPY` into a temp table (ON COMMIT DELETE ROWS), then the same statement with its `input` CTE reading that table.',
    '- `copy_spans_direct_plus_summaries`: `COPY` straight into `telemetry.spans` (no ON CONFLICT: a re-sent span makes it fail with 23505, so a writer would retry that batch with the statement above) + the statement\'s own trace-summary CTEs over a temp copy of the rows.',
    '',
    table(['variant', 'batch', 'batches', 'spans/s', 'batch p50', 'encode per batch', 'Postgres CPU µs/span', 'client CPU µs/span'], results.map((r) => [
      `\`${r.variant}\`${r.variant === shipped ? ' (shipped)' : ''}`, fmtInt(r.batchRows), r.batches, fmtInt(r.spansPerS), fmtMs(r.p50Ms), fmtMs(r.encodeMsPerBatch), us(r.pgCpuUsPerSpan), us(r.clientCpuUsPerSpan),
    ])),
    '',
    `EXPLAIN (ANALYZE, BUFFERS) of \`INSERT_BATCH_SQL\` (the JSON statement) for one ${fmtInt(writerBatch)}-span batch (work_mem ${workMem}; "external merge" and "temp read/written" mean the document's tuplestore or the sort spilled to disk):`,
    '',
    '<details><summary>plan</summary>',
    '',
    '```',
    plan,
    '```',
    '',
    '</details>',
  ].join('\n');
  writeResult('writer-sql', { title: TITLE, postgres: { version: server.version, embedded: server.embedded }, figures, markdown, raw: { results, plan } });
});
