// SPEC §15: trace-by-id and trace-list latency at 1M and 10M spans (BENCH_QUERY_SPANS, a list of sizes:
// measured at 1M, then the same database grown to 10M and measured again), through the real receiver
// over HTTP, each against the bare SQL the API runs (the floor, same run).
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApiKey, DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { MAX_TRACE_SPANS } from '../receiver/dist/api/traces.js';
import { containsPattern } from '../receiver/dist/api/params.js';
import { getTrace, listTraces, traceWithSpans } from '../receiver/dist/query/traces.js';
import { eventsOf, linksOf, spansOfTrace } from '../receiver/dist/query/spans.js';
import { connect, migrate, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter, sleep } from './lib/proc.mjs';
import { spawnReceiver } from './lib/receiver.mjs';
import { AGENTS, loadTraces, MODELS, RARE_MODEL } from './lib/query-data.mjs';
import { explain, httpClient, interleaved, runStatements, sqlRecorder, stats } from './lib/query-measure.mjs';
import { fmtInt, fmtMB, fmtMs, fmtPct, OUT, progress, table, writeResult } from './lib/report.mjs';

const posInt = (name, dflt) => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
/** The data set sizes, ascending: each step adds spans to the previous one's database. */
const steps = (process.env.BENCH_QUERY_SPANS ?? '1000000,10000000').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
if (steps.length === 0) throw new Error('BENCH_QUERY_SPANS: a comma-separated list of span counts, e.g. 1000000,10000000');
const opts = {
  steps,
  days: posInt('BENCH_QUERY_DAYS', 30),
  requests: posInt('BENCH_QUERY_REQUESTS', 500),
  warmup: posInt('BENCH_QUERY_WARMUP', 50),
  loadStreams: posInt('BENCH_QUERY_LOAD_STREAMS', 2),
  deepPages: 20,
  pageSize: 50,
  // Probes of the other filters: fewer requests, and at most this long each (some scan a lot).
  probeRequests: posInt('BENCH_QUERY_PROBE_REQUESTS', 40),
  probeSeconds: posInt('BENCH_QUERY_PROBE_SECONDS', 5),
};
const BY_ID_TARGET_MS = 10;
const IDLE_CPU_SECONDS = 4;
const LIST_TARGET_MS = 20;
const P = DEFAULT_PROJECT_ID;
const titleOf = (n) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : fmtInt(n));

const hexOf = (b) => b.toString('hex');
const quiet = (client) => client.on('error', () => undefined);
const fmtKB = (b) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KB` : 'n/a');
/** One decimal below 100 ms, so a p95 of 19.6 ms does not read as "20 ms" next to a < 20 ms target. */
const ms1 = (n) => (Number.isFinite(n) ? `${n < 100 ? n.toFixed(1) : Math.round(n)} ms` : 'n/a');
const fmtS = (s) => `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(1)}×` : 'n/a');
const load3 = (l) => l.map((x) => x.toFixed(2)).join(' / ');
/** Statements for the JSON file: bytea parameters as hex. */
const printable = (statements) => statements?.map((s) => ({ text: s.text, values: s.values.map((v) => (Buffer.isBuffer(v) ? `\\x${hexOf(v)}` : v)) }));

async function sizes(client) {
  const r = await client.query(`
    SELECT pg_database_size(current_database()) AS db,
      (SELECT sum(pg_table_size(relid)) FROM pg_partition_tree('telemetry.spans')) AS spans_table,
      (SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree('telemetry.spans')) AS spans_indexes,
      pg_table_size('telemetry.traces') AS traces_table, pg_indexes_size('telemetry.traces') AS traces_indexes,
      (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('telemetry.span_events')) AS events,
      (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('telemetry.span_links')) AS links`);
  const idx = await client.query(`
    SELECT i.tablename AS table, i.indexname AS index,
      coalesce((SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree(format('%I.%I', i.schemaname, i.indexname)::regclass)),
               pg_relation_size(format('%I.%I', i.schemaname, i.indexname)::regclass)) AS bytes
    FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname AND c.relnamespace = 'telemetry'::regnamespace
    WHERE i.schemaname = 'telemetry' AND i.tablename IN ('spans', 'traces') AND c.relkind IN ('I', 'i')
    ORDER BY 1, 2`);
  const parts = await client.query(`
    SELECT c.relname AS partition, c.reltuples::bigint AS rows, pg_total_relation_size(c.oid) AS bytes
    FROM pg_partition_tree('telemetry.spans') t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf ORDER BY 1`);
  const num = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
  return { ...num(r.rows[0]), indexes: idx.rows.map((x) => ({ ...x, bytes: Number(x.bytes) })), partitions: parts.rows.map((x) => ({ partition: x.partition, rows: Number(x.rows), bytes: Number(x.bytes) })) };
}

/** What a plan scans, in one line: "Index Scan using traces_pkey on traces; …". */
function scanSummary(plan) {
  const uniq = [...new Set(plan.scans.map((s) => `${s.node}${s.index ? ` using \`${s.index}\`` : ''} on \`${s.relation}\``))];
  const seq = plan.scans.some((s) => s.node === 'Seq Scan');
  return `${uniq.join('; ') || 'no scan node'}${plan.removed ? ` (${plan.removed} partition subplans pruned at run time)` : ''}${seq ? ' — **sequential scan**' : ''}`;
}

