// webhook_sweeper_task (SPEC §9, §11): claims due deliveries with FOR UPDATE SKIP LOCKED, POSTs
// them and records the outcome. Claiming marks a row 'delivering' with a lease (next_attempt_at =
// lease end) and counts the attempt, in its own short statement, so no transaction stays open
// across HTTP. The claimer also holds a session advisory lock per claimed row until the outcome is
// written: a replica that dies mid-attempt loses its connections and so its locks, and the next
// sweep of any replica takes such orphaned claims back at once instead of after the lease (the lease
// stays the fallback for a claimer that is alive but stuck). Outcomes are written only by the
// holder of the claim (fenced by the attempt number).
import { setMaxListeners } from 'node:events';
import type pg from 'pg';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { Tick, WorkerDefinition } from '../workers/framework.js';
import { attemptDelivery, type AttemptResult } from './deliver.js';
import { SecretBox, signatureHeader } from './signing.js';

export const WEBHOOK_SWEEPER_TASK = 'webhook_sweeper_task';

/** Tuning; the defaults are the SPEC's. Tests shorten the timeout and the backoff. */
export interface WebhookSweeperOptions {
  /** Per attempt, everything included (default 10 s). */
  timeoutMs?: number;
  /** Delay after the first failed attempt, doubled after each further one (default 1 s). */
  backoffBaseMs?: number;
  /** Longest delay between attempts (default 1 h). */
  backoffCapMs?: number;
  /** Response bytes read before the attempt is failed (default 64 KiB). */
  maxResponseBytes?: number;
  /** Deliveries claimed (and sent concurrently) per batch (default 25). */
  batchSize?: number;
  /** A tick stops claiming new batches after this long (default 30 s). */
  tickBudgetMs?: number;
}

const DEFAULTS: Required<WebhookSweeperOptions> = {
  timeoutMs: 10_000, backoffBaseMs: 1000, backoffCapMs: 3_600_000, maxResponseBytes: 64 * 1024, batchSize: 25, tickBudgetMs: 30_000,
};

/** ±20 % jitter around base × 2^(attempt−1), capped. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

// ---- metrics ------------------------------------------------------------------------------------

export function webhookMetrics(registry: Registry) {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  return {
    deliveries: get('strathon_webhook_deliveries_total', () => new Counter({
      name: 'strathon_webhook_deliveries_total', help: 'Webhook delivery attempts by outcome (succeeded, failed = will retry, dead = gave up)', labelNames: ['outcome'] as const, registers,
    })),
    duration: get('strathon_webhook_delivery_duration_seconds', () => new Histogram({
      name: 'strathon_webhook_delivery_duration_seconds', help: 'Duration of webhook delivery attempts', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    })),
    // From the change that caused the event (its commit time in Postgres) to the receiver's 2xx,
    // retries included: what a subscriber experiences.
    latency: get('strathon_webhook_event_to_delivery_seconds', () => new Histogram({
      name: 'strathon_webhook_event_to_delivery_seconds', help: 'Time from an event being recorded to its successful delivery, retries included',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600, 3600], registers,
    })),
    queueDue: get('strathon_webhook_queue_due', () => new Gauge({
      name: 'strathon_webhook_queue_due', help: 'Webhook deliveries due now (as of the last sweep of this replica)', registers,
    })),
  };
}
type WebhookMetrics = ReturnType<typeof webhookMetrics>;

// ---- statements ---------------------------------------------------------------------------------

// Advisory locks (two-int4 form, so no clash with the one-bigint locks of the worker framework):
// class CLAIM_LOCK_CLASS, object hashtext(delivery id). Held on the claiming session.
const CLAIM_LOCK_CLASS = 5_770_001;
const claimLockKey = (idSql: string) => `${CLAIM_LOCK_CLASS}, hashtext(${idSql}::text)`;

// Claims whose claimer is gone (its session, and so its lock, ended): due now. SKIP LOCKED leaves a
// claim being committed alone (its lock is taken before it commits).
const RECOVER_ORPHANS_SQL = `
WITH orphaned AS (
  SELECT d.project_id, d.id
  FROM core.webhook_deliveries d
  WHERE d.status = 'delivering' AND d.next_attempt_at > now()
    AND NOT EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = ${CLAIM_LOCK_CLASS}::oid AND l.objid = hashtext(d.id::text)::oid AND l.objsubid = 2)
  FOR UPDATE OF d SKIP LOCKED
)
UPDATE core.webhook_deliveries d SET next_attempt_at = now()
FROM orphaned o WHERE d.project_id = o.project_id AND d.id = o.id`;

/**
 * An outcome statement (an UPDATE whose $2 is the delivery id) that also releases the claim's lock,
 * in the same round trip: the lock goes only after the UPDATE ran (it holds the row lock until its
 * commit, so recovery cannot see the claim unlocked and still 'delivering'). `$n` says whether
 * this session holds the lock. Answers { n: rows updated }.
 */
