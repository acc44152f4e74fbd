// Every governance change runs in one transaction together with its webhook event (outbox) and its
// audit row, so the change, its notification and its record commit or roll back together.
import type pg from 'pg';
import { appendAudit, auditActorFromPrincipal, systemActor, type AuditActor, type AuditDeps } from '../audit/audit.js';
import type { Principal } from '../auth/principal.js';
import type { Logger } from '../observability/logger.js';
import { emitEvent, type WebhookEventType } from '../webhooks/outbox.js';
import { inTransaction } from '../db/transaction.js';

/** What the governance services need from the receiver. */
export interface GovernanceDeps {
  pool: pg.Pool;
  audit: AuditDeps;
  log: Logger;
}

/** Who asks for a change, and from where (recorded on the audit row; never a secret). */
export interface ChangeContext {
  principal: Principal;
  requestId: string | null;
  sourceIp: string | null;
}

export type Tx = pg.PoolClient;
export type Queryable = Pick<pg.PoolClient, 'query'>;

export { inTransaction };

/** The audit actor of a request's principal, or of the receiver acting on its own. */
export function requestActor(change: ChangeContext): AuditActor {
  return auditActorFromPrincipal(change.principal);
}
export const monitorActor = (): AuditActor => systemActor('budget_monitor');
export const evaluatorActor = (): AuditActor => systemActor('policy_evaluator');

export interface AuditRecord {
  projectId: string;
  action: string;
  resource: { type: string; id: string };
  details?: Record<string, unknown>;
}

/** Append the audit row of a change inside its transaction (call it last, just before COMMIT). */
export async function recordAudit(tx: Tx, deps: Pick<GovernanceDeps, 'audit'>, actor: AuditActor, change: ChangeContext | null, rec: AuditRecord): Promise<void> {
  await appendAudit(tx, {
    projectId: rec.projectId,
    actor,
    action: rec.action,
    resource: rec.resource,
    requestId: change?.requestId ?? null,
    sourceIp: change?.sourceIp ?? null,
    details: rec.details,
  }, deps.audit);
}

/** Write a webhook event into the outbox, in the transaction of the change. */
export async function recordEvent(tx: Tx, projectId: string, type: WebhookEventType, data: Record<string, unknown>): Promise<void> {
  await emitEvent(tx, { projectId, type, data });
}

/** Display and id of a principal, for created_by / resolved_by columns. */
export function principalLabel(p: Principal): { type: 'user' | 'api_key'; id: string; display: string } {
  return p.kind === 'user'
    ? { type: 'user', id: p.userId, display: p.email }
    : { type: 'api_key', id: p.keyId, display: p.keyPrefix };
}
