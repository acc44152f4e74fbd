// Budgets (SPEC §8.3): cost budgets (USD spent in a window) and iteration budgets (the same tool
// called more than N times within loop_window_seconds by one agent), scoped to the project, one
// agent or one model. Strathon's form and the CLI's form of a create are both accepted. The budget
// monitor (budget-monitor.ts) measures them and writes spent_usd / current_count / exhausted.
import { keyTimeSql, type RowKey } from '../api/params.js';
import { NotFound, Unprocessable } from '../errors.js';
import { inTransaction, principalLabel, recordAudit, requestActor, type ChangeContext, type GovernanceDeps, type Queryable } from './change.js';
import { invalidateLocally } from '../auth/invalidation.js';
import * as input from './input.js';

export const BUDGET_SCOPES = ['project', 'agent', 'model'] as const;
export const BUDGET_TYPES = ['cost', 'iteration'] as const;
export const DURATIONS = ['1h', '1d', '7d', '30d'] as const;
export const WINDOW_TYPES = ['fixed', 'rolling'] as const;
export const BUDGET_ACTIONS = ['halt', 'alert'] as const;
export const DEFAULT_THRESHOLDS = [80, 100];
export const DEFAULT_LOOP_WINDOW_SECONDS = 60;

export type BudgetScope = (typeof BUDGET_SCOPES)[number];
export type BudgetType = (typeof BUDGET_TYPES)[number];

export interface BudgetRow {
  project_id: string; id: string; name: string; scope: BudgetScope; scope_value: string | null; budget_type: BudgetType;
  max_spend_usd: string | null; max_repeated_calls: number | null; loop_window_seconds: number | null;
  budget_duration: (typeof DURATIONS)[number]; window_type: (typeof WINDOW_TYPES)[number]; action: (typeof BUDGET_ACTIONS)[number];
  thresholds: string[]; is_active: boolean; auto_halted: boolean; spent_usd: string; current_count: number; exhausted: boolean;
  window_start: Date | null; evaluated_at: Date | null; created_at: Date; updated_at: Date;
}

export interface BudgetFields {
  name: string; scope: BudgetScope; scope_value: string | null; budget_type: BudgetType; max_spend_usd: string | null;
  max_repeated_calls: number | null; loop_window_seconds: number | null; budget_duration: BudgetRow['budget_duration'];
  window_type: BudgetRow['window_type']; action: BudgetRow['action']; thresholds: number[]; is_active: boolean;
}

export const BUDGET_COLUMNS = `project_id, id, name, scope, scope_value, budget_type, max_spend_usd::text AS max_spend_usd, max_repeated_calls,
  loop_window_seconds, budget_duration, window_type, action, thresholds::text[] AS thresholds, is_active, auto_halted, spent_usd::text AS spent_usd,
  current_count, exhausted, window_start, evaluated_at, created_at, updated_at`;

/** A numeric from Postgres as a decimal string without trailing zeros ("25", "0.5"). */
export function decimalText(v: string | null): string | null {
  if (v === null) return null;
  if (!v.includes('.')) return v;
  const t = v.replace(/0+$/, '').replace(/\.$/, '');
  return t === '' || t === '-0' ? '0' : t;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The budget of SPEC §8.3, with the CLI's limit_usd / limit_count / current_spend beside Strathon's names. */
export function budgetJson(b: BudgetRow) {
  const max = decimalText(b.max_spend_usd);
  const spent = decimalText(b.spent_usd) ?? '0';
  return {
    id: b.id, project_id: b.project_id, name: b.name, scope: b.scope, scope_value: b.scope_value, budget_type: b.budget_type,
    max_spend_usd: max, max_repeated_calls: b.max_repeated_calls, loop_window_seconds: b.loop_window_seconds,
    budget_duration: b.budget_duration, window_type: b.window_type, spent_usd: spent, current_count: b.current_count,
    action: b.action, thresholds: b.thresholds.map(Number), is_active: b.is_active, auto_halted: b.auto_halted, exhausted: b.exhausted,
    window_start: iso(b.window_start), evaluated_at: iso(b.evaluated_at), created_at: b.created_at.toISOString(), updated_at: b.updated_at.toISOString(),
    limit_usd: max, limit_count: b.max_repeated_calls, current_spend: b.budget_type === 'cost' ? spent : null,
  };
}

// ---- validation ---------------------------------------------------------------------------------

function thresholds(b: input.Body): number[] | undefined {
  const v = b.thresholds;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.length > 10) throw new Unprocessable('thresholds must be a list of 1 to 10 percentages', input.loc('thresholds'), 'list_type');
  const out = v.map((t, i) => {
    const n = typeof t === 'string' ? Number(t) : t;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 1000) {
      throw new Unprocessable('each threshold must be a percentage above 0 and at most 1000', input.loc('thresholds', i), 'value_error');
    }
    return Math.round(n * 100) / 100;
  });
  return [...new Set(out)].sort((a, b2) => a - b2);
}

