// Halts (SPEC §8.2): kill switches for a whole project or one agent, set by a person (API/CLI), by
// a `halt` policy or by a budget. Spans of halted agents are still stored; SDKs learn about halts
// through intervention sync. Creating a halt emits halt.created, clearing it halt.cleared.
import { Conflict, NotFound } from '../errors.js';
import { inTransaction, principalLabel, recordAudit, recordEvent, requestActor, type ChangeContext, type GovernanceDeps, type Queryable, type Tx } from './change.js';
import { invalidateLocally } from '../auth/invalidation.js';
import type { AuditActor } from '../audit/audit.js';

export type HaltScope = 'project' | 'agent';
export type HaltActorType = 'user' | 'api_key' | 'policy' | 'budget';

export interface HaltRow {
  project_id: string; id: string; scope: HaltScope; scope_value: string | null; reason: string;
  actor_type: HaltActorType; actor_id: string | null; actor_display: string | null;
  budget_id: string | null; policy_id: string | null; set_at: Date; cleared_at: Date | null;
}

export interface NewHalt {
  projectId: string; scope: HaltScope; scopeValue: string | null; reason: string;
  actor: { type: HaltActorType; id: string | null; display: string | null };
  budgetId?: string | null; policyId?: string | null;
}

const COLUMNS = `project_id, id::text AS id, scope, scope_value, reason, actor_type, actor_id, actor_display, budget_id, policy_id, set_at, cleared_at`;

/** The halt object of SPEC §8.2, exactly. */
export function haltJson(h: HaltRow) {
  return {
    id: Number(h.id),
    project_id: h.project_id,
    scope: h.scope,
    scope_value: h.scope_value,
    agent_name: h.scope_value,
    state: h.cleared_at ? 'cleared' : 'active',
    reason: h.reason,
    actor: { type: h.actor_type, id: h.actor_id, display: h.actor_display },
    budget_id: h.budget_id,
    policy_id: h.policy_id,
    set_at: h.set_at.toISOString(),
    created_at: h.set_at.toISOString(),
    cleared_at: h.cleared_at ? h.cleared_at.toISOString() : null,
  };
}

// ---- statements ---------------------------------------------------------------------------------

/** Active halts (or all, newest first), after the keyset position `beforeId`. */
export async function listHalts(db: Queryable, projectId: string, opts: { all: boolean; beforeId?: bigint; limit: number }): Promise<HaltRow[]> {
  const r = await db.query<HaltRow>(
    `SELECT ${COLUMNS} FROM core.halts
     WHERE project_id = $1 AND ($2 OR cleared_at IS NULL) AND ($3::bigint IS NULL OR id < $3::bigint)
     ORDER BY id DESC LIMIT $4`,
    [projectId, opts.all, opts.beforeId?.toString() ?? null, opts.limit],
  );
  return r.rows;
}

export async function getHalt(db: Queryable, projectId: string, id: bigint, forUpdate = false): Promise<HaltRow | undefined> {
  const r = await db.query<HaltRow>(`SELECT ${COLUMNS} FROM core.halts WHERE project_id = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`, [projectId, id.toString()]);
  return r.rows[0];
}

/**
 * Insert a halt and emit halt.created, in `tx`. A policy or budget halt that is already active for
 * the same target is not created twice (unique partial index): then the result is null.
 */
export async function insertHalt(tx: Tx, h: NewHalt): Promise<HaltRow | null> {
  const r = await tx.query<HaltRow>(
    `INSERT INTO core.halts (project_id, scope, scope_value, reason, actor_type, actor_id, actor_display, budget_id, policy_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT DO NOTHING
     RETURNING ${COLUMNS}`,
    [h.projectId, h.scope, h.scopeValue, h.reason, h.actor.type, h.actor.id, h.actor.display, h.budgetId ?? null, h.policyId ?? null],
  );
  const row = r.rows[0];
  if (row) await recordEvent(tx, h.projectId, 'halt.created', { halt: haltJson(row) });
  return row ?? null;
}

/** After a budget's halt is cleared: the budget is auto_halted only while one of its halts is active. */
async function refreshAutoHalted(tx: Tx, projectId: string, budgetId: string): Promise<void> {
  await tx.query(
    `UPDATE core.budgets b SET auto_halted = EXISTS (
       SELECT 1 FROM core.halts h WHERE h.project_id = b.project_id AND h.budget_id = b.id AND h.cleared_at IS NULL)
     WHERE b.project_id = $1 AND b.id = $2`,
    [projectId, budgetId],
  );
}

