// Webhook outbox (SPEC §9): events are written in the same transaction as the change that causes
// them; the sweeper delivers them. Placeholder until the webhooks capability lands: a no-op.
import type pg from 'pg';

export const EVENT_TYPES = [
  'halt.created', 'halt.cleared', 'budget.threshold', 'budget.exceeded', 'policy.matched', 'approval.requested',
  'approval.decided', 'api_key.created', 'api_key.revoked', 'audit.verification_failed', 'webhook.test',
] as const;
export type WebhookEventType = (typeof EVENT_TYPES)[number];

export interface OutboxEvent { projectId: string; type: WebhookEventType; data: Record<string, unknown> }

/** Record `event` for delivery to every enabled channel of the project subscribed to its type.
 *  Call it with the client of the transaction that makes the change, so both commit together. */
export async function emitEvent(_db: Pick<pg.PoolClient, 'query'>, _event: OutboxEvent): Promise<void> {
  // no channels yet
}
