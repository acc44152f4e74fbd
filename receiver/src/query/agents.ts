// Agent inventory: one statement per page — the aggregate over the project's spans in the lookback
// window, joined with the project's governance (policies, budgets, halts) for each agent found.
import { sql } from 'kysely';
import type { Db } from '../db/db.js';

export interface AgentStatsRow {
  agent_name: string; total_spans: string; error_spans: string; llm_calls: string; total_tool_calls: string;
  total_cost_usd: string; input_tokens: string; output_tokens: string; first_ns: string; last_ns: string;
  tools_used: string[]; models_used: string[];
  /** Enabled, non-shadow policies covering the agent (applies_to empty or naming it, or an expression naming it as a literal). */
  policies_covering: number; has_approval_policy: boolean; has_blocking_policy: boolean;
  /** An active budget of the project or of this agent. */
  has_budget: boolean;
  /** An active halt of the project or of this agent. */
  is_halted: boolean;
}

export const MAX_AGENTS = 1000;

/**
 * The per-agent totals of a set of spans (a FROM over telemetry.spans aliased `s`, grouped by
 * agent_name): the live aggregate and agent_rollup_task's daily rows use the same expressions, so
 * a rolled-up day holds exactly what the live aggregate would compute for it.
 */
export const AGENT_AGGREGATES = `
  count(*) AS spans,
  count(*) FILTER (WHERE s.status_code = 2) AS error_spans,
  count(*) FILTER (WHERE s.is_llm) AS llm_calls,
  count(*) FILTER (WHERE s.is_tool) AS tool_calls,
  coalesce(sum(s.cost_usd), 0) AS cost_usd,
  coalesce(sum(s.input_tokens), 0) AS input_tokens,
  coalesce(sum(s.output_tokens), 0) AS output_tokens,
  min(s.start_time_unix_nano) AS first_ns,
  max(s.start_time_unix_nano) AS last_ns,
  coalesce(array_agg(DISTINCT s.tool_name ORDER BY s.tool_name) FILTER (WHERE s.tool_name IS NOT NULL), '{}') AS tools_used,
  coalesce(array_agg(DISTINCT s.model ORDER BY s.model) FILTER (WHERE s.model IS NOT NULL), '{}') AS models_used`;

/** Spans that belong to an agent (the inventory ignores the others). */
export const HAS_AGENT = `s.agent_name IS NOT NULL AND s.agent_name <> ''`;

/**
 * Per-agent totals over the last `days` days, then per agent found the governance that covers it:
 * the project's few policies, budgets and active halts are read once (CTEs) and matched set-wise,
 * never one query per agent.
 *
 * The window [now - days, now] is cut into UTC days. The latest run of consecutive complete days
 * that agent_rollup_task has rolled up (listed in telemetry.agent_daily_days; normally every
 * complete day of the window) is read from telemetry.agent_daily; the spans before that run (the
 * partial first day, days not rolled up yet) and after it (today, future-dated spans) are
 * aggregated live, one range scan of spans_project_time_idx each. Both parts are merged per agent
 * (sums, min/max, union of the tool and model sets) in the same statement, so one snapshot answers.
 * `live: true` aggregates the whole window live (the reference the rollup is tested against).
 */
