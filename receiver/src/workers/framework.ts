// The worker framework (SPEC §11): every background loop is a named worker with an interval, a lock
// and a heartbeat. One chained timer per worker (never setInterval); errors are caught, logged and
// retried with backoff; state is kept in memory (for /ready) and in core.worker_status / worker_runs.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { Check } from '../observability/checks.js';

/**
 * `advisory`: a session-level pg_try_advisory_lock(hashtext(key)) on the tick's dedicated
 * connection, held for the tick; when another replica holds it the tick is skipped (healthy).
 * `none`: the run function makes its own claims (FOR UPDATE SKIP LOCKED).
 */
export type WorkerLock = { kind: 'advisory'; key: string } | { kind: 'none' };

export interface Tick {
  worker: string;
  /** A connection checked out for this tick only; it holds the advisory lock, if any. */
  client: pg.PoolClient;
  /** Aborted when stop() is called: finish the current batch and return. */
  signal: AbortSignal;
  log: Logger;
}

/** What a run reports (counts etc.), stored with the run in core.worker_runs. */
export type RunDetails = Record<string, unknown>;

export interface WorkerDefinition {
  name: string;
  /** Seconds between the end of one tick and the start of the next (fractions allowed, for tests). */
  intervalSeconds: number;
  lock: WorkerLock;
  enabled: boolean;
  /** Shown as the `reason` of the `disabled` check, e.g. the variable that switched it off. */
  disabledReason?: string;
  run(tick: Tick): Promise<RunDetails | void>;
}

export interface FrameworkOptions {
  /** Identifies this process in core.worker_status; default hostname:pid:random. */
  replicaId?: string;
  /** Added to 2 × interval before a heartbeat counts as stale (default 60 s). */
  graceSeconds?: number;
  /** Upper bound of the failure backoff (default 30 min, never below the interval). */
  maxBackoffSeconds?: number;
  /** Delay before a worker's first tick; default min(interval, 5 min) minus up to 20 % jitter. */
  firstRunDelaySeconds?: number;
  /** Consecutive failures after which the check fails even while the heartbeat is fresh (default 3). */
  failedAfterConsecutive?: number;
  /** Runs kept per worker in core.worker_runs (default 100). */
  keepRuns?: number;
}

export interface WorkerState {
  name: string;
  enabled: boolean;
  intervalSeconds: number;
  lockKind: WorkerLock['kind'];
  running: boolean;
  firstRunAt: Date | null;
  nextRunAt: Date | null;
  lastStartedAt: Date | null;
  lastFinishedAt: Date | null;
  lastSucceededAt: Date | null;
  lastSkippedAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
  lastOutcome: TickOutcome | null;
  lastDetails: RunDetails | null;
  consecutiveFailures: number;
  runs: number;
  failures: number;
  skips: number;
  lastDurationMs: number | null;
  currentBackoffMs: number;
}

export type TickOutcome = 'succeeded' | 'failed' | 'skipped';

export interface Workers {
  start(): void;
  /** Stops scheduling, asks the running ticks to finish, waits for them (bounded), releases locks. */
  stop(timeoutMs: number): Promise<void>;
  checks(): Record<string, Check>;
  /** Run one tick of `name` now (after any tick in flight); for tests and admin tooling. */
  runOnce(name: string): Promise<TickOutcome>;
  state(name: string): WorkerState | undefined;
  readonly replicaId: string;
}

export interface FrameworkDeps { pool: pg.Pool; log: Logger; registry: Registry }

const DEFAULT_GRACE_S = 60;
const DEFAULT_MAX_BACKOFF_S = 1800;
const MAX_FIRST_DELAY_S = 300;

export function defaultReplicaId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

function workerMetrics(registry: Registry) {
  // Several frameworks may share a registry (tests): reuse what is already registered.
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  const labelNames = ['worker'] as const;
  return {
    runs: get('strathon_worker_runs_total', () => new Counter({ name: 'strathon_worker_runs_total', help: 'Worker ticks that ran (succeeded or failed)', labelNames, registers })),
    failures: get('strathon_worker_failures_total', () => new Counter({ name: 'strathon_worker_failures_total', help: 'Worker ticks that failed', labelNames, registers })),
    skips: get('strathon_worker_skipped_total', () => new Counter({ name: 'strathon_worker_skipped_total', help: 'Worker ticks skipped because another replica held the lock', labelNames, registers })),
    duration: get('strathon_worker_duration_seconds', () => new Histogram({ name: 'strathon_worker_duration_seconds', help: 'Worker tick duration', labelNames, buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300], registers })),
    lastSuccess: get('strathon_worker_last_success_timestamp_seconds', () => new Gauge({ name: 'strathon_worker_last_success_timestamp_seconds', help: 'Unix time of the last successful tick', labelNames, registers })),
  };
}

