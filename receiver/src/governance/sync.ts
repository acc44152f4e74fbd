// POST /v1/intervention/sync (SPEC §8.2): what every agent polls once a second. One statement, one
// round trip, each part answered from a partial index of its table (halts_active_idx,
// budgets_active_idx, approvals_pending_idx, approvals_resolved_idx), so its cost does not grow
// with history: only active halts, active budgets and pending or just-decided approvals are read.
import { ListenedCache, type Invalidation, type InvalidationListener } from '../auth/invalidation.js';
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

// ---- in-memory snapshot -------------------------------------------------------------------------
// The same answer from memory: per project, every active halt and budget, every pending approval
// and the approvals decided in the last SNAPSHOT_DECIDED_SECONDS, loaded in one statement and
// dropped on every change (triggers of migration 1764000015000 NOTIFY 'sync:<project>'; this
// process's own changes drop it at once). While the LISTEN connection is down, or for a project
// with more rows than SNAPSHOT_MAX_ROWS in a part, or a since older than the snapshot holds, the
// statement above answers.

/** Decisions older than this are not in a snapshot (a since before it is answered by SQL). */
export const SNAPSHOT_DECIDED_SECONDS = 600;
const SNAPSHOT_MAX_ROWS = 2000;

interface SnapApproval { id: string; status: string; tool_name: string | null; agent_name: string | null; us: number }
interface Snapshot {
  /** Resolved approvals at or after this (µs since the epoch) are all here. */
  horizonUs: number;
  /** False when a part had more than SNAPSHOT_MAX_ROWS rows. */
  complete: boolean;
  halts: SyncHalt[];
  budgets: SyncBudget[];
  pending: SnapApproval[];
  resolved: SnapApproval[];
}

// Each part in the order, and with the columns, of SYNC_SQL; times as µs since the epoch.
const SNAPSHOT_SQL = `
SELECT
  (SELECT coalesce(json_agg(h ORDER BY h.id DESC), '[]'::json) FROM (
     SELECT id, scope, scope_value, 'active' AS state, reason FROM core.halts
     WHERE project_id = $1 AND cleared_at IS NULL ORDER BY id DESC LIMIT $2) h) AS halts,
  (SELECT coalesce(json_agg(b ORDER BY b.id), '[]'::json) FROM (
     SELECT id, scope, scope_value, exhausted FROM core.budgets
     WHERE project_id = $1 AND is_active ORDER BY id LIMIT $2) b) AS budgets,
  (SELECT coalesce(json_agg(a ORDER BY a.agent_name), '[]'::json) FROM (
     SELECT id, status, tool_name, agent_name, (extract(epoch FROM expires_at) * 1000000)::int8 AS us FROM core.approvals
     WHERE project_id = $1 AND status = 'pending' ORDER BY agent_name LIMIT $2) a) AS pending,
  (SELECT coalesce(json_agg(a ORDER BY a.us DESC), '[]'::json) FROM (
     SELECT id, status, tool_name, agent_name, (extract(epoch FROM resolved_at) * 1000000)::int8 AS us FROM core.approvals
     WHERE project_id = $1 AND resolved_at IS NOT NULL AND resolved_at >= $3 ORDER BY resolved_at DESC LIMIT $2) a) AS resolved`;

const forAgents = (agents: string[] | null) => {
  if (agents === null) return () => true;
  const set = new Set(agents);
  return (name: string | null) => name !== null && set.has(name);
};

/** SYNC_SQL's answer from a snapshot: the same filters, order and limits. */
function answer(s: Snapshot, agents: string[] | null, sinceUs: number): SyncState {
  const named = forAgents(agents);
  const nowUs = Date.now() * 1000;
  const halts = s.halts.filter((h) => h.scope === 'project' || named(h.scope_value)).slice(0, LIMIT);
  const budgets = s.budgets.filter((b) => b.scope !== 'agent' || named(b.scope_value)).slice(0, LIMIT);
  const approvals: SyncApproval[] = [];
  for (const a of s.pending.filter((p) => named(p.agent_name)).slice(0, LIMIT)) {
    approvals.push({ id: a.id, status: a.us <= nowUs ? 'expired' : a.status, tool_name: a.tool_name, agent_name: a.agent_name });
  }
  for (const a of s.resolved.filter((r) => r.us >= sinceUs && named(r.agent_name)).slice(0, LIMIT)) {
    approvals.push({ id: a.id, status: a.status, tool_name: a.tool_name, agent_name: a.agent_name });
  }
  return { halts, budgets, approvals };
}

export interface SyncSnapshotOptions { ttlMs?: number; maxProjects?: number }

export class SyncSnapshots {
  private readonly snapshots: ListenedCache<Snapshot>;
  private readonly loading = new Map<string, Promise<Snapshot>>();

  /** Without a listener nothing is kept: every sync is the statement above. */
  constructor(private readonly pool: Queryable, private readonly invalidation?: InvalidationListener, opts: SyncSnapshotOptions = {}) {
    this.snapshots = new ListenedCache(invalidation, opts.ttlMs ?? 5000, opts.maxProjects ?? 1000);
    invalidation?.subscribe((inv) => this.invalidate(inv));
  }

  invalidate(inv: Invalidation): void {
    if (inv.kind === 'key') return;
    if (inv.kind === 'all') {
      this.snapshots.invalidate();
      this.loading.clear();
      return;
    }
    this.snapshots.invalidate((projectId) => projectId === inv.id);
    this.loading.delete(inv.id);
  }

  /** For tests: projects held. */
  get cachedProjects(): number { return this.snapshots.size; }

  /** POST /v1/intervention/sync's answer: from the project's snapshot when one can be held. */
  async state(projectId: string, agents: string[] | null, decidedSince: Date): Promise<SyncState> {
    const sinceUs = decidedSince.getTime() * 1000;
    if (this.invalidation?.listening && Number.isFinite(sinceUs)) {
      const s = await this.snapshot(projectId);
      if (s.complete && sinceUs >= s.horizonUs) return answer(s, agents, sinceUs);
    }
    return interventionState(this.pool, projectId, agents, decidedSince);
  }

  private snapshot(projectId: string): Promise<Snapshot> {
    const s = this.snapshots.get(projectId);
    if (s) return Promise.resolve(s);
    let p = this.loading.get(projectId);
    if (!p) {
      p = this.load(projectId).finally(() => { if (this.loading.get(projectId) === p) this.loading.delete(projectId); });
      this.loading.set(projectId, p);
    }
    return p;
  }

  // A load that raced an invalidation is used by its own callers, never kept.
  private async load(projectId: string): Promise<Snapshot> {
    const token = this.snapshots.token();
    const at = Date.now();
    const horizon = new Date(at - SNAPSHOT_DECIDED_SECONDS * 1000);
    const r = await this.pool.query<{ halts: SyncHalt[]; budgets: SyncBudget[]; pending: SnapApproval[]; resolved: SnapApproval[] }>(
      { name: 'strathon-intervention-snapshot', text: SNAPSHOT_SQL, values: [projectId, SNAPSHOT_MAX_ROWS + 1, horizon] });
    const row = r.rows[0];
    const parts = { halts: row?.halts ?? [], budgets: row?.budgets ?? [], pending: row?.pending ?? [], resolved: row?.resolved ?? [] };
    const complete = Object.values(parts).every((p) => p.length <= SNAPSHOT_MAX_ROWS);
    const s: Snapshot = { horizonUs: horizon.getTime() * 1000, complete, ...parts };
    this.snapshots.set(projectId, s, token, at);
    return s;
  }
}
