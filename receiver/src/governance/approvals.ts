// Human approvals (SPEC §8.2): an SDK meeting a require_approval policy asks (POST /v1/approvals,
// approval.requested), polls, and a person approves or denies (approval.decided). Unanswered
// approvals expire after timeout_seconds: reads show them as expired at once, and the budget
// monitor's tick records the expiry (expireDueApprovals, with its approval.decided event).
import { keyTimeSql, type RowKey } from '../api/params.js';
import { Conflict, NotFound } from '../errors.js';
import { inTransaction, monitorActor, principalLabel, recordAudit, recordEvent, requestActor, type ChangeContext, type GovernanceDeps, type Queryable, type Tx } from './change.js';
import { invalidateLocally } from '../auth/invalidation.js';

export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

export interface Decision { actor: { type: string; id: string; display: string }; decision: 'approve' | 'deny'; comment: string | null; timestamp: string }

export interface ApprovalRow {
  project_id: string; id: string; policy_id: string | null; policy_name: string | null; trace_id: string | null; span_id: string | null;
  span_name: string | null; agent_name: string | null; tool_name: string | null; tool_args: unknown; status: ApprovalStatus;
  requested_at: Date; timeout_seconds: number; expires_at: Date; resolved_at: Date | null; resolved_by: string | null;
  approvers_required: number; approval_decisions: Decision[];
}

export interface NewApproval {
  policyId: string; policyName: string | null; traceId: string | null; spanId: string | null; spanName: string | null;
  agentName: string | null; toolName: string | null; toolArgs: unknown; timeoutSeconds: number; approversRequired: number;
}

// A pending approval past its deadline reads as expired even before the monitor records it.
const COLUMNS = `project_id, id, policy_id, policy_name, trace_id, span_id, span_name, agent_name, tool_name, tool_args,
  CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END AS status,
  requested_at, timeout_seconds, expires_at, CASE WHEN status = 'pending' AND expires_at <= now() THEN expires_at ELSE resolved_at END AS resolved_at,
  resolved_by, approvers_required, approval_decisions`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function approvalJson(a: ApprovalRow) {
  return {
    id: a.id, project_id: a.project_id, policy_id: a.policy_id, policy_name: a.policy_name, trace_id: a.trace_id, span_id: a.span_id,
    span_name: a.span_name, agent_name: a.agent_name, tool_name: a.tool_name, tool_args: a.tool_args ?? null, status: a.status,
    requested_at: a.requested_at.toISOString(), resolved_at: iso(a.resolved_at), resolved_by: a.resolved_by,
    timeout_seconds: a.timeout_seconds, expires_at: a.expires_at.toISOString(), approvers_required: a.approvers_required,
    current_approvals: a.approval_decisions.filter((d) => d.decision === 'approve').length, approval_decisions: a.approval_decisions,
  };
}

// ---- statements ---------------------------------------------------------------------------------

const STATUS_WHERE: Record<ApprovalStatus | 'all', string> = {
  pending: `status = 'pending' AND expires_at > now()`,
  approved: `status = 'approved'`,
  denied: `status = 'denied'`,
  expired: `(status = 'expired' OR (status = 'pending' AND expires_at <= now()))`,
  all: 'true',
};

/** One page of a status, newest first, after the keyset position `after` (fetch limit + 1 to know whether more follow). */
export async function listApprovals(db: Queryable, projectId: string, status: ApprovalStatus | 'all', after: RowKey | undefined, limit: number): Promise<(ApprovalRow & { key_time: string })[]> {
  const r = await db.query<ApprovalRow & { key_time: string }>(
    `SELECT ${COLUMNS}, ${keyTimeSql('requested_at')} AS key_time FROM core.approvals
     WHERE project_id = $1 AND ${STATUS_WHERE[status]} AND ($2::timestamptz IS NULL OR (requested_at, id) < ($2::timestamptz, $3::uuid))
     ORDER BY requested_at DESC, id DESC LIMIT $4`,
    [projectId, after?.time ?? null, after?.id ?? null, limit]);
  return r.rows;
}

export async function getApproval(db: Queryable, projectId: string, id: string): Promise<ApprovalRow> {
  const r = await db.query<ApprovalRow>(`SELECT ${COLUMNS} FROM core.approvals WHERE project_id = $1 AND id = $2`, [projectId, id]);
  const row = r.rows[0];
  if (!row) throw new NotFound('approval not found');
  return row;
}

/** The policy's name, when the policy is one of the project's (an SDK may name a deleted one). */
async function policyName(db: Queryable, projectId: string, policyId: string): Promise<string | null> {
  const r = await db.query<{ name: string }>('SELECT name FROM core.policies WHERE project_id = $1 AND id = $2', [projectId, policyId]);
  return r.rows[0]?.name ?? null;
}

// ---- changes ------------------------------------------------------------------------------------

