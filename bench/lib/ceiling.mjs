// The ceiling: raw `COPY` of the rows the receiver stored, into the same table of a fresh database.
import { newTraceId } from './load.mjs';
import { connect, copyIn, copyOut, resetTelemetry, spanColumns } from './pg.mjs';
import { cpuMeter } from './proc.mjs';

/**
 * The receiver's own rows for one request, as COPY text: what it stored for the template batch
 * (sent once into an emptied database). `traceIds` are the template's, to be replaced per copy.
 */
export async function capturedRows(client, traceIds) {
  const cols = await spanColumns(client);
  const text = await copyOut(client, `COPY (SELECT ${cols.join(', ')} FROM telemetry.spans) TO STDOUT`);
  const rows = text.split('\n').filter(Boolean).length;
  return { cols, text, rows, traceIds: [...traceIds] };
}

/** The captured rows under fresh trace ids (primary keys stay unique across copies). */
export function rowsWithFreshIds(captured) {
  const map = new Map(captured.traceIds.map((id) => [id, newTraceId()]));
  captured.re ??= new RegExp(captured.traceIds.join('|'), 'g');
  return captured.text.replace(captured.re, (m) => map.get(m));
}

/**
 * COPY `totalRows` rows in chunks of `chunkRows` (one statement and transaction each) over
 * `streams` connections. Chunks are built before the clock starts, so only Postgres is timed.
 */
export async function copyThroughput({ url, captured, totalRows, chunkRows, streams, postmasterPid }) {
  const clients = [];
  for (let i = 0; i < streams; i++) clients.push(await connect(url));
  await resetTelemetry(clients[0]);
  const copies = Math.max(1, Math.round(chunkRows / captured.rows));
  const chunks = [];
  for (let n = 0; n < totalRows; n += copies * captured.rows) {
    chunks.push(Buffer.from(Array.from({ length: copies }, () => rowsWithFreshIds(captured)).join('')));
  }
  const sql = `COPY telemetry.spans (${captured.cols.join(', ')}) FROM STDIN`;
  const meter = cpuMeter({ postmasterPid });
  const b = meter.begin();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(clients.map(async (c) => {
    while (next < chunks.length) await copyIn(c, sql, [chunks[next++]]);
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = meter.end(b, elapsed);
  const rows = chunks.length * copies * captured.rows;
  const stored = Number((await clients[0].query('SELECT count(*) AS n FROM telemetry.spans')).rows[0].n);
  if (stored !== rows) throw new Error(`COPY ceiling stored ${stored} rows, expected ${rows}`);
  for (const c of clients) await c.end().catch(() => undefined);
  return {
    streams, chunkRows: copies * captured.rows, rows, elapsed, spansPerS: rows / elapsed,
    pgCpu: cpu.pgCpu, clientCpu: cpu.clientCpu, otherCpu: cpu.otherCpu,
    mbPerS: chunks.reduce((a, b) => a + b.length, 0) / elapsed / 1024 / 1024,
  };
}

/** Commit latency of one request's rows by raw COPY, one after another: the floor for ack latency. */
export async function copyLatency({ url, captured, samples }) {
  const client = await connect(url);
  await resetTelemetry(client);
  const sql = `COPY telemetry.spans (${captured.cols.join(', ')}) FROM STDIN`;
  const ms = [];
  for (let i = 0; i < samples; i++) {
    const chunk = Buffer.from(rowsWithFreshIds(captured));
    const t0 = performance.now();
    await copyIn(client, sql, [chunk]);
    ms.push(performance.now() - t0);
  }
  await client.end().catch(() => undefined);
  return ms;
}