export async function agentStats(db: Db, projectId: string, days: number, opts: { live?: boolean } = {}): Promise<AgentStatsRow[]> {
  const useRollup = opts.live !== true;
  const r = await sql<AgentStatsRow>`
    WITH bounds AS (
      SELECT now() - make_interval(days => ${days}::integer) AS lo, (now() AT TIME ZONE 'UTC')::date AS today
    ), rolled_up AS (
      SELECT r.day, r.day - (row_number() OVER (ORDER BY r.day))::integer AS island
      FROM telemetry.agent_daily_days r, bounds b
      WHERE ${useRollup} AND r.project_id = ${projectId}
        AND r.day > (b.lo AT TIME ZONE 'UTC')::date AND r.day < b.today
    ), block AS (
      -- The latest run of consecutive rolled-up days (normally all complete days of the window).
      SELECT min(day) AS d0, max(day) AS d1 FROM rolled_up
      WHERE island = (SELECT island FROM rolled_up ORDER BY day DESC LIMIT 1)
    ), cut AS (
      SELECT coalesce(d0::timestamp AT TIME ZONE 'UTC', 'infinity') AS c0,
        coalesce((d1 + 1)::timestamp AT TIME ZONE 'UTC', 'infinity') AS c1
      FROM block
    ), rolled AS (
      SELECT r.day FROM rolled_up r, block k WHERE r.day BETWEEN k.d0 AND k.d1
    ), ranges AS (
      -- What is aggregated live: the window before the block, and from the block's end on (today, future-dated spans).
      SELECT b.lo, c.c0 AS hi FROM bounds b, cut c WHERE c.c0 > b.lo
      UNION ALL
      SELECT c.c1, 'infinity'::timestamptz FROM cut c WHERE c.c1 < 'infinity'::timestamptz
    ), live AS (
      -- LATERAL: one range scan of spans_project_time_idx per range (a join could scan spans whole).
      SELECT x.* FROM ranges g CROSS JOIN LATERAL (
        SELECT s.agent_name, ${sql.raw(AGENT_AGGREGATES)}
        FROM telemetry.spans s
        WHERE s.project_id = ${projectId} AND s.start_time >= g.lo AND s.start_time < g.hi AND ${sql.raw(HAS_AGENT)}
        GROUP BY s.agent_name
      ) x
    ), parts AS (
      SELECT * FROM live
      UNION ALL
      SELECT a.agent_name, a.spans, a.error_spans, a.llm_calls, a.tool_calls, a.cost_usd, a.input_tokens, a.output_tokens,
        a.first_ns, a.last_ns, a.tools_used, a.models_used
      FROM telemetry.agent_daily a JOIN rolled r ON a.project_id = ${projectId} AND a.day = r.day
    ), tools AS (
      SELECT p.agent_name, array_agg(DISTINCT t ORDER BY t) AS a FROM parts p, unnest(p.tools_used) AS t GROUP BY p.agent_name
    ), models AS (
      SELECT p.agent_name, array_agg(DISTINCT m ORDER BY m) AS a FROM parts p, unnest(p.models_used) AS m GROUP BY p.agent_name
    ), stats AS (
      SELECT p.agent_name,
        sum(p.spans) AS n,
        sum(p.error_spans)::text AS error_spans,
        sum(p.llm_calls)::text AS llm_calls,
        sum(p.tool_calls)::text AS total_tool_calls,
        sum(p.cost_usd)::text AS total_cost_usd,
        sum(p.input_tokens)::text AS input_tokens,
        sum(p.output_tokens)::text AS output_tokens,
        min(p.first_ns)::text AS first_ns,
        max(p.last_ns)::text AS last_ns,
        coalesce(min(t.a), '{}') AS tools_used,
        coalesce(min(m.a), '{}') AS models_used
      FROM parts p LEFT JOIN tools t ON t.agent_name = p.agent_name LEFT JOIN models m ON m.agent_name = p.agent_name
      GROUP BY p.agent_name
      ORDER BY sum(p.spans) DESC, p.agent_name
      LIMIT ${MAX_AGENTS}
    ), policy AS (
      SELECT applies_to, match_expression, action FROM core.policies
      WHERE project_id = ${projectId} AND enabled AND NOT shadow
    ), covering AS (
      -- An expression "names" an agent when it holds the name as a CEL string literal ("x" or 'x').
      SELECT s.agent_name, count(*)::integer AS n,
        bool_or(p.action = 'require_approval') AS approval,
        bool_or(p.action IN ('block', 'throttle', 'halt', 'require_approval')) AS blocking
      FROM stats s JOIN policy p
        ON cardinality(p.applies_to) = 0 OR s.agent_name = ANY (p.applies_to)
        OR strpos(p.match_expression, '"' || s.agent_name || '"') > 0 OR strpos(p.match_expression, '''' || s.agent_name || '''') > 0
      GROUP BY s.agent_name
    ), budget AS (
      SELECT scope, scope_value FROM core.budgets WHERE project_id = ${projectId} AND is_active AND scope IN ('project', 'agent')
    ), halt AS (
      SELECT scope, scope_value FROM core.halts WHERE project_id = ${projectId} AND cleared_at IS NULL
    )
    SELECT s.agent_name, s.n::text AS total_spans, s.error_spans, s.llm_calls, s.total_tool_calls, s.total_cost_usd,
      s.input_tokens, s.output_tokens, s.first_ns, s.last_ns, s.tools_used, s.models_used,
      coalesce(c.n, 0) AS policies_covering,
      coalesce(c.approval, false) AS has_approval_policy,
      coalesce(c.blocking, false) AS has_blocking_policy,
      EXISTS (SELECT 1 FROM budget b WHERE b.scope = 'project' OR b.scope_value = s.agent_name) AS has_budget,
      EXISTS (SELECT 1 FROM halt h WHERE h.scope = 'project' OR h.scope_value = s.agent_name) AS is_halted
    FROM stats s LEFT JOIN covering c ON c.agent_name = s.agent_name
    ORDER BY s.n DESC, s.agent_name`.execute(db);
  return r.rows;
}
