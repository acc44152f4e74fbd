// budget_monitor_task (SPEC §8.3, §13 item 7): each tick measures every active budget in its
// current window and records each threshold it crossed, exactly once per (budget, window,
// threshold), however many replicas run:
//   1. the framework runs the tick holding a session-level advisory lock, so one replica at a time
//      evaluates (the others skip the tick);
//   2. the second guard: a crossing is the INSERT … ON CONFLICT DO NOTHING of its row under the
//      unique key (project, budget, window_start, threshold), and its event, halt and audit row are
//      written in that same transaction only when the insert returned a row. Window starts are
//      computed by Postgres (core.budget_window) from its own clock, so every replica derives the
//      same key for the same window.
// Crossings at or above 100 % are budget.exceeded (and, for action halt, halt the budget's scope:
// the project, the agent, or the agents spending on the model); below, budget.threshold. Halts a
// fixed-window budget set are cleared when its window rolls over. The tick also records the expiry
// of unanswered approvals.
import type pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { WorkerDefinition } from '../workers/framework.js';
import { expireDueApprovals } from './approvals.js';
import { BUDGET_COLUMNS, decimalText, type BudgetRow } from './budgets.js';
import { inTransaction, monitorActor, recordAudit, recordEvent, type GovernanceDeps, type Tx } from './change.js';
import { budgetHaltsBefore, clearHaltRows, insertSystemHalt, type HaltScope } from './halts.js';

export const BUDGET_MONITOR_TASK = 'budget_monitor_task';

type MonitorDeps = Pick<GovernanceDeps, 'audit'> & { log: Logger };

export interface Usage {
  window_start: Date; spend_from: Date; window_end: Date;
  spent: string; count: number; agent_name: string | null; tool_name: string | null;
  /** Thresholds (percent, as text) the usage has reached, ascending. */
  crossed: string[];
  exhausted: boolean;
}

// Cost: USD of the priced spans of the budget's scope in its window; a threshold t is reached when
// spent ≥ limit × t / 100 (exact numeric arithmetic in Postgres).
/** `s.spent`: the cost budget `b`'s spend in its current window `w` (spans of its scope); shared with the forecast. */
export const BUDGET_SPEND_LATERAL = `CROSS JOIN LATERAL (
  SELECT coalesce(sum(sp.cost_usd), 0) AS spent FROM telemetry.spans sp
  WHERE sp.project_id = b.project_id AND sp.cost_usd IS NOT NULL AND sp.start_time >= w.spend_from AND sp.start_time < w.window_end
    AND (b.scope <> 'agent' OR sp.agent_name = b.scope_value) AND (b.scope <> 'model' OR sp.model = b.scope_value)
) s`;

const COST_USAGE_SQL = `
SELECT w.window_start, w.spend_from, w.window_end, s.spent::text AS spent, 0 AS count, NULL::text AS agent_name, NULL::text AS tool_name,
  array(SELECT t::text FROM unnest(b.thresholds) t WHERE s.spent * 100 >= b.max_spend_usd * t ORDER BY t) AS crossed,
  s.spent >= b.max_spend_usd AS exhausted
FROM core.budgets b
CROSS JOIN LATERAL core.budget_window(b.budget_duration, b.window_type, now()) w
${BUDGET_SPEND_LATERAL}
WHERE b.project_id = $1 AND b.id = $2`;

// Iteration: the most repeated (agent, tool) pair of the budget's scope within the last
// loop_window_seconds; "more than N calls" is a loop, so a threshold t is reached when count > N × t / 100.
const ITERATION_USAGE_SQL = `
SELECT w.window_start, w.spend_from, w.window_end, '0' AS spent, coalesce(l.n, 0)::int AS count, l.agent_name, l.tool_name,
  array(SELECT t::text FROM unnest(b.thresholds) t WHERE coalesce(l.n, 0) * 100 > b.max_repeated_calls * t ORDER BY t) AS crossed,
  coalesce(l.n, 0) > b.max_repeated_calls AS exhausted
FROM core.budgets b
CROSS JOIN LATERAL core.budget_window(b.budget_duration, b.window_type, now()) w
LEFT JOIN LATERAL (
  SELECT sp.agent_name, sp.tool_name, count(*) AS n FROM telemetry.spans sp
  WHERE sp.project_id = b.project_id AND sp.tool_name IS NOT NULL AND sp.agent_name IS NOT NULL
    AND sp.start_time >= now() - make_interval(secs => b.loop_window_seconds)
    AND (b.scope <> 'agent' OR sp.agent_name = b.scope_value)
  GROUP BY sp.agent_name, sp.tool_name ORDER BY n DESC, sp.agent_name, sp.tool_name LIMIT 1
) l ON true
WHERE b.project_id = $1 AND b.id = $2`;

export async function measureBudget(db: Pick<pg.PoolClient, 'query'>, b: Pick<BudgetRow, 'project_id' | 'id' | 'budget_type'>): Promise<Usage | undefined> {
  const r = await db.query<Usage>(b.budget_type === 'cost' ? COST_USAGE_SQL : ITERATION_USAGE_SQL, [b.project_id, b.id]);
  return r.rows[0];
}