function releasingClaim(update: string, n: number): string {
  return `WITH outcome AS (${update} RETURNING 1)
SELECT o.n, CASE WHEN $${n}::boolean THEN pg_advisory_unlock(${claimLockKey('$2::uuid')}) END AS unlocked
FROM (SELECT count(*)::int AS n FROM outcome) o`;
}

// Rows out of attempts: an abandoned final attempt (its lease ran out) or a budget lowered by config.
const DEAD_LETTER_EXHAUSTED_SQL = `
UPDATE core.webhook_deliveries
SET status = 'dead', next_attempt_at = NULL,
    last_error = CASE WHEN status = 'delivering' THEN 'last attempt did not finish within its lease (replica stopped?)' ELSE last_error END
WHERE status IN ('pending', 'delivering') AND next_attempt_at <= now() AND attempts >= $1`;

const CLAIM_SQL = `
WITH due AS (
  SELECT d.project_id, d.id
  FROM core.webhook_deliveries d
  JOIN core.notification_channels c ON c.project_id = d.project_id AND c.id = d.channel_id
  WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= now() AND d.attempts < $2 AND c.enabled
  ORDER BY d.next_attempt_at
  LIMIT $1
  FOR UPDATE OF d SKIP LOCKED
)
UPDATE core.webhook_deliveries d
SET status = 'delivering', attempts = d.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + make_interval(secs => $3)
FROM due, core.notification_channels c, core.webhook_events e
WHERE d.project_id = due.project_id AND d.id = due.id
  AND c.project_id = d.project_id AND c.id = d.channel_id
  AND e.project_id = d.project_id AND e.id = d.event_id
RETURNING d.project_id, d.id, d.channel_id, d.webhook_id, d.attempts, c.url, c.secret_enc,
  CASE WHEN c.previous_secret_expires_at > now() THEN c.previous_secret_enc END AS previous_secret_enc,
  e.type, e.payload, e.created_at AS event_created_at, pg_try_advisory_lock(${claimLockKey('d.id')}) AS locked`;

interface ClaimedRow {
  project_id: string; id: string; channel_id: string; webhook_id: string; attempts: number; url: string;
  secret_enc: string; previous_secret_enc: string | null; type: string; payload: unknown; event_created_at: Date; locked: boolean;
}

// Each outcome is written only while this claim still holds (same status and attempt number).
const SUCCEEDED_SQL = releasingClaim(`
UPDATE core.webhook_deliveries
SET status = 'succeeded', delivered_at = now(), next_attempt_at = NULL, last_status_code = $4, last_error = NULL
WHERE project_id = $1 AND id = $2 AND status = 'delivering' AND attempts = $3`, 5);

const FAILED_SQL = releasingClaim(`
UPDATE core.webhook_deliveries
SET status = CASE WHEN $6 THEN 'dead' ELSE 'pending' END,
    next_attempt_at = CASE WHEN $6 THEN NULL ELSE now() + make_interval(secs => $7) END,
    last_status_code = $4, last_error = $5
WHERE project_id = $1 AND id = $2 AND status = 'delivering' AND attempts = $3`, 8);

// Shutdown: the attempt was abandoned by us, not failed by the endpoint; give it back uncounted.
const RELEASED_SQL = releasingClaim(`
UPDATE core.webhook_deliveries
SET status = 'pending', attempts = attempts - 1, next_attempt_at = now()
WHERE project_id = $1 AND id = $2 AND status = 'delivering' AND attempts = $3`, 4);