/**
 * A create body (`current` undefined) or a patch applied to `current`, validated as a whole.
 * Strathon form: {name, scope, scope_value?, max_spend_usd | max_repeated_calls + loop_window_seconds,
 * budget_duration, action?, thresholds?}; CLI form: {name, budget_type, window_type, limit_usd | limit_count}.
 */
export function budgetFields(body: unknown, current?: BudgetRow): BudgetFields {
  const b = input.bodyObject(body);
  const name = current ? (input.text(b, 'name', 200) ?? current.name) : input.text(b, 'name', 200, { required: true });
  const scope = input.oneOf(b, 'scope', BUDGET_SCOPES) ?? current?.scope ?? 'project';
  let scopeValue: string | null = input.text(b, 'scope_value', 200) ?? null;
  if (scope === 'project') {
    if (scopeValue !== null) throw new Unprocessable('scope_value must be empty for a project budget', input.loc('scope_value'));
  } else {
    scopeValue ??= b.scope_value === undefined && current?.scope === scope ? current.scope_value : null;
    if (scopeValue === null) throw new Unprocessable(`scope_value (the ${scope} name) is required for a${scope === 'agent' ? 'n' : ''} ${scope} budget`, input.loc('scope_value'), 'missing');
  }

  const usd = input.money(b, 'max_spend_usd') ?? input.money(b, 'limit_usd');
  const count = input.int(b, 'max_repeated_calls', 1, 1_000_000) ?? input.int(b, 'limit_count', 1, 1_000_000);
  const givenType = input.oneOf(b, 'budget_type', BUDGET_TYPES);
  const type: BudgetType | undefined = givenType ?? (usd !== undefined ? 'cost' : count !== undefined ? 'iteration' : current?.budget_type);
  if (!type) throw new Unprocessable('a budget needs max_spend_usd (cost budget) or max_repeated_calls (iteration budget)', input.loc('max_spend_usd'), 'missing');
  if (type === 'cost' && usd === undefined && count !== undefined) throw new Unprocessable('a cost budget is limited by max_spend_usd (or limit_usd), not a call count', input.loc('max_spend_usd'), 'missing');
  if (type === 'iteration' && count === undefined && usd !== undefined) throw new Unprocessable('an iteration budget is limited by max_repeated_calls (or limit_count), not USD', input.loc('max_repeated_calls'), 'missing');
  const sameType = current?.budget_type === type;

  let maxSpend: string | null = null;
  let maxCalls: number | null = null;
  let loopWindow: number | null = null;
  if (type === 'cost') {
    maxSpend = usd ?? (sameType ? current?.max_spend_usd ?? null : null);
    if (maxSpend === null) throw new Unprocessable('max_spend_usd (or limit_usd) is required for a cost budget', input.loc('max_spend_usd'), 'missing');
  } else {
    if (scope === 'model') throw new Unprocessable('an iteration budget counts tool calls: its scope is the project or an agent', input.loc('scope'));
    maxCalls = count ?? (sameType ? current?.max_repeated_calls ?? null : null);
    if (maxCalls === null) throw new Unprocessable('max_repeated_calls (or limit_count) is required for an iteration budget', input.loc('max_repeated_calls'), 'missing');
    loopWindow = input.int(b, 'loop_window_seconds', 1, 86_400) ?? (sameType ? current?.loop_window_seconds ?? null : null) ?? DEFAULT_LOOP_WINDOW_SECONDS;
  }
  return {
    name, scope, scope_value: scopeValue, budget_type: type, max_spend_usd: maxSpend, max_repeated_calls: maxCalls, loop_window_seconds: loopWindow,
    budget_duration: input.oneOf(b, 'budget_duration', DURATIONS) ?? current?.budget_duration ?? '1d',
    window_type: input.oneOf(b, 'window_type', WINDOW_TYPES) ?? current?.window_type ?? 'fixed',
    action: input.oneOf(b, 'action', BUDGET_ACTIONS) ?? current?.action ?? 'halt',
    thresholds: thresholds(b) ?? current?.thresholds.map(Number) ?? DEFAULT_THRESHOLDS,
    is_active: input.bool(b, 'is_active') ?? current?.is_active ?? true,
  };
}

