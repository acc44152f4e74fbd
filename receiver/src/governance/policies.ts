// Policies (SPEC §8.1): CRUD with Strathon's shapes. Match expressions are compiled when saved, so
// a stored policy always compiles; the receiver evaluates enabled policies on ingested spans
// (evaluator.ts) and SDKs evaluate them client-side from GET /v1/policies.
import { keyTimeSql, type RowKey } from '../api/params.js';
import { NotFound, Unprocessable } from '../errors.js';
import { CelCompileError, compileExpression } from './cel.js';
import { inTransaction, principalLabel, recordAudit, requestActor, type ChangeContext, type GovernanceDeps, type Queryable } from './change.js';
import * as input from './input.js';

export const ACTIONS = ['block', 'steer', 'throttle', 'log', 'alert', 'require_approval', 'allow', 'halt'] as const;
export type PolicyAction = (typeof ACTIONS)[number];

export interface PolicyRow {
  project_id: string; id: string; name: string; description: string | null; match_expression: string; action: PolicyAction;
  action_config: Record<string, unknown>; applies_to: string[]; enabled: boolean; priority: number; shadow: boolean;
  template_id: string | null; match_count: string; last_matched_at: Date | null; error_count: string; last_error: string | null;
  last_error_at: Date | null; created_at: Date; updated_at: Date;
}

/** What a policy is made of, after validation (all fields of a create; any subset for a patch). */
export interface PolicyFields {
  name: string; description: string | null; match_expression: string; action: PolicyAction; action_config: Record<string, unknown>;
  applies_to: string[]; enabled: boolean; priority: number; shadow: boolean;
}

const COLUMNS = `project_id, id, name, description, match_expression, action, action_config, applies_to, enabled, priority, shadow,
  template_id, match_count::text AS match_count, last_matched_at, error_count::text AS error_count, last_error, last_error_at, created_at, updated_at`;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The bare policy of SPEC §8.1 (plus the receiver's evaluation error facts). */
export function policyJson(p: PolicyRow) {
  return {
    id: p.id, project_id: p.project_id, name: p.name, description: p.description, match_expression: p.match_expression,
    action: p.action, action_config: p.action_config, applies_to: p.applies_to, enabled: p.enabled, priority: p.priority,
    shadow: p.shadow, match_count: Number(p.match_count), last_matched_at: iso(p.last_matched_at),
    created_at: p.created_at.toISOString(), updated_at: p.updated_at.toISOString(),
    template_id: p.template_id, error_count: Number(p.error_count), last_error: p.last_error, last_error_at: iso(p.last_error_at),
  };
}

// ---- validation ---------------------------------------------------------------------------------

/** Compile or answer 422 with the compiler's message at body.match_expression. */
export function checkExpression(expression: unknown): string {
  try {
    compileExpression(expression);
  } catch (err) {
    if (err instanceof CelCompileError) throw new Unprocessable(`invalid CEL expression: ${err.message}`, input.loc('match_expression'), 'cel_compile_error');
    throw err;
  }
  return expression as string;
}

const THROTTLE_DEFAULTS = { max_calls: 10, window_seconds: 60 };

function actionConfig(action: PolicyAction, raw: Record<string, unknown> | undefined): Record<string, unknown> {
  const cfg = { ...(raw ?? {}) };
  if (action === 'throttle') {
    // The CLI creates throttle policies without a config: Strathon's defaults (10 calls a minute) apply.
    const b = { ...THROTTLE_DEFAULTS, ...cfg };
    const maxCalls = b.max_calls;
    const windowSeconds = b.window_seconds;
    if (typeof maxCalls !== 'number' || !Number.isInteger(maxCalls) || maxCalls < 1 || maxCalls > 1_000_000) {
      throw new Unprocessable('action_config.max_calls must be an integer between 1 and 1000000', input.loc('action_config', 'max_calls'), 'int_type');
    }
    if (typeof windowSeconds !== 'number' || !Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > 86_400) {
      throw new Unprocessable('action_config.window_seconds must be an integer between 1 and 86400', input.loc('action_config', 'window_seconds'), 'int_type');
    }
    return b;
  }
  return cfg;
}

/** A create body → every field (defaults applied). */
export function policyFromBody(body: unknown): PolicyFields {
  const b = input.bodyObject(body);
  const name = input.text(b, 'name', 200, { required: true });
  if (b.match_expression === undefined || b.match_expression === null) throw new Unprocessable('match_expression is required', input.loc('match_expression'), 'missing');
  const expression = checkExpression(b.match_expression);
  const action = input.oneOf(b, 'action', ACTIONS);
  if (!action) throw new Unprocessable('action is required', input.loc('action'), 'missing');
  return {
    name,
    description: input.optionalText(b, 'description', 2000) ?? null,
    match_expression: expression,
    action,
    action_config: actionConfig(action, input.jsonObject(b, 'action_config', 16_384)),
    applies_to: input.stringList(b, 'applies_to', 100, 200) ?? [],
    enabled: input.bool(b, 'enabled') ?? true,
    priority: input.int(b, 'priority', -1_000_000, 1_000_000) ?? 0,
    shadow: input.bool(b, 'shadow') ?? false,
  };
}

/** A patch body applied to the current policy (any subset; the result is validated as a whole). */
export function policyPatched(current: PolicyRow, body: unknown): PolicyFields {
  const b = input.bodyObject(body);
  const action = input.oneOf(b, 'action', ACTIONS) ?? current.action;
  const expression = b.match_expression === undefined ? current.match_expression : checkExpression(b.match_expression);
  const description = input.optionalText(b, 'description', 2000);
  return {
    name: input.text(b, 'name', 200) ?? current.name,
    description: description === undefined ? current.description : description,
    match_expression: expression,
    action,
    action_config: actionConfig(action, input.jsonObject(b, 'action_config', 16_384) ?? (input.has(b, 'action') && action !== current.action ? {} : current.action_config)),
    applies_to: input.stringList(b, 'applies_to', 100, 200) ?? (b.applies_to === null ? [] : current.applies_to),
    enabled: input.bool(b, 'enabled') ?? current.enabled,
    priority: input.int(b, 'priority', -1_000_000, 1_000_000) ?? current.priority,
    shadow: input.bool(b, 'shadow') ?? current.shadow,
  };
}

// ---- statements ---------------------------------------------------------------------------------

export const MAX_POLICIES_LISTED = 1000;

/** Every policy of the project, highest priority first (SDKs poll this and need all of them). */
export async function listPolicies(db: Queryable, projectId: string): Promise<PolicyRow[]> {
  const r = await db.query<PolicyRow>(
    `SELECT ${COLUMNS} FROM core.policies WHERE project_id = $1 ORDER BY priority DESC, created_at, id LIMIT ${MAX_POLICIES_LISTED}`, [projectId]);
  return r.rows;
}

/**
 * One page of the project's policies in the same order (highest priority first), after the keyset
 * position `after` (whose rank is the priority); fetch limit + 1 to know whether more follow.
 */
export async function listPoliciesPage(db: Queryable, projectId: string, after: RowKey | undefined, limit: number): Promise<(PolicyRow & { key_time: string })[]> {
  const r = await db.query<PolicyRow & { key_time: string }>(
    `SELECT ${COLUMNS}, ${keyTimeSql('created_at')} AS key_time FROM core.policies
     WHERE project_id = $1 AND ($2::int IS NULL OR priority < $2::int OR (priority = $2::int AND (created_at, id) > ($3::timestamptz, $4::uuid)))
     ORDER BY priority DESC, created_at, id LIMIT $5`,
    [projectId, after?.rank ?? null, after?.time ?? null, after?.id ?? null, limit]);
  return r.rows;
}

export async function getPolicy(db: Queryable, projectId: string, id: string, forUpdate = false): Promise<PolicyRow> {
  const r = await db.query<PolicyRow>(`SELECT ${COLUMNS} FROM core.policies WHERE project_id = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`, [projectId, id]);
  const row = r.rows[0];
  if (!row) throw new NotFound('policy not found');
  return row;
}

/** What the evaluator loads: the enabled policies of a project. */
export interface LoadedPolicy { id: string; name: string; match_expression: string; action: PolicyAction; applies_to: string[]; shadow: boolean }

export async function enabledPolicies(db: Queryable, projectId: string): Promise<LoadedPolicy[]> {
  const r = await db.query<LoadedPolicy>(
    `SELECT id, name, match_expression, action, applies_to, shadow FROM core.policies
     WHERE project_id = $1 AND enabled ORDER BY priority DESC, created_at, id LIMIT ${MAX_POLICIES_LISTED}`, [projectId]);
  return r.rows;
}

// ---- changes ------------------------------------------------------------------------------------

export async function createPolicy(deps: GovernanceDeps, change: ChangeContext, f: PolicyFields, templateId: string | null = null): Promise<PolicyRow> {
  const projectId = change.principal.projectId;
  return inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<PolicyRow>(
      `INSERT INTO core.policies (project_id, name, description, match_expression, action, action_config, applies_to, enabled, priority, shadow, template_id, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${COLUMNS}`,
      [projectId, f.name, f.description, f.match_expression, f.action, JSON.stringify(f.action_config), f.applies_to, f.enabled, f.priority, f.shadow,
        templateId, principalLabel(change.principal).display],
    );
    const row = r.rows[0];
    if (!row) throw new Error('policy insert returned no row');
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: templateId ? 'policy.apply_template' : 'policy.create', resource: { type: 'policy', id: row.id },
      details: { name: row.name, action: row.action, match_expression: row.match_expression, enabled: row.enabled, shadow: row.shadow, template_id: templateId },
    });
    return row;
  });
}

