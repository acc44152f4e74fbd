// Agent inventory: one aggregate over the project's spans in the lookback window.
import { sql } from 'kysely';
import type { Db } from '../db/db.js';

export interface AgentStatsRow {
  agent_name: string; total_spans: string; error_spans: string; llm_calls: string; total_tool_calls: string;
  total_cost_usd: string; input_tokens: string; output_tokens: string; first_ns: string; last_ns: string;
  tools_used: string[]; models_used: string[];
}

export const MAX_AGENTS = 1000;

/** Per-agent totals over the last `days` days (a range scan of spans_project_time_idx). */
export async function agentStats(db: Db, projectId: string, days: number): Promise<AgentStatsRow[]> {
  const r = await sql<AgentStatsRow>`
    SELECT agent_name,
      count(*)::text AS total_spans,
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
    LIMIT ${MAX_AGENTS}`.execute(db);
  return r.rows;
}