// ---- statements ---------------------------------------------------------------------------------

/** One page of the project's budgets, oldest first, after the keyset position `after` (fetch limit + 1 to know whether more follow). */
export async function listBudgets(db: Queryable, projectId: string, includeInactive: boolean, after: RowKey | undefined, limit: number): Promise<(BudgetRow & { key_time: string })[]> {
  const r = await db.query<BudgetRow & { key_time: string }>(
    `SELECT ${BUDGET_COLUMNS}, ${keyTimeSql('created_at')} AS key_time FROM core.budgets
     WHERE project_id = $1 AND ($2 OR is_active) AND ($3::timestamptz IS NULL OR (created_at, id) > ($3::timestamptz, $4::uuid))
     ORDER BY created_at, id LIMIT $5`,
    [projectId, includeInactive, after?.time ?? null, after?.id ?? null, limit]);
  return r.rows;
}

export async function getBudget(db: Queryable, projectId: string, id: string, forUpdate = false): Promise<BudgetRow> {
  const r = await db.query<BudgetRow>(`SELECT ${BUDGET_COLUMNS} FROM core.budgets WHERE project_id = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`, [projectId, id]);
  const row = r.rows[0];
  if (!row) throw new NotFound('budget not found');
  return row;
}

const FIELD_VALUES = (f: BudgetFields) => [
  f.name, f.scope, f.scope_value, f.budget_type, f.max_spend_usd, f.max_repeated_calls, f.loop_window_seconds, f.budget_duration,
  f.window_type, f.action, f.thresholds.map(String), f.is_active,
];

export async function createBudget(deps: GovernanceDeps, change: ChangeContext, f: BudgetFields): Promise<BudgetRow> {
  const projectId = change.principal.projectId;
  const created = await inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<BudgetRow>(
      `INSERT INTO core.budgets (project_id, name, scope, scope_value, budget_type, max_spend_usd, max_repeated_calls, loop_window_seconds,
         budget_duration, window_type, action, thresholds, is_active, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::numeric[], $13, $14) RETURNING ${BUDGET_COLUMNS}`,
      [projectId, ...FIELD_VALUES(f), principalLabel(change.principal).display],
    );
    const row = r.rows[0];
    if (!row) throw new Error('budget insert returned no row');
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'budget.create', resource: { type: 'budget', id: row.id }, details: { ...f },
    });
    return row;
  });
  invalidateLocally({ kind: 'sync', id: projectId });
  return created;
}

export async function updateBudget(deps: GovernanceDeps, change: ChangeContext, id: string, body: unknown): Promise<BudgetRow> {
  const projectId = change.principal.projectId;
  const updated = await inTransaction(deps.pool, async (tx) => {
    const current = await getBudget(tx, projectId, id, true);
    const f = budgetFields(body, current);
    const r = await tx.query<BudgetRow>(
      `UPDATE core.budgets SET name = $3, scope = $4, scope_value = $5, budget_type = $6, max_spend_usd = $7, max_repeated_calls = $8,
         loop_window_seconds = $9, budget_duration = $10, window_type = $11, action = $12, thresholds = $13::numeric[], is_active = $14, updated_at = now()
       WHERE project_id = $1 AND id = $2 RETURNING ${BUDGET_COLUMNS}`,
      [projectId, id, ...FIELD_VALUES(f)],
    );
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'budget.update', resource: { type: 'budget', id }, details: { ...f },
    });
    return r.rows[0] as BudgetRow;
  });
  invalidateLocally({ kind: 'sync', id: projectId });
  return updated;
}

/** Delete a budget (its crossings go with it; halts it set stay, as history or until cleared). */
export async function deleteBudget(deps: GovernanceDeps, change: ChangeContext, id: string): Promise<void> {
  const projectId = change.principal.projectId;
  await inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<{ name: string }>('DELETE FROM core.budgets WHERE project_id = $1 AND id = $2 RETURNING name', [projectId, id]);
    const row = r.rows[0];
    if (!row) throw new NotFound('budget not found');
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'budget.delete', resource: { type: 'budget', id }, details: { name: row.name },
    });
  });
  invalidateLocally({ kind: 'sync', id: projectId });
}
