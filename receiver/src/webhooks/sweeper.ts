// webhook_sweeper_task (SPEC §9, §11): claims due deliveries with FOR UPDATE SKIP LOCKED, POSTs
// them and records the outcome. Claiming marks a row 'delivering' with a lease (next_attempt_at =
// lease end) and counts the attempt, in its own short statement, so no transaction stays open
// across HTTP and a replica that dies mid-attempt leaves rows another replica retries after the
// lease. Outcomes are written only by the holder of the claim (fenced by the attempt number).
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
    queueDue: get('strathon_webhook_queue_due', () => new Gauge({
      name: 'strathon_webhook_queue_due', help: 'Webhook deliveries due now (as of the last sweep of this replica)', registers,
    })),
  };
}
type WebhookMetrics = ReturnType<typeof webhookMetrics>;

// ---- statements ---------------------------------------------------------------------------------

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
  e.type, e.payload, e.created_at AS event_created_at`;

interface ClaimedRow {
  project_id: string; id: string; channel_id: string; webhook_id: string; attempts: number; url: string;
  secret_enc: string; previous_secret_enc: string | null; type: string; payload: unknown; event_created_at: Date;
}

// Each outcome is written only while this claim still holds (same status and attempt number).
const SUCCEEDED_SQL = `
UPDATE core.webhook_deliveries
SET status = 'succeeded', delivered_at = now(), next_attempt_at = NULL, last_status_code = $4, last_error = NULL
WHERE project_id = $1 AND id = $2 AND status = 'delivering' AND attempts = $3`;

const FAILED_SQL = `
UPDATE core.webhook_deliveries
SET status = CASE WHEN $6 THEN 'dead' ELSE 'pending' END,
    next_attempt_at = CASE WHEN $6 THEN NULL ELSE now() + make_interval(secs => $7) END,
    last_status_code = $4, last_error = $5
WHERE project_id = $1 AND id = $2 AND status = 'delivering' AND attempts = $3`;

// Shutdown: the attempt was abandoned by us, not failed by the endpoint; give it back uncounted.
const RELEASED_SQL = `
UPDATE core.webhook_deliveries
SET status = 'pending', attempts = attempts - 1, next_attempt_at = now()
WHERE project_id = $1 AND id = $2 AND status = 'delivering' AND attempts = $3`;

const DUE_COUNT_SQL = `
SELECT count(*)::int AS n
FROM core.webhook_deliveries d
JOIN core.notification_channels c ON c.project_id = d.project_id AND c.id = d.channel_id
WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= now() AND c.enabled`;

// ---- the worker ---------------------------------------------------------------------------------

export interface SweeperDeps { config: Pick<Config, 'env' | 'encryptionKey' | 'webhookAllowPrivate' | 'webhookMaxAttempts' | 'version'>; metrics: { registry: Registry } }

type Outcome = 'succeeded' | 'failed' | 'dead' | 'released' | 'lost';

export interface SweepResult { claimed: number; succeeded: number; failed: number; dead: number; released: number; due_after: number }

/** One sweep on `client`: dead-letter the exhausted, then claim and send batches until none is due. */
export async function sweepOnce(client: pg.PoolClient, deps: SweeperDeps, log: Logger, signal: AbortSignal, options: WebhookSweeperOptions = {}): Promise<SweepResult> {
  const o = { ...DEFAULTS, ...options };
  const metrics = webhookMetrics(deps.metrics.registry);
  const maxAttempts = deps.config.webhookMaxAttempts;
  const result: SweepResult = { claimed: 0, succeeded: 0, failed: 0, dead: 0, released: 0, due_after: 0 };
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
    await query(RELEASED_SQL, keys);
    return 'released';
  }
  c.metrics.duration.observe(result.durationMs / 1000);
  if (result.ok) {
    const r = await query(SUCCEEDED_SQL, [...keys, result.statusCode]);
    c.metrics.deliveries.inc({ outcome: 'succeeded' });
    c.log.debug({ ...where, status_code: result.statusCode, duration_ms: Math.round(result.durationMs) }, 'webhook delivered');
    return r.rowCount ? 'succeeded' : 'lost';
  }
  const exhausted = row.attempts >= c.maxAttempts;
  const delay = exhausted ? 0 : backoffMs(row.attempts, c.o.backoffBaseMs, c.o.backoffCapMs);
  const r = await query(FAILED_SQL, [...keys, result.statusCode, result.error, exhausted, delay / 1000]);
  c.metrics.deliveries.inc({ outcome: exhausted ? 'dead' : 'failed' });
  if (exhausted) {
    c.log.warn({ ...where, status_code: result.statusCode, err: result.error }, 'webhook delivery dead-lettered after its last attempt');
  } else {
    c.log.info({ ...where, status_code: result.statusCode, err: result.error, retry_in_ms: delay }, 'webhook delivery attempt failed');
  }
  if (!r.rowCount) return 'lost';
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