const DUE_COUNT_SQL = `
SELECT count(*)::int AS n
FROM core.webhook_deliveries d
JOIN core.notification_channels c ON c.project_id = d.project_id AND c.id = d.channel_id
WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= now() AND c.enabled`;

// ---- the worker ---------------------------------------------------------------------------------

export interface SweeperDeps { config: Pick<Config, 'env' | 'encryptionKey' | 'webhookAllowPrivate' | 'webhookMaxAttempts' | 'version'>; metrics: { registry: Registry } }

type Outcome = 'succeeded' | 'failed' | 'dead' | 'released' | 'lost';

export interface SweepResult { claimed: number; succeeded: number; failed: number; dead: number; released: number; recovered: number; due_after: number }

/** One sweep on `client`: take back orphaned claims, dead-letter the exhausted, then claim and send batches until none is due. */
export async function sweepOnce(client: pg.PoolClient, deps: SweeperDeps, log: Logger, signal: AbortSignal, options: WebhookSweeperOptions = {}): Promise<SweepResult> {
  const o = { ...DEFAULTS, ...options };
  const metrics = webhookMetrics(deps.metrics.registry);
  const maxAttempts = deps.config.webhookMaxAttempts;
  const result: SweepResult = { claimed: 0, succeeded: 0, failed: 0, dead: 0, released: 0, recovered: 0, due_after: 0 };
  const recovered = await client.query(RECOVER_ORPHANS_SQL);
  result.recovered = recovered.rowCount ?? 0;
  if (result.recovered) log.warn({ deliveries: result.recovered }, 'webhook deliveries taken back from a claimer that is gone (replica stopped mid-attempt?)');
  const dead = await client.query(DEAD_LETTER_EXHAUSTED_SQL, [maxAttempts]);
  if (dead.rowCount) log.warn({ deliveries: dead.rowCount }, 'webhook deliveries dead-lettered: attempts exhausted');

  if (!deps.config.encryptionKey) {
    const due = (await client.query<{ n: number }>(DUE_COUNT_SQL)).rows[0]?.n ?? 0;
    metrics.queueDue.set(due);
    if (due > 0) throw new Error(`${due} webhook deliveries are due but STRATHON_ENCRYPTION_KEY is not set: their signing secrets cannot be read`);
    return result;
  }
  const box = new SecretBox(deps.config.encryptionKey);
  const leaseSeconds = o.timeoutMs / 1000 + 60;
  const started = Date.now();
  // One listener on the framework's stop signal; the attempts of a batch listen to this one.
  const stop = new AbortController();
  setMaxListeners(o.batchSize + 10, stop.signal);
  const onStop = () => stop.abort();
  signal.addEventListener('abort', onStop, { once: true });
  if (signal.aborted) stop.abort();
  const query = serialized(client);
  // Claims and outcomes need not wait for their WAL flush: one lost in a Postgres crash only means
  // the delivery is sent again, under the same webhook-id (at-least-once, as after any crash). The
  // events themselves are committed synchronously by the changes that write them.
  await client.query('SET synchronous_commit = off');
  try {
    while (!stop.signal.aborted && Date.now() - started < o.tickBudgetMs) {
      const claimed = (await query<ClaimedRow>(CLAIM_SQL, [o.batchSize, maxAttempts, leaseSeconds])).rows;
      if (claimed.length === 0) break;
      result.claimed += claimed.length;
      const outcomes = await Promise.all(claimed.map((row) => deliverClaimed(query, row, { box, deps, log, metrics, signal: stop.signal, o, maxAttempts })));
      for (const outcome of outcomes) if (outcome !== 'lost') result[outcome]++;
    }
  } finally {
    signal.removeEventListener('abort', onStop);
    await client.query('RESET synchronous_commit').catch(() => undefined); // a broken connection is dropped anyway
  }
  result.due_after = (await client.query<{ n: number }>(DUE_COUNT_SQL)).rows[0]?.n ?? 0;
  metrics.queueDue.set(result.due_after);
  return result;
}