await benchMain(async () => {
  const server = await startPostgres('query');
  progress(`Postgres ${server.version} (${server.embedded ? 'embedded' : 'DATABASE_URL'}); ${opts.steps.map(fmtInt).join(' then ')} spans over ${opts.days} days`);
  const url = await server.createDatabase('q');
  await migrate(url);
  // A connection ended by cleanup (DROP DATABASE … WITH (FORCE), server stop) must not crash the process: errors surface in queries.
  const db = quiet(await connect(url));
  if (server.embedded) {
    // The bench's own server: no checkpoint every 1 GB of WAL during the load (it halves the load rate at 10M).
    await db.query("ALTER SYSTEM SET max_wal_size = '16GB'");
    await db.query("ALTER SYSTEM SET checkpoint_timeout = '30min'");
    await db.query('SELECT pg_reload_conf()');
  }
  const done = [];
  let loaded = { traces: 0, spans: 0, loadS: 0 };
  for (const [i, spans] of opts.steps.entries()) {
    const r = await step({ server, url, db, spans, loaded, seed: `strathon-bench-${i}` });
    loaded = r.raw.load;
    done.push(r);
  }
  const last = done[done.length - 1];
  writeResult('query', {
    title: `Query latency at ${done.map((r) => r.title).join(' and ')} spans`, postgres: { version: server.version, embedded: server.embedded },
    figures: done.flatMap((r) => r.figures),
    markdown: done.length === 1 ? last.markdown : done.map((r) => `### ${r.title} spans\n\n${r.markdown}`).join('\n\n'),
    raw: { steps: done.map((r) => r.raw) },
  });
  progress('wrote bench/out/query.json');
});

