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
 * Per-agent totals over the last `days` days (a range scan of spans_project_time_idx), then per
 * agent found the governance that covers it: the project's few policies, budgets and active halts
 * are read once (CTEs) and matched set-wise, never one query per agent.
 */
export async function agentStats(db: Db, projectId: string, days: number): Promise<AgentStatsRow[]> {
  const r = await sql<AgentStatsRow>`
    WITH stats AS (
      SELECT agent_name,
        count(*) AS n,
        (count(*) FILTER (WHERE status_code = 2))::text AS error_spans,
        (count(*) FILTER (WHERE is_llm))::text AS llm_calls,
        (count(*) FILTER (WHERE is_tool))::text AS total_tool_calls,
        coalesce(sum(cost_usd), 0)::text AS total_cost_usd,
        coalesce(sum(input_tokens), 0)::text AS input_tokens,
        coalesce(sum(output_tokens), 0)::text AS output_tokens,
        min(start_time_unix_nano)::text AS first_ns,
        max(start_time_unix_nano)::text AS last_ns,
        coalesce(array_agg(DISTINCT tool_name ORDER BY tool_name) FILTER (WHERE tool_name IS NOT NULL), '{}') AS tools_used,
        coalesce(array_agg(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL), '{}') AS models_used
      FROM telemetry.spans
      WHERE project_id = ${projectId}
        AND start_time >= now() - make_interval(days => ${days}::integer)
        AND agent_name IS NOT NULL AND agent_name <> ''
      GROUP BY agent_name
      ORDER BY count(*) DESC, agent_name
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
