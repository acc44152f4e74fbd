// Every change the access services make runs in one transaction that also appends its audit row
// (SPEC §10), so a change and its audit record commit or roll back together.
import type pg from 'pg';
import { appendAudit, auditActorFromPrincipal, type AuditDeps } from '../audit/audit.js';
import type { Principal } from '../auth/principal.js';

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

/** Run `fn` in a READ COMMITTED transaction on its own connection; roll back on any error. */
export async function inTransaction<T>(pool: pg.Pool, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw err;
    }
  } finally {
    // A connection that could not even roll back is closed, not returned to the pool.
    client.release(broken);
  }
}

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
