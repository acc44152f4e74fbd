// POST /v1/intervention/sync (SPEC §8.2): what every agent polls once a second. One statement, one
// round trip, each part answered from a partial index of its table (halts_active_idx,
// budgets_active_idx, approvals_pending_idx, approvals_resolved_idx), so its cost does not grow
// with history: only active halts, active budgets and pending or just-decided approvals are read.
import type { Queryable } from './change.js';

export interface SyncHalt { id: number; scope: 'project' | 'agent'; scope_value: string | null; state: 'active'; reason: string }
export interface SyncBudget { id: string; scope: string; scope_value: string | null; exhausted: boolean }
export interface SyncApproval { id: string; status: string; tool_name: string | null; agent_name: string | null }
export interface SyncState { halts: SyncHalt[]; budgets: SyncBudget[]; approvals: SyncApproval[] }

/** Approvals decided this long ago are still reported when the caller gives no since_unix_nano. */
export const DEFAULT_DECIDED_WINDOW_SECONDS = 300;
const LIMIT = 500;

// $2: the polling agents (null = all); $3: decisions since (timestamptz).
// Project halts and model/project budgets apply to every agent; agent ones only to the named agents.
const SYNC_SQL = `
SELECT
  (SELECT coalesce(json_agg(h ORDER BY h.id DESC), '[]'::json) FROM (
     SELECT id, scope, scope_value, 'active' AS state, reason FROM core.halts
     WHERE project_id = $1 AND cleared_at IS NULL AND (scope = 'project' OR $2::text[] IS NULL OR scope_value = ANY ($2::text[]))
     ORDER BY id DESC LIMIT ${LIMIT}) h) AS halts,
  (SELECT coalesce(json_agg(b ORDER BY b.id), '[]'::json) FROM (
     SELECT id, scope, scope_value, exhausted FROM core.budgets
     WHERE project_id = $1 AND is_active AND (scope <> 'agent' OR $2::text[] IS NULL OR scope_value = ANY ($2::text[]))
     ORDER BY id LIMIT ${LIMIT}) b) AS budgets,
  (SELECT coalesce(json_agg(a), '[]'::json) FROM (
     (SELECT id, CASE WHEN expires_at <= now() THEN 'expired' ELSE status END AS status, tool_name, agent_name FROM core.approvals
      WHERE project_id = $1 AND status = 'pending' AND ($2::text[] IS NULL OR agent_name = ANY ($2::text[]))
      ORDER BY agent_name LIMIT ${LIMIT})
     UNION ALL
     (SELECT id, status, tool_name, agent_name FROM core.approvals
      WHERE project_id = $1 AND resolved_at IS NOT NULL AND resolved_at >= $3 AND ($2::text[] IS NULL OR agent_name = ANY ($2::text[]))
      ORDER BY resolved_at DESC LIMIT ${LIMIT})) a) AS approvals`;

export async function interventionState(db: Queryable, projectId: string, agents: string[] | null, decidedSince: Date): Promise<SyncState> {
  // A named (prepared) statement: planned once per connection, not on every poll.
  const r = await db.query<SyncState>({ name: 'strathon-intervention-sync', text: SYNC_SQL, values: [projectId, agents, decidedSince] });
  const row = r.rows[0];
  return { halts: row?.halts ?? [], budgets: row?.budgets ?? [], approvals: row?.approvals ?? [] };
}
