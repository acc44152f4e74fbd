// Helpers of bench/query.mjs: one keep-alive HTTP client, the exact SQL the API runs (captured
// from the receiver's own query functions through Kysely), timing loops and EXPLAIN summaries.
import http from 'node:http';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { onCleanup } from './proc.mjs';
import { percentile } from './report.mjs';

/** GET over one kept-alive connection (a dashboard or CLI session); time to the last body byte. */
export function httpClient(baseUrl, key) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  onCleanup(() => agent.destroy());
  const headers = { authorization: `Bearer ${key}`, accept: 'application/json' };
  return (path) => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(`${baseUrl}${path}`, { agent, headers, timeout: 30_000 }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode, ms, bytes: body.length, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
    req.on('error', reject);
  });
}

/**
 * A Kysely instance whose statements are recorded: `capture(fn)` runs `fn(db)` (a receiver query
 * function) and returns its result with the statements it sent, text and parameters as executed.
 */
export function sqlRecorder(url) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  onCleanup(() => pool.end().catch(() => undefined));
  let log = [];
  const db = new Kysely({
    dialect: new PostgresDialect({ pool }),
    log: (e) => {
      if (e.level === 'query') log.push({ text: e.query.sql, values: [...e.query.parameters] });
    },
  });
  onCleanup(() => db.destroy().catch(() => undefined));
  return {
    db,
    async capture(fn) {
      log = [];
      const result = await fn(db);
      return { result, statements: log };
    },
  };
}

/** Run `statements` one after another on a plain connection (the SQL floor of one request). */
export async function runStatements(client, statements) {
  const t0 = performance.now();
  let rows = 0;
  for (const s of statements) rows += (await client.query({ name: s.name, text: s.text, values: s.values })).rowCount ?? 0;
  return { ms: performance.now() - t0, rows };
}

export function stats(ms) {
  return { n: ms.length, p50: percentile(ms, 50), p95: percentile(ms, 95), p99: percentile(ms, 99), max: ms.length ? Math.max(...ms) : NaN };
}

/**
 * Measure an HTTP request kind and its SQL floor interleaved (HTTP, SQL, HTTP, SQL …), so both see
 * the same machine load; `http(i)`, `sql(i)` and `extra(i)` (a reference request, e.g. /v1/me, in the
 * same rhythm) each return { ms }. Warm-up rounds are not kept.
 */
export async function interleaved({ warmup, n, http: doHttp, sql: doSql, extra, meter }) {
  for (let i = 0; i < warmup; i++) {
    await doHttp(i, true);
    if (doSql) await doSql(i, true);
    if (extra) await extra(i, true);
  }
  const httpMs = [];
  const sqlMs = [];
  const extraMs = [];
  const b = meter?.begin();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    httpMs.push((await doHttp(i, false)).ms);
    if (doSql) sqlMs.push((await doSql(i, false)).ms);
    if (extra) extraMs.push((await extra(i, false)).ms);
  }
  const elapsed = (performance.now() - t0) / 1000;
  return {
    http: stats(httpMs), sql: doSql ? stats(sqlMs) : undefined, extra: extra ? stats(extraMs) : undefined,
    elapsed, cpu: meter?.end(b, elapsed), raw: { httpMs, sqlMs, extraMs },
  };
}

/** EXPLAIN (ANALYZE, BUFFERS) of one captured statement: the plan text and what it scans. */
export async function explain(client, statement) {
  const r = await client.query({ text: `EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`, values: statement.values });
  const text = r.rows.map((x) => x['QUERY PLAN']).join('\n');
  const scans = [];
  const re = /(Index Only Scan(?: Backward)?|Index Scan(?: Backward)?|Bitmap Index Scan|Bitmap Heap Scan|Seq Scan)(?: using (\S+))? on (\S+)/g;
  for (const m of text.matchAll(re)) scans.push({ node: m[1], index: m[2], relation: m[3] });
  const removed = [...text.matchAll(/Subplans Removed: (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const execMs = Number(/Execution Time: ([\d.]+) ms/.exec(text)?.[1]);
  const planMs = Number(/Planning Time: ([\d.]+) ms/.exec(text)?.[1]);
  const buffers = /Buffers: shared ((?:hit=\d+)?\s*(?:read=\d+)?)/.exec(text)?.[1]?.trim();
  return { text, scans, removed, execMs, planMs, buffers };
}
