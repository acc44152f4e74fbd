// The benchmark's Postgres: embedded in a temp dir (or DATABASE_URL), one fresh database per use.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { freePort, startEmbeddedPostgres } from '../../receiver/dist/db/embedded.js';
import { runMigrations } from '../../receiver/dist/db/migrate.js';
import { ensurePartitions } from '../../receiver/dist/db/partitions.js';
import { loadConfig } from '../../receiver/dist/config.js';
import { createLogger } from '../../receiver/dist/observability/logger.js';
import { onCleanup } from './proc.mjs';

export const log = createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn', format: 'text' });

/** Tuning the receiver would use with the benchmark's environment (the same parser as main.js). */
export function receiverDefaults(env = {}) {
  return loadConfig({ ...process.env, ...env }).config;
}

/**
 * Start the Postgres server the benchmark runs against. `postmasterPid` is known only for the
 * embedded server (used to account its CPU time).
 */
export async function startPostgres(label) {
  let adminUrl = process.env.DATABASE_URL;
  let dataDir;
  if (!adminUrl) {
    dataDir = mkdtempSync(path.join(tmpdir(), `strathon-bench-${label}-`));
    onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const embedded = await startEmbeddedPostgres({ dataDir, port, log, database: 'postgres' });
    onCleanup(() => embedded.stop());
    adminUrl = embedded.url;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  onCleanup(() => admin.end());
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  const pidFile = dataDir && path.join(dataDir, 'pg', 'postmaster.pid');
  const postmasterPid = pidFile && existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : undefined;
  const created = [];
  onCleanup(async () => {
    for (const db of created) await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => undefined);
  });
  return {
    adminUrl, version, postmasterPid, embedded: !process.env.DATABASE_URL,
    /** A new empty database on this server (dropped at cleanup); returns its URL. */
    async createDatabase(name) {
      const db = `bench_${label}_${name}_${process.pid}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
      await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${db}"`);
      created.push(db);
      const u = new URL(adminUrl);
      u.pathname = `/${db}`;
      return u.toString();
    },
  };
}

/** Migrate a database to head and create its partitions, as the receiver does at boot. */
export async function migrate(url) {
  await runMigrations(url, log);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await ensurePartitions(client, receiverDefaults().partitionMonthsAhead);
  } finally {
    await client.end();
  }
}

export async function connect(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  onCleanup(() => client.end().catch(() => undefined));
  return client;
}

/** Empty the telemetry tables and checkpoint, so every measurement starts from the same state. */
export async function resetTelemetry(client) {
  await client.query('TRUNCATE telemetry.spans, telemetry.span_events, telemetry.span_links, telemetry.traces');
  await client.query('CHECKPOINT');
}

/** Columns of telemetry.spans a writer fills (received_at is left to its default). */
export async function spanColumns(client) {
  const r = await client.query(
    `SELECT column_name FROM information_schema.columns
     WHERE table_schema = 'telemetry' AND table_name = 'spans' AND column_name <> 'received_at' ORDER BY ordinal_position`,
  );
  return r.rows.map((x) => x.column_name);
}

/**
 * Sample what the other active backends of `client`'s database are doing, every `everyMs`:
 * "CPU" (no wait event) or the wait event (e.g. "IO:WalSync", "LWLock:WALWrite"). stop() → shares.
 */
export function sampleWaits(client, everyMs = 50) {
  const counts = new Map();
  let samples = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const r = await client.query(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND backend_type = 'client backend'`,
      ).catch(() => ({ rows: [] }));
      samples++;
      for (const { w } of r.rows) counts.set(w, (counts.get(w) ?? 0) + 1);
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return async () => {
    running = false;
    await done;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    return {
      samples,
      activeBackends: samples ? total / samples : 0,
      shares: Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).map(([w, n]) => [w, n / (total || 1)])),
    };
  };
}

/** `COPY … FROM STDIN` of text-format chunks (strings or Buffers). */
export async function copyIn(client, sql, chunks) {
  await pipeline(Readable.from(chunks), client.query(copyStreams.from(sql)));
}

/** `COPY … TO STDOUT` into one string. */
export async function copyOut(client, sql) {
  const parts = [];
  await pipeline(
    client.query(copyStreams.to(sql)),
    new Writable({ write(chunk, _enc, cb) { parts.push(chunk); cb(); } }),
  );
  return Buffer.concat(parts).toString('utf8');
}
