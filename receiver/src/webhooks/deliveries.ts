// Deliveries of a channel (SPEC §9): the list with each one's attempts and last outcome, and the
// re-queue of a dead-lettered one.
import type pg from 'pg';
import { Conflict, NotFound } from '../errors.js';
import { audit, inTransaction, type ChangeContext, type WebhookDeps } from './channels.js';
import { NOTIFY_CHANNEL } from './outbox.js';

export type DeliveryStatus = 'pending' | 'delivering' | 'succeeded' | 'dead';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivering', 'succeeded', 'dead'];

export interface DeliveryRow {
  id: string; project_id: string; channel_id: string; event_id: string; event_type: string; webhook_id: string;
  status: DeliveryStatus; attempts: number; next_attempt_at: Date | null; last_status_code: number | null;
  last_error: string | null; last_attempt_at: Date | null; delivered_at: Date | null; created_at: Date;
  /** created_at as exact UTC text (microseconds), for the keyset cursor. */
  cursor_time: string;
}

/** A keyset position in a channel's deliveries (newest first). */
export interface DeliveryCursor { time: string; id: string }

const COLUMNS = `d.id, d.project_id, d.channel_id, d.event_id, e.type AS event_type, d.webhook_id, d.status, d.attempts,
  d.next_attempt_at, d.last_status_code, d.last_error, d.last_attempt_at, d.delivered_at, d.created_at,
  to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time`;

/** One page of a channel's deliveries, newest first; the channel must be the project's (else 404). */
export async function listDeliveries(
  pool: pg.Pool, projectId: string, channelId: string,
  page: { limit: number; cursor?: DeliveryCursor; status?: DeliveryStatus },
): Promise<{ rows: DeliveryRow[]; next: DeliveryCursor | null }> {
  const r = await pool.query<DeliveryRow & { channel_found: boolean }>(
    `SELECT ch.found AS channel_found, page.*
     FROM (SELECT EXISTS (SELECT 1 FROM core.notification_channels WHERE project_id = $1 AND id = $2) AS found) ch
     LEFT JOIN LATERAL (
       SELECT ${COLUMNS}
       FROM core.webhook_deliveries d
       JOIN core.webhook_events e ON e.project_id = d.project_id AND e.id = d.event_id
       WHERE d.project_id = $1 AND d.channel_id = $2 AND ($3::text IS NULL OR d.status = $3)
         AND ($4::timestamptz IS NULL OR (d.created_at, d.id) < ($4::timestamptz, $5::uuid))
       ORDER BY d.created_at DESC, d.id DESC
       LIMIT $6
     ) page ON true`,
    [projectId, channelId, page.status ?? null, page.cursor?.time ?? null, page.cursor?.id ?? null, page.limit + 1]);
  if (!r.rows[0]?.channel_found) throw new NotFound('notification channel not found');
  const rows = r.rows.filter((x) => x.id !== null).map(({ channel_found: _found, ...row }) => row as DeliveryRow);
  const more = rows.length > page.limit;
  const shown = more ? rows.slice(0, page.limit) : rows;
  const last = shown[shown.length - 1];
  return { rows: shown, next: more && last ? { time: last.cursor_time, id: last.id } : null };
}

/** Put a dead delivery back in the queue with a fresh attempt budget; 409 unless it is dead. */
export async function retryDelivery(deps: WebhookDeps, change: ChangeContext, projectId: string, id: string): Promise<DeliveryRow> {
  return inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<DeliveryRow>(
      `UPDATE core.webhook_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now()
       FROM core.webhook_events e
       WHERE d.project_id = $1 AND d.id = $2 AND d.status = 'dead' AND e.project_id = d.project_id AND e.id = d.event_id
       RETURNING ${COLUMNS}`, [projectId, id]);
    const row = r.rows[0];
    if (!row) {
      const s = await tx.query<{ status: string }>('SELECT status FROM core.webhook_deliveries WHERE project_id = $1 AND id = $2', [projectId, id]);
      const status = s.rows[0]?.status;
      if (!status) throw new NotFound('notification delivery not found');
      throw new Conflict(`delivery is ${status}: only a dead delivery can be retried`);
    }
    await tx.query(`SELECT pg_notify('${NOTIFY_CHANNEL}', '')`);
    await audit(tx, deps, change, {
      projectId, action: 'notification_delivery.retry', resource: { type: 'notification_delivery', id },
      details: { channel_id: row.channel_id, event_type: row.event_type, webhook_id: row.webhook_id },
    });
    return row;
  });
}

/**
 * Housekeeping for retention_cleanup_task (SPEC §11): delete succeeded deliveries delivered more
 * than `days` ago, then the events no delivery refers to any more. Returns what was deleted.
 */
export async function purgeDeliveredWebhooks(db: Pick<pg.PoolClient, 'query'>, days = 30): Promise<{ deliveries: number; events: number }> {
  const d = await db.query(
    `DELETE FROM core.webhook_deliveries WHERE status = 'succeeded' AND delivered_at < now() - make_interval(days => $1)`, [days]);
  const e = await db.query(
    `DELETE FROM core.webhook_events e
     WHERE e.created_at < now() - make_interval(days => $1)
       AND NOT EXISTS (SELECT 1 FROM core.webhook_deliveries d WHERE d.project_id = e.project_id AND d.event_id = e.id)`, [days]);
  return { deliveries: d.rowCount ?? 0, events: e.rowCount ?? 0 };
}