export async function requestApproval(deps: GovernanceDeps, change: ChangeContext, a: NewApproval): Promise<ApprovalRow> {
  const projectId = change.principal.projectId;
  const requested = await inTransaction(deps.pool, async (tx) => {
    const name = a.policyName ?? await policyName(tx, projectId, a.policyId);
    const r = await tx.query<ApprovalRow>(
      `INSERT INTO core.approvals (project_id, policy_id, policy_name, trace_id, span_id, span_name, agent_name, tool_name, tool_args,
         timeout_seconds, expires_at, approvers_required, requested_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::integer, now() + make_interval(secs => $10::integer), $11, $12)
       RETURNING ${COLUMNS}`,
      [projectId, a.policyId, name, a.traceId, a.spanId, a.spanName, a.agentName, a.toolName, a.toolArgs === undefined ? null : JSON.stringify(a.toolArgs),
        a.timeoutSeconds, a.approversRequired, principalLabel(change.principal).display],
    );
    const row = r.rows[0] as ApprovalRow;
    await recordEvent(tx, projectId, 'approval.requested', { approval: approvalJson(row) });
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'approval.request', resource: { type: 'approval', id: row.id },
      details: { policy_id: row.policy_id, agent_name: row.agent_name, tool_name: row.tool_name, timeout_seconds: row.timeout_seconds },
    });
    return row;
  });
  invalidateLocally({ kind: 'sync', id: projectId });
  return requested;
}

async function markExpired(tx: Tx, projectId: string, ids: string[] | null): Promise<ApprovalRow[]> {
  const r = await tx.query<ApprovalRow>(
    `UPDATE core.approvals SET status = 'expired', resolved_at = expires_at, resolved_by = 'system'
     WHERE project_id = $1 AND id = ANY ($2::uuid[]) AND status = 'pending' AND expires_at <= now()
     RETURNING ${COLUMNS}`,
    [projectId, ids],
  );
  for (const row of r.rows) await recordEvent(tx, projectId, 'approval.decided', { approval: approvalJson(row), decision: 'expired' });
  return r.rows;
}

/**
 * Approve or deny a pending approval. 409 when it is no longer pending (decided, or expired: an
 * expiry found here is recorded first). With approvers_required > 1 an approval stays pending until
 * that many different callers approved; one denial decides.
 */
export async function decideApproval(deps: GovernanceDeps, change: ChangeContext, id: string, decision: 'approve' | 'deny', comment: string | null): Promise<ApprovalRow> {
  const projectId = change.principal.projectId;
  const who = principalLabel(change.principal);
  const result = await inTransaction<{ conflict: string } | { row: ApprovalRow }>(deps.pool, async (tx) => {
    const cur = await tx.query<ApprovalRow & { raw_status: ApprovalStatus }>(
      `SELECT ${COLUMNS}, status AS raw_status FROM core.approvals WHERE project_id = $1 AND id = $2 FOR UPDATE`, [projectId, id]);
    const row = cur.rows[0];
    if (!row) throw new NotFound('approval not found');
    if (row.raw_status === 'pending' && row.status === 'expired') {
      await markExpired(tx, projectId, [id]);
      return { conflict: `approval ${id} expired at ${row.expires_at.toISOString()} without a decision` };
    }
    if (row.status !== 'pending') return { conflict: `approval ${id} is no longer pending (status: ${row.status})` };
    if (row.approval_decisions.some((d) => d.actor.type === who.type && d.actor.id === who.id)) {
      return { conflict: `approval ${id} already has a decision by this caller` };
    }
    const entry: Decision = { actor: who, decision, comment, timestamp: new Date().toISOString() };
    const approvals = row.approval_decisions.filter((d) => d.decision === 'approve').length + (decision === 'approve' ? 1 : 0);
    const status: ApprovalStatus = decision === 'deny' ? 'denied' : approvals >= row.approvers_required ? 'approved' : 'pending';
    const r = await tx.query<ApprovalRow>(
      `UPDATE core.approvals SET approval_decisions = approval_decisions || $3::jsonb, status = $4,
         resolved_at = CASE WHEN $4 = 'pending' THEN NULL ELSE now() END, resolved_by = CASE WHEN $4 = 'pending' THEN NULL ELSE $5 END
       WHERE project_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [projectId, id, JSON.stringify([entry]), status, who.display],
    );
    const updated = r.rows[0] as ApprovalRow;
    if (status !== 'pending') await recordEvent(tx, projectId, 'approval.decided', { approval: approvalJson(updated), decision: status });
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: decision === 'approve' ? 'approval.approve' : 'approval.deny', resource: { type: 'approval', id },
      details: { status, comment, current_approvals: approvals, approvers_required: updated.approvers_required },
    });
    return { row: updated };
  });
  invalidateLocally({ kind: 'sync', id: projectId });
  if ('conflict' in result) throw new Conflict(result.conflict);
  return result.row;
}

/** The monitor's sweep: record the expiry of pending approvals past their deadline (all projects). */
export async function expireDueApprovals(client: Tx, deps: Pick<GovernanceDeps, 'audit'>, limit = 500): Promise<number> {
  return inTransaction(client, async (tx) => {
    const due = await tx.query<{ project_id: string; id: string }>(
      `SELECT project_id, id FROM core.approvals WHERE status = 'pending' AND expires_at <= now()
       ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED`, [limit]);
    const byProject = new Map<string, string[]>();
    for (const d of due.rows) byProject.set(d.project_id, [...(byProject.get(d.project_id) ?? []), d.id]);
    let n = 0;
    for (const [projectId, ids] of byProject) {
      const expired = await markExpired(tx, projectId, ids);
      for (const a of expired) {
        await recordAudit(tx, deps, monitorActor(), null, {
          projectId, action: 'approval.expire', resource: { type: 'approval', id: a.id }, details: { timeout_seconds: a.timeout_seconds },
        });
      }
      n += expired.length;
    }
    return n;
  });
}