/** Agents that spent on `model` in the window: what a model budget halts. */
async function agentsOnModel(tx: Tx, b: BudgetRow, u: Usage): Promise<string[]> {
  const r = await tx.query<{ agent_name: string }>(
    `SELECT DISTINCT agent_name FROM telemetry.spans
     WHERE project_id = $1 AND cost_usd IS NOT NULL AND model = $2 AND agent_name IS NOT NULL AND start_time >= $3 AND start_time < $4
     ORDER BY agent_name LIMIT 100`,
    [b.project_id, b.scope_value, u.spend_from, u.window_end]);
  return r.rows.map((x) => x.agent_name);
}

/** What a budget halts: its own scope, never more. */
async function haltTargets(tx: Tx, b: BudgetRow, u: Usage): Promise<{ scope: HaltScope; value: string | null }[]> {
  switch (b.scope) {
    case 'project': return [{ scope: 'project', value: null }];
    case 'agent': return [{ scope: 'agent', value: b.scope_value }];
    case 'model': return (await agentsOnModel(tx, b, u)).map((a) => ({ scope: 'agent' as const, value: a }));
  }
}

async function activeBudgetHalt(tx: Tx, b: BudgetRow, scope: HaltScope, value: string | null): Promise<string | undefined> {
  const r = await tx.query<{ id: string }>(
    `SELECT id::text AS id FROM core.halts WHERE project_id = $1 AND budget_id = $2 AND scope = $3 AND coalesce(scope_value, '') = coalesce($4, '') AND cleared_at IS NULL`,
    [b.project_id, b.id, scope, value]);
  return r.rows[0]?.id;
}

function usageText(b: BudgetRow, u: Usage): string {
  return b.budget_type === 'cost'
    ? `spent $${decimalText(u.spent)} of $${decimalText(b.max_spend_usd)}`
    : `${u.agent_name ?? 'an agent'} called ${u.tool_name ?? 'a tool'} ${u.count} times within ${b.loop_window_seconds} s (limit ${b.max_repeated_calls})`;
}

/**
 * Record one crossing (the second guard): nothing happens unless this transaction is the one that
 * inserts the crossing row. Returns the halts it created (null when the crossing already existed).
 */
async function recordCrossing(client: Tx, deps: MonitorDeps, b: BudgetRow, u: Usage, threshold: string): Promise<string[] | null> {
  return inTransaction(client, async (tx) => {
    const exceeded = Number(threshold) >= 100;
    const eventType = exceeded ? 'budget.exceeded' : 'budget.threshold';
    const ins = await tx.query<{ id: string }>(
      `INSERT INTO core.budget_crossings (project_id, budget_id, window_start, threshold, event_type, spent_usd, current_count)
       VALUES ($1, $2, $3, $4::numeric, $5, $6::numeric, $7)
       ON CONFLICT (project_id, budget_id, window_start, threshold) DO NOTHING RETURNING id::text AS id`,
      [b.project_id, b.id, u.window_start, threshold, eventType, u.spent, u.count]);
    const crossing = ins.rows[0];
    if (!crossing) return null;

    const haltIds: string[] = [];
    const created: string[] = [];
    if (exceeded && b.action === 'halt') {
      const reason = `${b.budget_type} budget "${b.name}" exceeded: ${usageText(b, u)}`;
      for (const t of await haltTargets(tx, b, u)) {
        const halt = await insertSystemHalt(tx, deps, monitorActor(), {
          projectId: b.project_id, scope: t.scope, scopeValue: t.value, reason, budgetId: b.id,
          actor: { type: 'budget', id: b.id, display: b.name },
        });
        if (halt) created.push(halt.id);
        // A halt of this budget already active for the target (an earlier window of a rolling budget) is the halt.
        const id = halt?.id ?? await activeBudgetHalt(tx, b, t.scope, t.value);
        if (id) haltIds.push(id);
      }
      if (haltIds.length) {
        await tx.query('UPDATE core.budget_crossings SET halt_ids = $3::bigint[] WHERE project_id = $1 AND id = $2', [b.project_id, crossing.id, haltIds]);
        await tx.query('UPDATE core.budgets SET auto_halted = true WHERE project_id = $1 AND id = $2', [b.project_id, b.id]);
      }
    }
    const data = {
      budget: { id: b.id, name: b.name, scope: b.scope, scope_value: b.scope_value, budget_type: b.budget_type, action: b.action },
      threshold: Number(threshold), window_start: u.window_start.toISOString(), window_type: b.window_type, budget_duration: b.budget_duration,
      spent_usd: b.budget_type === 'cost' ? decimalText(u.spent) : null, max_spend_usd: decimalText(b.max_spend_usd),
      current_count: b.budget_type === 'iteration' ? u.count : null, max_repeated_calls: b.max_repeated_calls,
      agent_name: u.agent_name, tool_name: u.tool_name, halt_ids: haltIds.map(Number),
    };
    await recordEvent(tx, b.project_id, eventType, data);
    await recordAudit(tx, deps, monitorActor(), null, {
      projectId: b.project_id, action: exceeded ? 'budget.exceeded' : 'budget.threshold', resource: { type: 'budget', id: b.id },
      details: { threshold: Number(threshold), window_start: data.window_start, usage: usageText(b, u), halt_ids: data.halt_ids },
    });
    return created;
  });
}