export async function updatePolicy(deps: GovernanceDeps, change: ChangeContext, id: string, body: unknown): Promise<PolicyRow> {
  const projectId = change.principal.projectId;
  return inTransaction(deps.pool, async (tx) => {
    const current = await getPolicy(tx, projectId, id, true);
    const f = policyPatched(current, body);
    const r = await tx.query<PolicyRow>(
      `UPDATE core.policies SET name = $3, description = $4, match_expression = $5, action = $6, action_config = $7, applies_to = $8,
         enabled = $9, priority = $10, shadow = $11, updated_at = now()
       WHERE project_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [projectId, id, f.name, f.description, f.match_expression, f.action, JSON.stringify(f.action_config), f.applies_to, f.enabled, f.priority, f.shadow],
    );
    const row = r.rows[0] as PolicyRow;
    const changed = (Object.keys(f) as (keyof PolicyFields)[]).filter((k) => JSON.stringify(f[k]) !== JSON.stringify(current[k]));
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'policy.update', resource: { type: 'policy', id },
      details: { changed, ...Object.fromEntries(changed.map((k) => [k, f[k]])) },
    });
    return row;
  });
}

export async function deletePolicy(deps: GovernanceDeps, change: ChangeContext, id: string): Promise<void> {
  const projectId = change.principal.projectId;
  await inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<{ name: string }>('DELETE FROM core.policies WHERE project_id = $1 AND id = $2 RETURNING name', [projectId, id]);
    const row = r.rows[0];
    if (!row) throw new NotFound('policy not found');
    await recordAudit(tx, deps, requestActor(change), change, {
      projectId, action: 'policy.delete', resource: { type: 'policy', id }, details: { name: row.name },
    });
  });
}