type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>;

/** The concurrent attempts of a batch share the tick's connection: their statements take turns. */
function serialized(client: pg.PoolClient): Query {
  let tail: Promise<unknown> = Promise.resolve();
  return <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
    const p = tail.then(() => client.query<R>(text, values));
    tail = p.catch(() => undefined);
    return p;
  };
}

interface DeliverContext {
  box: SecretBox; deps: SweeperDeps; log: Logger; metrics: WebhookMetrics; signal: AbortSignal;
  o: Required<WebhookSweeperOptions>; maxAttempts: number;
}

async function deliverClaimed(query: Query, row: ClaimedRow, c: DeliverContext): Promise<Outcome> {
  const keys = [row.project_id, row.id, row.attempts];
  const where = { project_id: row.project_id, channel_id: row.channel_id, delivery_id: row.id, webhook_id: row.webhook_id, attempt: row.attempts };
  const body = JSON.stringify({ type: row.type, timestamp: row.event_created_at.toISOString(), data: row.payload });
  let result: AttemptResult;
  try {
    const secrets = [c.box.open(row.secret_enc), ...(row.previous_secret_enc ? [c.box.open(row.previous_secret_enc)] : [])];
    const timestamp = Math.floor(Date.now() / 1000);
    result = await attemptDelivery({
      url: row.url,
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': `Strathon-Webhooks/${c.deps.config.version}`,
        'webhook-id': row.webhook_id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(secrets, row.webhook_id, timestamp, body),
      },
      allowPrivate: c.deps.config.webhookAllowPrivate,
      requireHttps: c.deps.config.env === 'production',
      timeoutMs: c.o.timeoutMs,
      maxResponseBytes: c.o.maxResponseBytes,
      signal: c.signal,
    });
  } catch {
    // Only opening the secret can throw here: the key changed, or the row was tampered with.
    result = { ok: false, aborted: false, statusCode: null, error: 'signing secret cannot be decrypted with STRATHON_ENCRYPTION_KEY', durationMs: 0 };
  }

  if (result.aborted) {
    await query(RELEASED_SQL, [...keys, row.locked]);
    return 'released';
  }
  c.metrics.duration.observe(result.durationMs / 1000);
  if (result.ok) {
    const r = await query<{ n: number }>(SUCCEEDED_SQL, [...keys, result.statusCode, row.locked]);
    c.metrics.deliveries.inc({ outcome: 'succeeded' });
    c.metrics.latency.observe(Math.max(0, Date.now() - row.event_created_at.getTime()) / 1000);
    c.log.debug({ ...where, status_code: result.statusCode, duration_ms: Math.round(result.durationMs) }, 'webhook delivered');
    return r.rows[0]?.n ? 'succeeded' : 'lost';
  }
  const exhausted = row.attempts >= c.maxAttempts;
  const delay = exhausted ? 0 : backoffMs(row.attempts, c.o.backoffBaseMs, c.o.backoffCapMs);
  const r = await query<{ n: number }>(FAILED_SQL, [...keys, result.statusCode, result.error, exhausted, delay / 1000, row.locked]);
  c.metrics.deliveries.inc({ outcome: exhausted ? 'dead' : 'failed' });
  if (exhausted) {
    c.log.warn({ ...where, status_code: result.statusCode, err: result.error }, 'webhook delivery dead-lettered after its last attempt');
  } else {
    c.log.info({ ...where, status_code: result.statusCode, err: result.error, retry_in_ms: delay }, 'webhook delivery attempt failed');
  }
  if (!r.rows[0]?.n) return 'lost';
  return exhausted ? 'dead' : 'failed';
}

export function webhookSweeperWorker(deps: SweeperDeps, opts: { intervalSeconds: number } & WebhookSweeperOptions): WorkerDefinition {
  const { intervalSeconds, ...tuning } = opts;
  return {
    name: WEBHOOK_SWEEPER_TASK,
    intervalSeconds,
    lock: { kind: 'none' },
    enabled: true,
    run: async (tick: Tick) => ({ ...(await sweepOnce(tick.client, deps, tick.log, tick.signal, tuning)) }),
  };
}