/** A fixed window rolled over: the halts the budget set in earlier windows are lifted. */
async function clearRolledOverHalts(client: Tx, deps: MonitorDeps, b: BudgetRow, u: Usage): Promise<number> {
  if (b.window_type !== 'fixed' || !b.auto_halted) return 0;
  return inTransaction(client, async (tx) => {
    const stale = await budgetHaltsBefore(tx, b.project_id, b.id, u.window_start);
    const cleared = await clearHaltRows(tx, stale, 'budget_monitor');
    for (const h of cleared) {
      await recordAudit(tx, deps, monitorActor(), null, {
        projectId: b.project_id, action: 'halt.clear', resource: { type: 'halt', id: h.id },
        details: { budget_id: b.id, reason: 'budget window rolled over' },
      });
    }
    return cleared.length;
  });
}

export interface BudgetTickResult { budgets: number; failed: number; crossings: number; halts_created: number; halts_cleared: number; approvals_expired: number }

/** One budget: measure, store what was measured, lift rolled-over halts, record new crossings. */
export async function evaluateBudget(client: Tx, deps: MonitorDeps, b: BudgetRow, out: BudgetTickResult): Promise<void> {
  const u = await measureBudget(client, b);
  if (!u) return; // deleted since it was listed
  await client.query(
    `UPDATE core.budgets SET spent_usd = $3::numeric, current_count = $4, exhausted = $5, window_start = $6, evaluated_at = now()
     WHERE project_id = $1 AND id = $2`,
    [b.project_id, b.id, u.spent, u.count, u.exhausted, u.window_start]);
  out.halts_cleared += await clearRolledOverHalts(client, deps, b, u);
  for (const t of u.crossed) {
    const created = await recordCrossing(client, deps, b, u, t);
    if (created === null) continue;
    out.crossings++;
    out.halts_created += created.length;
    deps.log.info({ project_id: b.project_id, budget_id: b.id, threshold: Number(t), window_start: u.window_start.toISOString(), halts: created.length, usage: usageText(b, u) },
      Number(t) >= 100 ? 'budget exceeded' : 'budget threshold crossed');
  }
}

export function budgetMetrics(registry: Registry) {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  return {
    evaluations: get('strathon_budget_evaluations_total', () => new Counter({ name: 'strathon_budget_evaluations_total', help: 'Budget evaluations by the budget monitor, by outcome', labelNames: ['outcome'], registers })),
    crossings: get('strathon_budget_crossings_total', () => new Counter({ name: 'strathon_budget_crossings_total', help: 'Budget threshold crossings recorded (once per budget, window and threshold)', registers })),
  };
}

/** One tick over every active budget (and the approval expiry sweep), on `client`. */
export async function runBudgetMonitor(client: Tx, deps: MonitorDeps & { registry: Registry }, signal?: AbortSignal): Promise<BudgetTickResult> {
  const metrics = budgetMetrics(deps.registry);
  const out: BudgetTickResult = { budgets: 0, failed: 0, crossings: 0, halts_created: 0, halts_cleared: 0, approvals_expired: 0 };
  out.approvals_expired = await expireDueApprovals(client, deps);
  const budgets = await client.query<BudgetRow>(`SELECT ${BUDGET_COLUMNS} FROM core.budgets WHERE is_active ORDER BY project_id, id LIMIT 10000`);
  let lastError: unknown;
  for (const b of budgets.rows) {
    if (signal?.aborted) break;
    try {
      await evaluateBudget(client, deps, b, out);
      out.budgets++;
      metrics.evaluations.inc({ outcome: 'ok' });
    } catch (err) {
      // One broken budget must not starve the others; the tick fails only if every budget failed.
      out.failed++;
      lastError = err;
      metrics.evaluations.inc({ outcome: 'error' });
      deps.log.warn({ err, project_id: b.project_id, budget_id: b.id }, 'budget evaluation failed');
    }
  }
  if (out.crossings) metrics.crossings.inc(out.crossings);
  if (out.failed && !out.budgets) throw lastError instanceof Error ? lastError : new Error('every budget evaluation failed');
  return out;
}

export function budgetMonitorWorker(ctx: { config: Config; metrics: { registry: Registry } }, opts: { intervalSeconds: number }): WorkerDefinition {
  return {
    name: BUDGET_MONITOR_TASK,
    intervalSeconds: opts.intervalSeconds,
    enabled: true,
    lock: { kind: 'advisory', key: `strathon.worker.${BUDGET_MONITOR_TASK}` },
    async run({ client, log, signal }) {
      const result = await runBudgetMonitor(client, { audit: { config: ctx.config, metrics: ctx.metrics }, log, registry: ctx.metrics.registry }, signal);
      return { ...result };
    },
  };
}