/** Clear active halts selected by `where` (fixed SQL of this module), emitting halt.cleared for each. */
export async function clearHaltRows(tx: Tx, rows: HaltRow[], clearedBy: string): Promise<HaltRow[]> {
  const out: HaltRow[] = [];
  for (const h of rows) {
    const r = await tx.query<HaltRow>(
      `UPDATE core.halts SET cleared_at = now(), cleared_by = $3 WHERE project_id = $1 AND id = $2 AND cleared_at IS NULL RETURNING ${COLUMNS}`,
      [h.project_id, h.id, clearedBy],
    );
    const cleared = r.rows[0];
    if (!cleared) continue;
    await recordEvent(tx, cleared.project_id, 'halt.cleared', { halt: haltJson(cleared) });
    if (cleared.budget_id) await refreshAutoHalted(tx, cleared.project_id, cleared.budget_id);
    out.push(cleared);
  }
  return out;
}

/** Active halts a budget created before `before` (its window rolled over). */
export async function budgetHaltsBefore(db: Queryable, projectId: string, budgetId: string, before: Date): Promise<HaltRow[]> {
  const r = await db.query<HaltRow>(
    `SELECT ${COLUMNS} FROM core.halts
     WHERE project_id = $1 AND budget_id = $2 AND actor_type = 'budget' AND cleared_at IS NULL AND set_at < $3
     ORDER BY id FOR UPDATE`,
    [projectId, budgetId, before],
  );
  return r.rows;
}

// ---- requests -----------------------------------------------------------------------------------

export interface HaltRequest { scope: HaltScope; scopeValue: string | null; reason: string }

export async function createHalt(deps: GovernanceDeps, change: ChangeContext, input: HaltRequest): Promise<HaltRow> {
  const who = principalLabel(change.principal);
  const created = await inTransaction(deps.pool, async (tx) => {
    const row = await insertHalt(tx, {
      projectId: change.principal.projectId, scope: input.scope, scopeValue: input.scopeValue, reason: input.reason,
      actor: { type: who.type, id: who.id, display: who.display },
    });
    if (!row) throw new Error('halt insert returned no row');
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId: row.project_id, action: 'halt.create', resource: { type: 'halt', id: row.id },
      details: { scope: row.scope, scope_value: row.scope_value, reason: row.reason },
    });
    return row;
  });
  invalidateLocally({ kind: 'sync', id: created.project_id });
  return created;
}

/** Clear one halt; 404 if unknown in the caller's project, 409 if it is already cleared. */
export async function clearHalt(deps: GovernanceDeps, change: ChangeContext, id: bigint): Promise<HaltRow> {
  const projectId = change.principal.projectId;
  const done = await inTransaction(deps.pool, async (tx) => {
    const current = await getHalt(tx, projectId, id, true);
    if (!current) throw new NotFound('halt not found');
    if (current.cleared_at) throw new Conflict(`halt ${id} is already cleared (at ${current.cleared_at.toISOString()})`);
    const [cleared] = await clearHaltRows(tx, [current], principalLabel(change.principal).display);
    if (!cleared) throw new Conflict(`halt ${id} is already cleared`);
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'halt.clear', resource: { type: 'halt', id: cleared.id },
      details: { scope: cleared.scope, scope_value: cleared.scope_value },
    });
    return cleared;
  });
  invalidateLocally({ kind: 'sync', id: projectId });
  return done;
}

/** Halt created by the receiver itself (policy or budget), audited as `actor`. */
export async function insertSystemHalt(tx: Tx, deps: Pick<GovernanceDeps, 'audit'>, actor: AuditActor, h: NewHalt): Promise<HaltRow | null> {
  const row = await insertHalt(tx, h);
  if (row) {
    await recordAudit(tx, deps, actor, null, {
      projectId: row.project_id, action: 'halt.create', resource: { type: 'halt', id: row.id },
      details: { scope: row.scope, scope_value: row.scope_value, reason: row.reason, budget_id: row.budget_id, policy_id: row.policy_id },
    });
  }
  return row;
}
