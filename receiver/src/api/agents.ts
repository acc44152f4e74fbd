// GET /v1/agents: agent inventory over `lookback_days`, with the governance covering each agent and a risk score.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { agentStats, type AgentStatsRow } from '../query/agents.js';
import { principalOf } from './app.js';
import { scope, type Route } from './routes.js';
import { parseIntParam, queryStringAny } from './params.js';
import { jsonInt, money, rfc3339 } from './serialize.js';

/** Tool names whose misuse does real damage (Strathon's list, so scores agree with its dashboard). */
export const SENSITIVE_TOOLS: ReadonlySet<string> = new Set([
  'shell_exec', 'eval', 'exec', 'os_system', 'subprocess_run', 'rm', 'rmdir', 'drop_table', 'delete_database', 'format_disk',
  'send_email', 'send_message', 'http_request', 'fetch', 'web_request', 'curl', 'database_query', 'sql_query',
]);

export type RiskScore = 'low' | 'medium' | 'high' | 'critical';

/** What governs an agent (from the project's policies, budgets and halts). */
export interface AgentGovernance { policiesCovering: number; hasBlockingPolicy: boolean; hasBudget: boolean; isHalted: boolean }

/**
 * Risk from what the receiver observes, weighed against the governance covering the agent:
 * sensitive tools +3 (+1 when a block/throttle/halt/approval policy covers the agent); error rate
 * ≥ 25 % +2 (≥ 5 % +1); ≥ 5 distinct tools +1; tool calls with no covering policy +1. A missing
 * budget and an active halt are reported as factors without points. Points: ≥ 6 critical,
 * ≥ 4 high, ≥ 2 medium, else low.
 */
export function assessRisk(a: { totalSpans: number; errorSpans: number; toolCalls: number; tools: string[] }, g: AgentGovernance): { risk_score: RiskScore; risk_factors: string[] } {
  let points = 0;
  const factors: string[] = [];
  const sensitive = a.tools.filter((t) => SENSITIVE_TOOLS.has(t.toLowerCase()));
  if (sensitive.length > 0 && !g.hasBlockingPolicy) {
    points += 3;
    factors.push(`Uses sensitive tools (${sensitive.join(', ')}) with no block/throttle/halt/approval policy`);
  } else if (sensitive.length > 0) {
    points += 1;
    factors.push(`Uses sensitive tools (${sensitive.join(', ')}) under a blocking policy`);
  }
  const errorRate = a.totalSpans > 0 ? a.errorSpans / a.totalSpans : 0;
  const pct = `${Math.round(errorRate * 1000) / 10}%`;
  if (errorRate >= 0.25) {
    points += 2;
    factors.push(`High error rate: ${pct} of ${a.totalSpans} spans failed`);
  } else if (errorRate >= 0.05) {
    points += 1;
    factors.push(`Elevated error rate: ${pct} of ${a.totalSpans} spans failed`);
  }
  if (a.tools.length >= 5) {
    points += 1;
    factors.push(`Broad tool surface: ${a.tools.length} distinct tools`);
  }
  if (g.policiesCovering === 0 && a.toolCalls > 0) {
    points += 1;
    factors.push(`Made ${a.toolCalls} tool calls with no policy covering this agent`);
  } else if (g.policiesCovering === 0) {
    factors.push('No policies covering this agent');
  }
  if (!g.hasBudget) factors.push('No cost budget configured');
  if (g.isHalted) factors.push('Agent is halted');
  const risk_score: RiskScore = points >= 6 ? 'critical' : points >= 4 ? 'high' : points >= 2 ? 'medium' : 'low';
  return { risk_score, risk_factors: factors };
}

function agentJson(r: AgentStatsRow) {
  const totalSpans = Number(r.total_spans);
  const errorSpans = Number(r.error_spans);
  const toolCalls = Number(r.total_tool_calls);
  const governance = { policiesCovering: r.policies_covering, hasBlockingPolicy: r.has_blocking_policy, hasBudget: r.has_budget, isHalted: r.is_halted };
  return {
    agent_name: r.agent_name,
    first_seen: rfc3339(r.first_ns),
    last_active: rfc3339(r.last_ns),
    total_spans: totalSpans,
    error_spans: errorSpans,
    llm_calls: Number(r.llm_calls),
    total_tool_calls: toolCalls,
    total_cost_usd: money(r.total_cost_usd),
    input_tokens: jsonInt(r.input_tokens),
    output_tokens: jsonInt(r.output_tokens),
    tools_used: r.tools_used,
    models_used: r.models_used,
    policies_covering: r.policies_covering,
    has_budget: r.has_budget,
    has_approval_policy: r.has_approval_policy,
    is_halted: r.is_halted,
    ...assessRisk({ totalSpans, errorSpans, toolCalls, tools: r.tools_used }, governance),
  };
}

export function agentRoutes(ctx: ReceiverContext): Route[] {
  const list = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    // Strathon's receiver names it `days`; the SPEC (and its dashboard) `lookback_days`.
    const name = queryStringAny(req, ['lookback_days', 'days'])?.name ?? 'lookback_days';
    const days = parseIntParam(req, name, 30, 1, 3650);
    const agents = (await agentStats(ctx.db, projectId, days)).map(agentJson);
    res.json({ agents, count: agents.length, lookback_days: days });
  };
  return [{ method: 'GET', path: '/v1/agents', auth: scope('traces:read'), body: 'none', handler: list }];
}