// One statement: upsert this replica's heartbeat row, append the run (if one ran) and trim old runs
// (the DELETE does not see the row inserted beside it, hence keep − 1 older ones).
const PERSIST_SQL = `
WITH status AS (
  INSERT INTO core.worker_status AS w (worker, replica_id, enabled, interval_seconds, lock_kind, last_started_at, last_finished_at,
    last_succeeded_at, last_skipped_at, last_error, last_error_at, consecutive_failures, runs, failures, skips, last_duration_ms,
    next_run_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())
  ON CONFLICT (worker, replica_id) DO UPDATE SET enabled = excluded.enabled, interval_seconds = excluded.interval_seconds,
    lock_kind = excluded.lock_kind, last_started_at = excluded.last_started_at, last_finished_at = excluded.last_finished_at,
    last_succeeded_at = excluded.last_succeeded_at, last_skipped_at = excluded.last_skipped_at, last_error = excluded.last_error,
    last_error_at = excluded.last_error_at, consecutive_failures = excluded.consecutive_failures, runs = excluded.runs,
    failures = excluded.failures, skips = excluded.skips, last_duration_ms = excluded.last_duration_ms,
    next_run_at = excluded.next_run_at, updated_at = now()
), run AS (
  INSERT INTO core.worker_runs (worker, replica_id, started_at, finished_at, duration_ms, outcome, error, details)
  SELECT $1, $2, $6, $7, $16, $18, $19, $20::jsonb WHERE $18::text IS NOT NULL
)
DELETE FROM core.worker_runs
WHERE $18::text IS NOT NULL AND worker = $1
  AND id <= (SELECT id FROM core.worker_runs WHERE worker = $1 ORDER BY id DESC OFFSET $21::integer - 1 LIMIT 1)`;

interface Slot {
  def: WorkerDefinition;
  state: WorkerState;
  timer: NodeJS.Timeout | undefined;
  inFlight: Promise<TickOutcome> | undefined;
  client: pg.PoolClient | undefined;
  backendPid: number | undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)) || 'unknown error';
const jitter = (ms: number, spread = 0.2) => Math.round(ms * (1 - Math.random() * spread));

