// Every change the access services make runs in one transaction that also appends its audit row
// (SPEC §10), so a change and its audit record commit or roll back together.
import type pg from 'pg';
import { appendAudit, auditActorFromPrincipal, type AuditDeps } from '../audit/audit.js';
import type { Principal } from '../auth/principal.js';
import { inTransaction } from '../db/transaction.js';

/** What the services need from the receiver. */
export interface AccessDeps {
  pool: pg.Pool;
  audit: AuditDeps;
}

/** Who asks for a change, and from where (recorded on the audit row; never a secret). */
export interface ChangeContext {
  principal: Principal;
  requestId: string | null;
  sourceIp: string | null;
}

export type Tx = pg.PoolClient;

export { inTransaction };

/** Append the audit row of a change inside its transaction (call last, just before COMMIT). */
export async function recordChange(
  tx: Tx, deps: AccessDeps, change: ChangeContext,
  event: { projectId: string; action: string; resource: { type: string; id: string }; details?: Record<string, unknown> },
): Promise<void> {
  await appendAudit(tx, {
    projectId: event.projectId,
    actor: auditActorFromPrincipal(change.principal),
    action: event.action,
    resource: event.resource,
    requestId: change.requestId,
    sourceIp: change.sourceIp,
    details: event.details,
  }, deps.audit);
}