/** Grow the data set to `spans` (from `loaded`), VACUUM ANALYZE, measure through a fresh receiver; the step's figures and report. */
async function step({ server, url, db, spans, loaded, seed }) {
  const loadAvgStart = os.loadavg();
  const TITLE_SPANS = titleOf(spans);
  // 1. The data set (the spans this step adds, spread over the same days among the earlier ones, with
  // their own seed), then VACUUM ANALYZE (statistics and visibility map, as autovacuum would leave them).
  let lastReport = 0;
  const added = await loadTraces({
    url, spans: spans - loaded.spans, days: opts.days, streams: opts.loadStreams, seed,
    onChunk: (done, total, inserted) => {
      if (done === total || done - lastReport >= total / 10) {
        lastReport = done;
        progress(`loaded ${fmtInt(done)} / ${fmtInt(total)} traces (${fmtInt(inserted)} spans)`);
      }
    },
  });
  progress(`load: ${fmtInt(added.spans)} spans in ${fmtS(added.loadS)} (${fmtInt(added.spans / added.loadS)} spans/s)`);
  // The data set so far; loadS and the rate are this step's.
  const load = { ...added, traces: loaded.traces + added.traces, spans: loaded.spans + added.spans, addedSpans: added.spans };
  let t0 = performance.now();
  await db.query('VACUUM ANALYZE telemetry.spans, telemetry.span_events, telemetry.span_links, telemetry.traces');
  const vacuumS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await db.query('CHECKPOINT');
  const checkpointS = (performance.now() - t0) / 1000;
  const size = await sizes(db);
  progress(`VACUUM ANALYZE ${fmtS(vacuumS)}, CHECKPOINT ${fmtS(checkpointS)}; database ${fmtMB(size.db)}`);
  const counts = (await db.query(`
    SELECT count(*)::int AS traces, count(*) FILTER (WHERE error_count > 0)::int AS errors,
      (SELECT count(*)::int FROM telemetry.span_events) AS events, (SELECT count(*)::int FROM telemetry.span_links) AS links,
      percentile_cont(0.99) WITHIN GROUP (ORDER BY cost_usd) AS cost_p99
    FROM telemetry.traces`)).rows[0];
  const share = async (where, params = []) => Number((await db.query(`SELECT count(*) AS n FROM telemetry.traces WHERE ${where}`, params)).rows[0].n) / counts.traces;

  // 2. The receiver, a traces:read key, and the exact SQL its query functions send.
  const { key } = await createApiKey(db, { projectId: P, name: `bench-query-${TITLE_SPANS}`, scopes: ['traces:read'] });
  const logPath = path.join(OUT, `query-receiver-${TITLE_SPANS}.log`);
  rmSync(logPath, { force: true });
  const receiver = await spawnReceiver({ env: { DATABASE_URL: url }, logPath });
  progress(`receiver ready in ${fmtMs(receiver.readyMs)}`);
  const get = httpClient(receiver.url, key);
  const rec = sqlRecorder(url);
  const floorDb = quiet(await connect(url));
  const meter = cpuMeter({ receiverPid: receiver.pid, postmasterPid: server.postmasterPid });
  const loadAvgMeasureStart = os.loadavg();
  // The receiver's CPU while idle (its background workers poll Postgres): taken out of CPU per request.
  const idleB = meter.begin();
  await sleep(IDLE_CPU_SECONDS * 1000);
  const idleCpu = meter.end(idleB, IDLE_CPU_SECONDS).receiverCpu ?? 0;

  // Random existing traces: one set for HTTP, a disjoint one for the SQL floor. The statements of
  // every trace are captured beforehand for both sets alike (so both had their pages read once).
  const need = opts.warmup + opts.requests;
  const ids = (await db.query('SELECT encode(trace_id, \'hex\') AS id FROM telemetry.traces ORDER BY random() LIMIT $1', [2 * need])).rows.map((r) => r.id);
  if (ids.length < 2 * need) throw new Error(`only ${ids.length} traces, need ${2 * need}`);
  const byIdStatements = async (id) => {
    const g = await rec.capture((d) => getTrace(d, P, id));
    const t = g.result;
    if (!t) throw new Error(`trace ${id} not found through getTrace`);
    const w = { traceIdHex: hexOf(t.trace_id), startText: t.cursor_time, endText: t.end_time_text };
    const s = await rec.capture((d) => spansOfTrace(d, P, w, MAX_TRACE_SPANS + 1));
    const keysOf = (pred) => s.result.filter(pred).map((r) => ({ traceIdHex: hexOf(r.trace_id), spanIdHex: hexOf(r.span_id), startText: r.cursor_time }));
    const e = await rec.capture((d) => eventsOf(d, P, keysOf((r) => r.event_count > 0)));
    const l = await rec.capture((d) => linksOf(d, P, keysOf((r) => r.link_count > 0)));
    // The one statement GET /v1/traces/{id} sends (a named prepared statement, as the receiver runs it).
    const oneSql = [];
    const recordingPool = { query: (q) => { oneSql.push({ name: q.name, text: q.text, values: q.values }); return floorDb.query(q); } };
    const one = await traceWithSpans(rec.db, recordingPool, P, id, MAX_TRACE_SPANS + 1);
    if (!one || one.spans.length !== s.result.length) throw new Error(`trace ${id}: traceWithSpans differs from getTrace + spansOfTrace`);
    return { id, window: w, spans: s.result.length, oneSql, traceSql: g.statements, spansSql: s.statements, detailSql: [...e.statements, ...l.statements] };
  };
  t0 = performance.now();
  const prepared = [];
  for (const id of ids) prepared.push(await byIdStatements(id));
  const httpIds = prepared.slice(0, need);
  const sqlIds = prepared.slice(need);
  progress(`captured the by-id statements of ${fmtInt(ids.length)} traces in ${fmtS((performance.now() - t0) / 1000)}`);

  const check = (r, what) => {
    if (r.status !== 200) throw new Error(`${what}: HTTP ${r.status} ${r.body.toString('utf8').slice(0, 300)}`);
    return r;
  };
  const results = {};

  // 3a. Trace by id.
  const byIdPart = { trace: [], spans: [] };
  let byIdBytes = 0;
  const me = async () => check(await get('/v1/me'), 'GET /v1/me');
  results.byId = await interleaved({
    warmup: opts.warmup, n: opts.requests, meter, extra: me,
    http: async (i, warm) => {
      const p = httpIds[warm ? i : opts.warmup + i];
      const r = check(await get(`/v1/traces/${p.id}`), `GET /v1/traces/${p.id}`);
      if (!warm) byIdBytes += r.bytes;
      if (i === 0 && JSON.parse(r.body).spans.length !== p.spans) throw new Error(`GET /v1/traces/${p.id}: span count differs from the SQL`);
      return r;
    },
    sql: async (i, warm) => {
      const p = sqlIds[warm ? i : opts.warmup + i];
      const a = await runStatements(floorDb, p.oneSql);
      if (!warm) {
        // For comparison: the three statements the endpoint sent before traceWithSpans.
        const b = await runStatements(floorDb, p.traceSql);
        const c = await runStatements(floorDb, p.spansSql);
        const d = await runStatements(floorDb, p.detailSql);
        byIdPart.trace.push(a.ms);
        byIdPart.spans.push(b.ms + c.ms + d.ms);
      }
      return { ms: a.ms };
    },
  });
  results.byId.bytes = byIdBytes / opts.requests;
  results.byId.parts = { trace: stats(byIdPart.trace), spans: stats(byIdPart.spans) };
  progress(`by id: HTTP p50 ${fmtMs(results.byId.http.p50)} p95 ${fmtMs(results.byId.http.p95)} p99 ${fmtMs(results.byId.http.p99)}; SQL p50 ${fmtMs(results.byId.sql.p50)} p95 ${fmtMs(results.byId.sql.p95)}`);

  // 3b. Trace lists: first pages (unfiltered and filtered) and a deep page reached by cursor.
  const lists = [
    { key: 'first', label: 'first page', query: '', filters: {}, target: LIST_TARGET_MS },
    { key: 'agent', label: 'first page, `agent_name=coding-agent`', query: 'agent_name=coding-agent', filters: { agentName: 'coding-agent' }, target: LIST_TARGET_MS, shareSql: ["agent_name = 'coding-agent'"] },
    { key: 'service', label: 'first page, `service=support-svc`', query: 'service=support-svc', filters: { service: 'support-svc' }, target: LIST_TARGET_MS, shareSql: ["service_name = 'support-svc'"] },
    { key: 'error', label: 'first page, `status=error`', query: 'status=error', filters: { status: 'error' }, target: LIST_TARGET_MS, shareSql: ['error_count > 0'] },
    { key: 'rareAgent', label: 'first page, `agent_name=audit-agent`', query: 'agent_name=audit-agent', filters: { agentName: 'audit-agent' }, target: LIST_TARGET_MS, shareSql: ["agent_name = 'audit-agent'"] },
  ];
  // The deep page: walk `deepPages` pages by cursor, over HTTP and through listTraces alike.
  let cursor;
  const walkMs = [];
  for (let p = 0; p < opts.deepPages; p++) {
    const r = check(await get(`/v1/traces?limit=${opts.pageSize}${cursor ? `&cursor=${cursor}` : ''}`), 'GET /v1/traces walk');
    walkMs.push(r.ms);
    cursor = JSON.parse(r.body).next_cursor;
    if (!cursor) throw new Error(`no next_cursor after page ${p + 1}`);
  }
  let after;
  for (let p = 0; p < opts.deepPages; p++) {
    const rows = (await rec.capture((d) => listTraces(d, P, {}, after, opts.pageSize))).result;
    const last = rows[opts.pageSize - 1];
    after = { time: last.cursor_time, traceId: hexOf(last.trace_id) };
  }
  lists.push({ key: 'deep', label: `page ${opts.deepPages + 1} (by \`next_cursor\`, ${opts.deepPages * opts.pageSize} traces in)`, query: `cursor=${cursor}`, filters: {}, after, target: undefined });

  for (const l of lists) {
    const cap = await rec.capture((d) => listTraces(d, P, l.filters, l.after, opts.pageSize));
    l.statements = cap.statements;
    l.firstId = cap.result[0] && hexOf(cap.result[0].trace_id);
    l.share = l.shareSql ? await share(l.shareSql[0]) : undefined;
    l.path = `/v1/traces?limit=${opts.pageSize}${l.query ? `&${l.query}` : ''}`;
    let bytes = 0;
    l.result = await interleaved({
      warmup: opts.warmup, n: opts.requests, meter,
      http: async (i, warm) => {
        const r = check(await get(l.path), `GET ${l.path}`);
        if (!warm) bytes += r.bytes;
        if (i === 0 && warm) {
          const body = JSON.parse(r.body);
          if (body.data[0]?.trace_id !== l.firstId) throw new Error(`GET ${l.path}: first trace ${body.data[0]?.trace_id} ≠ SQL's ${l.firstId}`);
          l.rows = body.data.length;
        }
        return r;
      },
      sql: () => runStatements(floorDb, l.statements),
      extra: l.key === 'first' ? me : undefined,
    });
    l.result.bytes = bytes / opts.requests;
    progress(`list ${l.key}: HTTP p50 ${fmtMs(l.result.http.p50)} p95 ${fmtMs(l.result.http.p95)} p99 ${fmtMs(l.result.http.p99)}; SQL p50 ${fmtMs(l.result.sql.p50)} p95 ${fmtMs(l.result.sql.p95)}`);
  }

  // 3c. What every authenticated request pays anyway: /health (no auth) and /v1/me (key lookup).
  const baseline = {};
  for (const [k, p] of [['health', '/health'], ['me', '/v1/me']]) {
    baseline[k] = await interleaved({ warmup: opts.warmup, n: opts.requests, meter, http: async () => check(await get(p), p) });
  }
  progress(`baselines: /health p50 ${fmtMs(baseline.health.http.p50)}, /v1/me p50 ${fmtMs(baseline.me.http.p50)}`);

  // 3d. Probes of the other filters and the tree view (fewer requests, time-boxed): slow queries show here.
  const weekAgo = Date.now() - 7 * 86_400_000;
  const costP99 = Number(counts.cost_p99).toFixed(4);
  const probes = [
    { key: 'tree', label: '`GET /v1/traces/{id}/tree`', byId: true },
    { key: 'modelCommon', label: `\`model=${MODELS[0].model}\``, query: `model=${MODELS[0].model}`, filters: { model: MODELS[0].model }, shareSql: [`'${MODELS[0].model}' = ANY(models)`] },
    { key: 'modelRare', label: `\`model=${RARE_MODEL.model}\``, query: `model=${RARE_MODEL.model}`, filters: { model: RARE_MODEL.model }, shareSql: [`'${RARE_MODEL.model}' = ANY(models)`] },
    { key: 'modelNone', label: '`model=no-such-model`', query: 'model=no-such-model', filters: { model: 'no-such-model' }, shareSql: ["'no-such-model' = ANY(models)"] },
    { key: 'agentNone', label: '`agent_name=no-such-agent`', query: 'agent_name=no-such-agent', filters: { agentName: 'no-such-agent' }, shareSql: ["agent_name = 'no-such-agent'"] },
    { key: 'qRare', label: '`q=audit`', query: 'q=audit', filters: { qPattern: containsPattern('audit') }, shareSql: ["root_name ILIKE '%audit%' OR agent_name ILIKE '%audit%' OR service_name ILIKE '%audit%'"] },
    { key: 'qNone', label: '`q=no-such-text`', query: 'q=no-such-text', filters: { qPattern: containsPattern('no-such-text') }, shareSql: ["root_name ILIKE '%no-such-text%' OR agent_name ILIKE '%no-such-text%' OR service_name ILIKE '%no-such-text%'"] },
    { key: 'minCost', label: `\`min_cost_usd=${costP99}\``, query: `min_cost_usd=${costP99}`, filters: { minCostUsd: costP99 }, shareSql: [`cost_usd >= ${costP99}`] },
    { key: 'statusOk', label: '`status=ok`', query: 'status=ok', filters: { status: 'ok' }, shareSql: ['error_count = 0'] },
    {
      key: 'window', label: 'one day a week ago (`since` + `until`)',
      query: `since=${new Date(weekAgo - 86_400_000).toISOString()}&until=${new Date(weekAgo).toISOString()}`,
      filters: { sinceNs: BigInt(weekAgo - 86_400_000) * 1_000_000n, untilNs: BigInt(weekAgo) * 1_000_000n },
      shareSql: ['start_time >= $1 AND start_time < $2', [new Date(weekAgo - 86_400_000), new Date(weekAgo)]],
    },
  ];
  for (const pr of probes) {
    pr.share = pr.shareSql ? await share(pr.shareSql[0], pr.shareSql[1]) : undefined;
    if (pr.byId) {
      pr.path = (i) => `/v1/traces/${httpIds[i % httpIds.length].id}/tree`;
    } else {
      const cap = await rec.capture((d) => listTraces(d, P, pr.filters, undefined, opts.pageSize));
      pr.statements = cap.statements;
      const path = `/v1/traces?limit=${opts.pageSize}&${pr.query}`;
      pr.path = () => path;
    }
    const deadline = performance.now() + opts.probeSeconds * 1000;
    let n = 0;
    const ms = { http: [], sql: [] };
    const warm = Math.min(5, opts.warmup);
    const b = meter.begin();
    const s0 = performance.now();
    for (let i = 0; i < warm + opts.probeRequests && performance.now() < deadline; i++) {
      const r = check(await get(pr.path(i)), `GET ${pr.path(i)}`);
      const q = pr.statements ? await runStatements(floorDb, pr.statements) : undefined;
      if (i < warm) continue;
      n++;
      ms.http.push(r.ms);
      if (q) ms.sql.push(q.ms);
    }
    pr.result = { http: stats(ms.http), sql: pr.statements ? stats(ms.sql) : undefined, n, cpu: meter.end(b, (performance.now() - s0) / 1000) };
    progress(`probe ${pr.key}: ${n} requests, HTTP p50 ${fmtMs(pr.result.http.p50)} p95 ${fmtMs(pr.result.http.p95)}${pr.statements ? `; SQL p50 ${fmtMs(pr.result.sql.p50)}` : ''}`);
  }
  const loadAvgMeasureEnd = os.loadavg();
  const exit = await receiver.stop(15_000);

  // 4. Plans of the statements measured above.
  // The 101st newest failed trace (or the oldest one of a small data set).
  const errTrace = (await db.query('SELECT encode(trace_id, \'hex\') AS id FROM telemetry.traces WHERE error_count > 0 ORDER BY start_time DESC LIMIT 101')).rows.at(-1).id;
  const planned = await byIdStatements(errTrace);
  const plans = [
    { label: 'Trace by id: the statement `GET /v1/traces/{id}` sends (`traceWithSpans`)', statement: planned.oneSql[0] },
    { label: 'Trace by id: summary (`getTrace`, used before traceWithSpans)', statement: planned.traceSql[0] },
    { label: 'Trace by id: its spans (`spansOfTrace`)', statement: planned.spansSql[0] },
    {
      label: 'Trace by id: its spans if the trace lasted 6 hours (`spansOfTrace`, same statement, end of the window + 6 h)',
      statement: { text: planned.spansSql[0].text, values: planned.spansSql[0].values.map((v) => (v === planned.window.endText ? new Date(Date.parse(planned.window.startText) + 6 * 3_600_000).toISOString() : v)) },
    },
    ...planned.detailSql.map((s, i) => ({ label: `Trace by id: its span ${i === 0 ? 'events (`eventsOf`)' : 'links (`linksOf`)'}`, statement: s })),
    ...lists.map((l) => ({ label: `Trace list, ${l.label} (\`listTraces\`)`, statement: l.statements[0] })),
    ...probes.filter((p) => p.statements && ['modelCommon', 'modelRare', 'modelNone', 'qRare', 'qNone', 'agentNone', 'minCost', 'window'].includes(p.key))
      .map((p) => ({ label: `Trace list, ${p.label} (\`listTraces\`)`, statement: p.statements[0] })),
  ];
  for (const p of plans) p.plan = await explain(floorDb, p.statement);
  const spansParts = size.partitions.filter((x) => x.partition.startsWith('spans_'));

  // 5. Report.
  const rowsOf = (label, r, target, extra) => [
    label, ms1(r.http.p50), ms1(r.http.p95), ms1(r.http.p99),
    r.sql ? `${ms1(r.sql.p50)} / ${ms1(r.sql.p95)} / ${ms1(r.sql.p99)}` : '—',
    r.sql ? `${ratio(r.http.p50, r.sql.p50)} / ${ratio(r.http.p95, r.sql.p95)}` : '—',
    ...extra,
    target ? `< ${target} ms` : '—', target ? (r.http.p95 < target ? '✓' : '✗') : '—',
  ];
  // Receiver CPU per HTTP request (the SQL floor runs on this process's connection, not the receiver's);
  // rows with an interleaved /v1/me have its CPU (from its own row) taken out.
  const cpuMs = (r, n) => (r.cpu?.receiverCpu !== undefined ? (Math.max(0, r.cpu.receiverCpu - idleCpu) * r.elapsed * 1000) / n : NaN);
  const perReq = (r, n) => {
    const v = cpuMs(r, n) - (r.extra ? cpuMs(baseline.me, opts.requests) : 0);
    return Number.isFinite(v) ? ms1(Math.max(0, v)) : '—';
  };
  const mainRows = [
    rowsOf('`GET /v1/traces/{id}` (random trace)', results.byId, BY_ID_TARGET_MS, [fmtKB(results.byId.bytes), perReq(results.byId, opts.requests), fmtPct(results.byId.cpu.otherCpu)]),
    ...lists.map((l) => rowsOf(`\`GET /v1/traces\`, ${l.label}${l.share !== undefined ? ` (${fmtPct(l.share)} of traces)` : ''}`, l.result, l.target, [fmtKB(l.result.bytes), perReq(l.result, opts.requests), fmtPct(l.result.cpu.otherCpu)])),
  ];
  const first = lists.find((l) => l.key === 'first');
  const meById = results.byId.extra;
  const meFirst = first.result.extra;
  const byIdP50 = results.byId.http.p50;
  const byIdRest = byIdP50 - results.byId.sql.p50 - meById.p50;
  const listRest = first.result.http.p50 - first.result.sql.p50 - meFirst.p50;
  const machine = results.byId.cpu.machineCpu;
  // Slow = the statement itself is slow (SQL floor p50), not the machine's noise in a few samples.
  const slow = probes.filter((p) => p.result.sql && p.result.sql.p50 >= LIST_TARGET_MS / 2);
  const seqPlans = plans.filter((p) => p.plan.scans.some((s) => s.node === 'Seq Scan'));
  const listLabel = (p) => p.label.replace(/^Trace list, /, '').replace(/ \(`listTraces`\)$/, '');
  const byIdPlansIndexed = plans.filter((p) => p.label.startsWith('Trace by id: summary') || p.label.startsWith('Trace by id: its spans (')).every((p) => p.plan.scans.length > 0 && p.plan.scans.every((s) => s.node.startsWith('Index')));
  const listPlansIndexed = plans.filter((p) => p.label.startsWith('Trace list, first page') || p.label.startsWith('Trace list, page'))
    .every((p) => p.plan.scans.length > 0 && p.plan.scans.every((s) => s.node.startsWith('Index')));
  const spansScanned = (p) => new Set(p.plan.scans.filter((s) => s.relation.startsWith('spans_')).map((s) => s.relation)).size;
  const growth = loaded.spans > 0 ? ` This step added ${fmtInt(load.addedSpans)} spans (their own seed, root starts over the same ${opts.days} days) to the ${titleOf(loaded.spans)}-span database measured above, all indexes in place, and re-ran \`VACUUM ANALYZE\`.` : '';
  const tenM = Math.max(...opts.steps) < 10_000_000
    ? `10M spans was not run: \`BENCH_QUERY_SPANS=1000000,10000000 node bench/query.mjs\` (the default) runs it (at this run's load rate, ${fmtInt(load.addedSpans / load.loadS)} spans/s, loading 10M takes ≈ ${Math.round(10_000_000 / (load.addedSpans / load.loadS) / 60)} min, plus VACUUM ANALYZE ≈ ${Math.round((vacuumS * 10) / 60)} min, and ≈ ${(size.db * (10_000_000 / load.spans) / 1024 ** 3).toFixed(0)} GB of disk).`
    : '';

  const md = [];
  md.push(`**${fmtInt(load.spans)} spans** in **${fmtInt(load.traces)} traces** (6–14 spans each: an \`invoke_agent\` root, then \`chat\` LLM spans with model, tokens and cost and \`execute_tool\` spans, alternating), root starts spread evenly over the last ${opts.days} days across ${spansParts.filter((x) => x.rows > 0).length} monthly partitions (${spansParts.length} spans partitions in all, incl. future months and the default); ${AGENTS.length} agents in ${new Set(AGENTS.map((a) => a.service)).size} services (${AGENTS.map((a) => `${a.agent} ${a.pct} %`).join(', ')}), ${MODELS.length + 1} models, ${fmtPct(counts.errors / counts.traces)} failed traces (a span with status ERROR and an \`exception\` event; ${fmtInt(counts.events)} events, ${fmtInt(counts.links)} links on ≈ 2 % of roots). One project. Attribute maps, resource and scope are those the receiver stores for the real OpenTelemetry SDK's spans (\`normalizeRequest\` of \`bench/lib/load.mjs\`'s template, varied per span).`);
  md.push('');
  md.push(`**Load**: generated inside Postgres (\`generate_series\`) and inserted into \`telemetry.spans\`/\`span_events\`/\`span_links\` with the trace summaries (\`telemetry.traces\`) written by the writer's own \`agg\`/\`tr\` CTEs of \`INSERT_BATCH_SQL\`, 5,000 traces per statement over ${opts.loadStreams} connections, all indexes in place: **${fmtS(load.loadS)}** for ${fmtInt(load.addedSpans)} spans (${fmtInt(load.addedSpans / load.loadS)} spans/s)${server.embedded ? ' with max_wal_size 16 GB (no forced checkpoints during the load)' : ''}, then \`VACUUM ANALYZE\` ${fmtS(vacuumS)} and \`CHECKPOINT\` ${fmtS(checkpointS)}. **Database size ${fmtMB(size.db)}**: spans ${fmtMB(size.spans_table)} + indexes ${fmtMB(size.spans_indexes)}, traces ${fmtMB(size.traces_table)} + indexes ${fmtMB(size.traces_indexes)}, events ${fmtMB(size.events)}, links ${fmtMB(size.links)}.${growth} ${tenM}`);
  md.push('');
  md.push(table(['index', 'size'], size.indexes.map((x) => [`\`${x.table}.${x.index}\``, x.bytes < 1024 ** 2 ? fmtKB(x.bytes) : fmtMB(x.bytes)])));
  md.push('');
  md.push(`**Measurement**: the real receiver (\`node receiver/dist/main.js\`, rate limit off) on that database, one kept-alive HTTP connection, an API key with \`traces:read\`; ${opts.warmup} warm-up requests, then ${opts.requests} sequential requests per row, each followed by its **SQL floor**: the statements the API sends for it (captured from the receiver's own \`getTrace\`/\`spansOfTrace\`/\`eventsOf\`/\`linksOf\`/\`listTraces\` through Kysely, text and parameters as executed), run one after another on a plain \`pg\` connection, for a different random trace (by id) or the same page (lists). HTTP time runs from the request to the last body byte. By id: ${fmtInt(need)} random traces for HTTP and a disjoint ${fmtInt(need)} for SQL, each read once beforehand while capturing its statements; the whole database is smaller than RAM, so everything is in the OS page cache (shared_buffers 128 MB is not). Lists are limit ${opts.pageSize}. Load average (1/5/15 min): ${load3(loadAvgStart)} at start, ${load3(loadAvgMeasureStart)} → ${load3(loadAvgMeasureEnd)} during the measurements, on ${os.cpus().length} cores.`);
  md.push('');
  md.push(table(['request', 'HTTP p50', 'HTTP p95', 'HTTP p99', 'SQL floor p50 / p95 / p99', 'ratio p50 / p95', 'response', 'receiver CPU per request', 'other processes CPU', 'target (p95)', 'met'], mainRows));
  md.push('');
  md.push(`SQL floor of one trace by id = the one statement the endpoint sends (\`traceWithSpans\`: summary, spans, their events and links as JSON; a named prepared statement, as the receiver runs it): p50 ${fmtMs(results.byId.parts.trace.p50)}, p95 ${fmtMs(results.byId.parts.trace.p95)}; the three statements it replaced (summary, spans, events/links), run back to back on the same traces: p50 ${fmtMs(results.byId.parts.spans.p50)}, p95 ${fmtMs(results.byId.parts.spans.p95)}. Walking the first ${opts.deepPages} pages by cursor over HTTP: ${walkMs.map((m) => Math.round(m)).join(', ')} ms. "Other processes CPU": the rest of the machine (other tenants) in % of one core during the row; the machine has ${os.cpus().length}.`);
  md.push('');
  md.push(`Every request also pays: \`GET /health\` (no auth, no database; own row) p50 ${ms1(baseline.health.http.p50)} / p95 ${ms1(baseline.health.http.p95)} / p99 ${ms1(baseline.health.http.p99)}; \`GET /v1/me\` (authentication: the API key is cached in memory after its first use; tiny JSON) interleaved with the by-id requests p50 ${ms1(meById.p50)} / p95 ${ms1(meById.p95)} / p99 ${ms1(meById.p99)}, with the first-page requests p50 ${ms1(meFirst.p50)} / p95 ${ms1(meFirst.p95)}, in its own row p50 ${ms1(baseline.me.http.p50)} / p95 ${ms1(baseline.me.http.p95)}. Receiver CPU per request of the by-id and first-page rows excludes the interleaved \`/v1/me\` (its CPU per request from its own row).`);
  md.push('');
  const execOf = (prefix) => plans.filter((p) => p.label.startsWith(prefix)).reduce((a, p) => a + p.plan.execMs + p.plan.planMs, 0);
  const byIdServer = execOf('Trace by id: the statement');
  const listServer = execOf('Trace list, first page (');
  md.push(`**What limits latency**: not the queries. Inside Postgres (EXPLAIN ANALYZE, planning + execution) the by-id statement takes ${fmtMs(byIdServer)} and the first list page ${fmtMs(listServer)}, yet their SQL floor measured from a client is p50 ${ms1(results.byId.sql.p50)} and ${ms1(first.result.sql.p50)}: the time goes to round trips and to waiting for a CPU. A by-id request makes one round trip to Postgres (the API key is cached in memory after its first use), a list page 1; \`/v1/me\` (authentication only, tiny JSON), interleaved in the same loops, took p50 ${ms1(meById.p50)} / ${ms1(meFirst.p50)}. So by-id HTTP p50 ${ms1(byIdP50)} ≈ floor ${ms1(results.byId.sql.p50)} + authenticated round trip ${ms1(meById.p50)} + ${ms1(Math.max(0, byIdRest))} of the receiver's own work (routing, Kysely, building ${fmtKB(results.byId.bytes)} of span JSON), and first page ${ms1(first.result.http.p50)} ≈ ${ms1(first.result.sql.p50)} + ${ms1(meFirst.p50)} + ${ms1(Math.max(0, listRest))} (medians do not add exactly). Receiver CPU per request: ${perReq(results.byId, opts.requests)} by id, ${perReq(first.result, opts.requests)} per list page, ${ms1(cpuMs(baseline.me, opts.requests))} for \`/v1/me\`, ${ms1(cpuMs(baseline.health, opts.requests))} for \`/health\` (process CPU, including the kernel's loopback TCP work, minus its idle rate of ${fmtPct(idleCpu)} of a core measured for ${IDLE_CPU_SECONDS} s before). The machine was ${fmtPct(machine / os.cpus().length)} busy during the by-id row (other processes ${fmtPct(results.byId.cpu.otherCpu)} of a core)${results.byId.cpu.otherCpu > 0.5 ? ', so p95/p99 largely measure waiting for a CPU' : ''}; \`/health\`, which does no work, had p95/p99 ${ms1(baseline.health.http.p95)} / ${ms1(baseline.health.http.p99)} in its own row (other processes ${fmtPct(baseline.health.cpu.otherCpu)} of a core). No index serves \`model\` (\`$1 = ANY(models)\`), \`q\` (ILIKE '%…%' on three columns) or \`min_cost_usd\`: a rare value walks the newest-first index until ${opts.pageSize + 1} traces match (cost ∝ 1 / share, not table size), and a value that matches nothing reads every trace of the project (cost ∝ table size; see the probes below).`);
  md.push('');
  md.push(`**Other filters and the tree view** (${opts.probeRequests} requests each after 5 warm-up, at most ${opts.probeSeconds} s; same floor method):`);
  md.push('');
  md.push(table(['request', 'matches', 'requests', 'HTTP p50', 'HTTP p95', 'HTTP p99', 'SQL floor p50 / p95', 'ratio p50'], probes.map((p) => [
    p.byId ? p.label : `\`GET /v1/traces\`, ${p.label}`, p.share === undefined ? '—' : fmtPct(p.share), p.result.n,
    fmtMs(p.result.http.p50), fmtMs(p.result.http.p95), fmtMs(p.result.http.p99),
    p.result.sql ? `${fmtMs(p.result.sql.p50)} / ${fmtMs(p.result.sql.p95)}` : '—', p.result.sql ? ratio(p.result.http.p50, p.result.sql.p50) : '—',
  ])));
  md.push('');
  md.push(`**Plans** (EXPLAIN (ANALYZE, BUFFERS) of the captured statements, after the measurements; by id for a failed trace, so the events statement runs too):`);
  md.push('');
  for (const p of plans) {
    const spansNote = spansScanned(p) ? ` — ${spansScanned(p)} of ${spansParts.length} spans partitions scanned` : '';
    md.push(`- ${p.label}: ${scanSummary(p.plan)}${spansNote}; execution ${fmtMs(p.plan.execMs)}, planning ${fmtMs(p.plan.planMs)}, buffers ${p.plan.buffers || 'n/a'}.`);
  }
  md.push('');
  const spansPlan = plans.find((p) => p.label.startsWith('Trace by id: its spans ('));
  const widePlan = plans.find((p) => p.label.startsWith('Trace by id: its spans if'));
  const viaPk = (p) => p.plan.scans.some((x) => x.relation.startsWith('spans_') && /pkey/.test(x.index ?? ''));
  const density = load.spans / (opts.days * 86_400);
  md.push(`Trace by id ${byIdPlansIndexed ? 'uses index scans only' : 'does **not** use index scans only (see the plans)'}, and its time window prunes the spans partitions to ${spansScanned(spansPlan)} of ${spansParts.length} at plan time. ${viaPk(spansPlan) ? 'The spans are found through the primary key (project_id, trace_id, …).' : `The planner finds the spans through \`(project_id, start_time)\` (\`spans_project_time_idx\`) with a filter on trace_id, not through the primary key: cheap here because few spans of other traces start inside a trace's few-second window (${density.toFixed(2)} spans/s on average in this data set); for a window holding many spans (the 6-hour plan) it ${viaPk(widePlan) ? 'switches to the primary key' : '**keeps the time index and filters every span of the window**'}.`} The list pages ${listPlansIndexed ? 'are index range scans in keyset order with a LIMIT (no sort, no count)' : 'are **not** all index scans (see the plans)'}.${seqPlans.length ? ` Sequential scans of \`telemetry.traces\` (no index serves the filter; the whole table is read, then sorted): ${seqPlans.map(listLabel).join(', ')}.` : ''}${slow.length ? ` Filters whose SQL alone takes ≥ ${LIST_TARGET_MS / 2} ms (floor p50): ${slow.map((p) => `${p.label} (SQL p50 ${fmtMs(p.result.sql.p50)}, HTTP p95 ${fmtMs(p.result.http.p95)})`).join(', ')}.` : ''}`);
  for (const p of plans) {
    md.push('');
    md.push(`<details><summary>${p.label}</summary>`);
    md.push('');
    md.push('```sql');
    md.push(p.statement.text.replace(/\s+/g, ' ').trim());
    md.push('```');
    md.push('');
    md.push('```');
    md.push(p.plan.text);
    md.push('```');
    md.push('');
    md.push('</details>');
  }
  md.push('');
  md.push(`Knobs: \`BENCH_QUERY_SPANS\` (sizes measured in turn in one growing database; \`1000000,10000000\`), \`BENCH_QUERY_DAYS\` (30), \`BENCH_QUERY_REQUESTS\` (500), \`BENCH_QUERY_WARMUP\` (50), \`BENCH_QUERY_PROBE_REQUESTS\` (60), \`BENCH_QUERY_PROBE_SECONDS\` (8), \`BENCH_QUERY_LOAD_STREAMS\` (2). Receiver log: \`bench/out/query-receiver-${TITLE_SPANS}.log\`.`);

  const fig = (label, r, target) => ({
    label, value: `p95 ${ms1(r.http.p95)} (p50 ${ms1(r.http.p50)}, p99 ${ms1(r.http.p99)})`, bound: `SQL p95 ${ms1(r.sql.p95)}`,
    ratio: ratio(r.http.p95, r.sql.p95), target: target ? `p95 < ${target} ms` : '—', ...(target ? { met: r.http.p95 < target } : {}),
  });
  const figures = [
    { label: `Query data set: ${TITLE_SPANS} spans, ${fmtInt(load.traces)} traces, ${opts.days} days`, value: `${loaded.spans > 0 ? `grown by ${fmtInt(load.addedSpans)} spans` : 'loaded'} in ${fmtS(load.loadS)} (${fmtInt(load.addedSpans / load.loadS)} spans/s)`, bound: `database ${fmtMB(size.db)}`, ratio: '—', target: '—' },
    fig(`Trace by id, ${TITLE_SPANS} spans (GET /v1/traces/{id})`, results.byId, BY_ID_TARGET_MS),
    ...lists.map((l) => fig(`Trace list ${l.label.replace(/`/g, '')}, ${TITLE_SPANS} spans`, l.result, l.target)),
  ];
  const strip = (r) => ({ ...r, raw: undefined });
  await floorDb.end().catch(() => undefined);
  return {
    title: TITLE_SPANS, figures, markdown: md.join('\n'),
    raw: {
      opts, load, vacuumS, checkpointS, size, counts, receiverIdleCpu: idleCpu, loadAvg: { start: loadAvgStart, measureStart: loadAvgMeasureStart, measureEnd: loadAvgMeasureEnd },
      byId: strip(results.byId), lists: lists.map((l) => ({ key: l.key, path: l.path, share: l.share, result: strip(l.result), sql: printable(l.statements) })),
      baseline: { health: strip(baseline.health), me: strip(baseline.me) }, walkMs,
      probes: probes.map((p) => ({ key: p.key, share: p.share, result: p.result, sql: printable(p.statements) })),
      plans: plans.map((p) => ({ label: p.label, sql: p.statement.text, scans: p.plan.scans, execMs: p.plan.execMs, planMs: p.plan.planMs })),
      receiverExit: exit,
    },
  };
}