export function createFramework(deps: FrameworkDeps, definitions: WorkerDefinition[], opts: FrameworkOptions = {}): Workers {
  const replicaId = opts.replicaId ?? defaultReplicaId();
  const graceMs = (opts.graceSeconds ?? DEFAULT_GRACE_S) * 1000;
  const failedAfter = opts.failedAfterConsecutive ?? 3;
  const keepRuns = Math.max(1, opts.keepRuns ?? 100);
  const metrics = workerMetrics(deps.registry);
  const abort = new AbortController();
  const createdAt = new Date();
  let started = false;
  let stopped = false;

  const slots = new Map<string, Slot>();
  for (const def of definitions) {
    if (slots.has(def.name)) throw new Error(`duplicate worker name ${def.name}`);
    if (!(def.intervalSeconds > 0)) throw new Error(`worker ${def.name}: interval must be > 0`);
    slots.set(def.name, {
      def, timer: undefined, inFlight: undefined, client: undefined, backendPid: undefined,
      state: {
        name: def.name, enabled: def.enabled, intervalSeconds: def.intervalSeconds, lockKind: def.lock.kind, running: false,
        firstRunAt: null, nextRunAt: null, lastStartedAt: null, lastFinishedAt: null, lastSucceededAt: null, lastSkippedAt: null,
        lastError: null, lastErrorAt: null, lastOutcome: null, lastDetails: null, consecutiveFailures: 0, runs: 0, failures: 0,
        skips: 0, lastDurationMs: null, currentBackoffMs: 0,
      },
    });
  }

  const intervalMs = (s: Slot) => s.def.intervalSeconds * 1000;
  const backoffMs = (s: Slot, failures: number) => {
    const cap = Math.max(intervalMs(s), (opts.maxBackoffSeconds ?? DEFAULT_MAX_BACKOFF_S) * 1000);
    return Math.min(intervalMs(s) * 2 ** failures, cap);
  };

  const persist = async (s: Slot, run?: { outcome: 'succeeded' | 'failed'; error: string | null; details: RunDetails | null }) => {
    const st = s.state;
    try {
      await deps.pool.query(PERSIST_SQL, [
        st.name, replicaId, st.enabled, st.intervalSeconds, st.lockKind, st.lastStartedAt, st.lastFinishedAt, st.lastSucceededAt,
        st.lastSkippedAt, st.lastError, st.lastErrorAt, st.consecutiveFailures, st.runs, st.failures, st.skips, st.lastDurationMs,
        st.nextRunAt, run?.outcome ?? null, run?.error ?? null, run?.details ? JSON.stringify(run.details) : null, keepRuns,
      ]);
    } catch (err) {
      deps.log.warn({ worker: st.name, err: errorText(err) }, 'could not record worker status');
    }
  };

  const schedule = (s: Slot, delayMs: number) => {
    if (stopped) return;
    s.state.nextRunAt = new Date(Date.now() + delayMs);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      void runTick(s).then((outcome) => {
        const next = outcome === 'failed' ? jitter(s.state.currentBackoffMs) : intervalMs(s);
        schedule(s, next);
      });
    }, delayMs);
    s.timer.unref();
  };

  // One tick: check out a connection, take the lock (or skip), run, record. Never throws.
  const tick = async (s: Slot): Promise<TickOutcome> => {
    const st = s.state;
    const log = deps.log.child({ worker: st.name });
    const t0 = performance.now();
    const startedAt = new Date();
    let client: pg.PoolClient | undefined;
    let locked = false;
    let broken: Error | undefined;
    const onError = (e: Error) => { broken = e; };
    let outcome: TickOutcome = 'failed';
    let error: string | null = null;
    let details: RunDetails | null = null;
    let runFinishedAt: Date | undefined;
    st.running = true;
    try {
      client = await deps.pool.connect();
      s.client = client;
      client.on('error', onError);
      if (s.def.lock.kind === 'advisory') {
        const r = await client.query<{ pid: number; ok: boolean }>('SELECT pg_backend_pid() AS pid, pg_try_advisory_lock(hashtext($1)) AS ok', [s.def.lock.key]);
        locked = r.rows[0]?.ok === true;
        s.backendPid = r.rows[0]?.pid;
      } else {
        s.backendPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      }
      if (s.def.lock.kind === 'advisory' && !locked) {
        outcome = 'skipped';
      } else {
        // A run's recorded interval is exactly the time it held the lock, so runs of one locked
        // worker across replicas can be checked for overlap from core.worker_runs.
        st.lastStartedAt = new Date();
        details = (await s.def.run({ worker: st.name, client, signal: abort.signal, log })) ?? null;
        runFinishedAt = new Date();
        outcome = 'succeeded';
      }
    } catch (err) {
      runFinishedAt = new Date();
      outcome = 'failed';
      error = errorText(err);
      if (!st.lastStartedAt || st.lastStartedAt < startedAt) st.lastStartedAt = startedAt;
      log.error({ err, consecutive_failures: st.consecutiveFailures + 1 }, 'worker run failed');
    } finally {
      if (client) {
        if (locked && !broken && outcome !== 'failed') {
          await client.query('SELECT pg_advisory_unlock(hashtext($1))', [(s.def.lock as { key: string }).key]).catch((e: Error) => { broken = e; });
        }
        client.off('error', onError);
        // After a failure the session may hold an open transaction or the lock: close it, never reuse it
        // (closing the session is what releases a session-level advisory lock for sure).
        if (s.client === client) client.release(broken ?? (outcome === 'failed' ? true : undefined));
        s.client = undefined;
        s.backendPid = undefined;
      }
      st.running = false;
    }
    const now = runFinishedAt ?? new Date();
    const durationMs = Math.round((performance.now() - t0) * 10) / 10;
    st.lastOutcome = outcome;
    if (outcome === 'skipped') {
      st.skips++;
      st.lastSkippedAt = now;
      metrics.skips.inc({ worker: st.name });
      log.debug('lock held by another replica: tick skipped');
      await persist(s);
      return outcome;
    }
    st.runs++;
    st.lastFinishedAt = now;
    st.lastDurationMs = durationMs;
    metrics.runs.inc({ worker: st.name });
    metrics.duration.observe({ worker: st.name }, durationMs / 1000);
    if (outcome === 'succeeded') {
      st.lastSucceededAt = now;
      st.consecutiveFailures = 0;
      st.currentBackoffMs = 0;
      st.lastDetails = details;
      metrics.lastSuccess.set({ worker: st.name }, now.getTime() / 1000);
      log.debug({ duration_ms: durationMs, ...details }, 'worker run succeeded');
    } else {
      st.failures++;
      st.consecutiveFailures++;
      st.lastError = error;
      st.lastErrorAt = now;
      st.currentBackoffMs = backoffMs(s, st.consecutiveFailures);
      metrics.failures.inc({ worker: st.name });
    }
    await persist(s, { outcome, error, details });
    return outcome;
  };

  // Ticks of one worker never overlap within a process (a runOnce() queues behind a scheduled tick).
  const runTick = (s: Slot): Promise<TickOutcome> => {
    const prev = s.inFlight;
    const p = (prev ? prev.then(() => tick(s)) : tick(s)).finally(() => { if (s.inFlight === p) s.inFlight = undefined; });
    s.inFlight = p;
    return p;
  };

  const check = (s: Slot, now: number): Check => {
    const st = s.state;
    if (!st.enabled) return { status: 'disabled', reason: s.def.disabledReason ?? 'disabled by configuration' };
    const freshMs = 2 * intervalMs(s) + graceMs;
    const heartbeat = Math.max(st.lastSucceededAt?.getTime() ?? 0, st.lastSkippedAt?.getTime() ?? 0);
    // Before its first run a worker is measured from when that run was due.
    const since = heartbeat || (st.firstRunAt ?? createdAt).getTime();
    const info = { last_succeeded_at: st.lastSucceededAt?.toISOString() ?? null, consecutive_failures: st.consecutiveFailures };
    const lastError = st.lastError ? `; last error: ${st.lastError}` : '';
    if (st.consecutiveFailures >= failedAfter) {
      return { status: 'failed', reason: `${st.consecutiveFailures} consecutive failures${lastError}`, ...info };
    }
    if (st.consecutiveFailures > 0 && st.currentBackoffMs > freshMs) {
      return { status: 'failed', reason: `failed; next retry in ${Math.round(st.currentBackoffMs / 1000)} s exceeds the ${Math.round(freshMs / 1000)} s heartbeat window${lastError}`, ...info };
    }
    if (now - since > freshMs) {
      const age = Math.round((now - since) / 1000);
      const what = st.running ? `current run has not finished; ` : '';
      return { status: 'failed', reason: `heartbeat stale: ${what}no successful run for ${age} s (expected every ${st.intervalSeconds} s)${lastError}`, ...info };
    }
    return { status: 'ok', ...info, ...(st.lastOutcome === 'skipped' ? { lock_held_by_other_replica: true } : {}) };
  };

  return {
    replicaId,
    start() {
      if (started || stopped) return;
      started = true;
      for (const s of slots.values()) {
        if (!s.def.enabled) {
          void persist(s);
          continue;
        }
        const first = opts.firstRunDelaySeconds !== undefined
          ? opts.firstRunDelaySeconds * 1000
          : jitter(Math.min(intervalMs(s), MAX_FIRST_DELAY_S * 1000));
        s.state.firstRunAt = new Date(Date.now() + first);
        schedule(s, first);
      }
      deps.log.debug({ replica_id: replicaId, workers: [...slots.keys()] }, 'workers started');
    },
    async stop(timeoutMs: number) {
      if (stopped) return;
      stopped = true;
      abort.abort();
      for (const s of slots.values()) {
        clearTimeout(s.timer);
        s.timer = undefined;
        s.state.nextRunAt = null;
      }
      const running = [...slots.values()].filter((s) => s.inFlight);
      if (!running.length) return;
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        Promise.all(running.map((s) => s.inFlight)).then(() => true),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(false), Math.max(0, timeoutMs)); }),
      ]);
      clearTimeout(timer);
      if (finished) return;
      // Out of time: end the ticks' sessions (a busy backend would not notice a closed socket until
      // its query finished), which cancels their queries and frees their locks.
      await Promise.all(running.map(async (s) => {
        const c = s.client;
        if (!c) return;
        s.client = undefined;
        deps.log.warn({ worker: s.def.name, timeout_ms: timeoutMs }, 'worker still running at shutdown: ending its session');
        if (s.backendPid) {
          await withTimeout(deps.pool.query('SELECT pg_terminate_backend($1)', [s.backendPid]), 1000)
            .catch((err: unknown) => deps.log.warn({ worker: s.def.name, err: errorText(err) }, 'could not end the worker session'));
        }
        c.release(new Error('worker stopped'));
      }));
    },
    checks() {
      const now = Date.now();
      return Object.fromEntries([...slots.values()].map((s) => [s.def.name, check(s, now)]));
    },
    async runOnce(name: string) {
      const s = slots.get(name);
      if (!s) throw new Error(`no worker named ${name}`);
      if (stopped) throw new Error('workers are stopped');
      return runTick(s);
    },
    state(name: string) {
      const s = slots.get(name);
      return s ? { ...s.state } : undefined;
    },
  };
}

/**
 * Run `fn` in a transaction on `client` with local statement/lock timeouts, so a worker never holds
 * locks that ingest waits on for long. Rolls back on error (and rethrows).
 */
export async function inTransaction<T>(
  client: pg.PoolClient, limits: { statementTimeoutMs: number; lockTimeoutMs: number }, fn: () => Promise<T>,
): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`,
      [`${Math.round(limits.statementTimeoutMs)}ms`, `${Math.round(limits.lockTimeoutMs)}ms`]);
    const out = await fn();
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
