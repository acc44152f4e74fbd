// Webhook outbox (SPEC §9): events are written in the same transaction as the change that causes
// them, with one delivery row per receiving channel; the sweeper delivers them. NOTIFY wakes the
// sweepers of every replica — Postgres sends it at commit, and never for a rolled-back change.
import type pg from 'pg';

export const EVENT_TYPES = [
  'halt.created', 'halt.cleared', 'budget.threshold', 'budget.exceeded', 'policy.matched', 'approval.requested',
  'approval.decided', 'api_key.created', 'api_key.revoked', 'audit.verification_failed', 'webhook.test',
] as const;
export type WebhookEventType = (typeof EVENT_TYPES)[number];

export interface OutboxEvent { projectId: string; type: WebhookEventType; data: Record<string, unknown> }

/** The channel LISTENed to by every receiver's sweeper. */
export const NOTIFY_CHANNEL = 'strathon_webhooks';

export const isEventType = (v: unknown): v is WebhookEventType => typeof v === 'string' && (EVENT_TYPES as readonly string[]).includes(v);

// One statement: the event is stored only when some channel receives it (an event nobody listens
// to would only be garbage), then one delivery per channel, then the wake-up.
// With $4 (a channel id) the event goes to that channel alone, whatever it subscribes to (tests).
const ENQUEUE_SQL = `
WITH targets AS (
  SELECT id FROM core.notification_channels
  WHERE project_id = $1
    AND (CASE WHEN $4::uuid IS NULL THEN enabled AND (cardinality(events) = 0 OR $2::text = ANY (events)) ELSE id = $4::uuid END)
), event AS (
  INSERT INTO core.webhook_events (project_id, type, payload)
  SELECT $1, $2, $3::jsonb WHERE EXISTS (SELECT 1 FROM targets)
  RETURNING project_id, id
), deliveries AS (
  INSERT INTO core.webhook_deliveries (project_id, channel_id, event_id, webhook_id)
  SELECT e.project_id, t.id, e.id, 'msg_' || replace(e.id::text, '-', '') FROM event e CROSS JOIN targets t
  RETURNING id, webhook_id
)
SELECT (SELECT id FROM event) AS event_id,
       (SELECT id FROM deliveries LIMIT 1) AS delivery_id,
       (SELECT webhook_id FROM deliveries LIMIT 1) AS webhook_id,
       (SELECT count(*) FROM deliveries)::int AS deliveries,
       CASE WHEN EXISTS (SELECT 1 FROM targets) THEN pg_notify('${NOTIFY_CHANNEL}', '') END AS notified`;

export interface Enqueued { eventId: string | null; deliveries: number; deliveryId: string | null; webhookId: string | null }

/** int64 values (bigint) become decimal strings, as everywhere in the API. */
const jsonText = (data: unknown) => JSON.stringify(data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

/** emitEvent, or with `channelId` to that one channel only (its subscriptions and enabled flag aside). */
export async function enqueueEvent(db: Pick<pg.PoolClient, 'query'>, event: OutboxEvent, channelId: string | null = null): Promise<Enqueued> {
  const r = await db.query<{ event_id: string | null; delivery_id: string | null; webhook_id: string | null; deliveries: number }>(
    ENQUEUE_SQL, [event.projectId, event.type, jsonText(event.data ?? {}), channelId]);
  const row = r.rows[0];
  return { eventId: row?.event_id ?? null, deliveries: row?.deliveries ?? 0, deliveryId: row?.delivery_id ?? null, webhookId: row?.webhook_id ?? null };
}

/** Record `event` for delivery to every enabled channel of the project subscribed to its type.
 *  Call it with the client of the transaction that makes the change, so both commit together. */
export async function emitEvent(db: Pick<pg.PoolClient, 'query'>, event: OutboxEvent): Promise<void> {
  await enqueueEvent(db, event);
}
