// GET /v1/policies/suggest and GET /v1/policies/conflicts (SPEC §7.3): heuristics over what the
// agents did (tools and models seen in stored spans) and over the project's policies.
import { environment } from './cel.js';
import type { Queryable } from './change.js';
import type { PolicyAction, PolicyRow } from './policies.js';
import { findTemplate } from './templates.js';

// ---- suggestions --------------------------------------------------------------------------------

export interface Suggestion {
  risk_level: 'critical' | 'high' | 'medium' | 'low'; owasp_ref: string; description: string; recommendation: string; reason: string;
  policy: { name: string; match_expression: string; action: PolicyAction };
}

const CODE_EXECUTION = /(^|[_.-])(exec|shell|bash|eval|run_command|subprocess|os_system|python_exec|terminal)([_.-]|$)/i;
const DESTRUCTIVE = /(^|[_.-])(delete|drop|remove|rm|destroy|truncate|shutdown|deploy|send_email|email|transfer|payment|pay|refund|wire|purchase|write_file)([_.-]|$)/i;
const EXPENSIVE_MODELS = /^(gpt-4(-turbo|-32k)?|o1|o3|claude-(3-)?opus|claude-opus-4|gemini-1\.5-pro|gemini-2\.5-pro|gpt-5)([-@:._]|$)/i;

const quoteList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

function mentioned(policies: Pick<PolicyRow, 'enabled' | 'match_expression'>[], needle: string): boolean {
  return policies.some((p) => p.enabled && p.match_expression.includes(needle));
}

export async function suggestPolicies(db: Queryable, projectId: string, lookbackDays: number) {
  const since = `${lookbackDays} days`;
  const [tools, models, agents, policies] = await Promise.all([
    db.query<{ tool_name: string }>(
      `SELECT tool_name FROM telemetry.spans WHERE project_id = $1 AND tool_name IS NOT NULL AND start_time > now() - $2::interval
       GROUP BY tool_name ORDER BY count(*) DESC LIMIT 200`, [projectId, since]),
    db.query<{ model: string }>(
      `SELECT model FROM telemetry.spans WHERE project_id = $1 AND model IS NOT NULL AND start_time > now() - $2::interval
       GROUP BY model ORDER BY count(*) DESC LIMIT 100`, [projectId, since]),
    db.query<{ n: string }>(
      `SELECT count(DISTINCT agent_name)::text AS n FROM telemetry.traces WHERE project_id = $1 AND agent_name IS NOT NULL AND start_time > now() - $2::interval`,
      [projectId, since]),
    db.query<Pick<PolicyRow, 'enabled' | 'match_expression'>>('SELECT match_expression, enabled FROM core.policies WHERE project_id = $1', [projectId]),
  ]);
  const toolNames = tools.rows.map((r) => r.tool_name);
  const modelNames = models.rows.map((r) => r.model);
  const ps = policies.rows;
  const suggestions: Suggestion[] = [];

  const exec = toolNames.filter((x) => CODE_EXECUTION.test(x) && !mentioned(ps, JSON.stringify(x)));
  if (exec.length) {
    suggestions.push({
      risk_level: 'critical', owasp_ref: 'ASI05:2026',
      description: 'Agents call tools that execute code or shell commands, and no policy covers them.',
      recommendation: 'Block these tools, or require approval for them.',
      reason: `code execution tools without a policy: ${exec.join(', ')}`,
      policy: { name: 'Block code execution tools', match_expression: `attrs["gen_ai.tool.name"] in ${quoteList(exec)}`, action: 'block' },
    });
  }
  const destructive = toolNames.filter((x) => DESTRUCTIVE.test(x) && !CODE_EXECUTION.test(x) && !mentioned(ps, JSON.stringify(x)));
  if (destructive.length) {
    suggestions.push({
      risk_level: 'high', owasp_ref: 'LLM06:2025',
      description: 'Agents call tools with irreversible effects (deleting, sending, deploying, paying) without human approval.',
      recommendation: 'Require a person to approve these tool calls.',
      reason: `destructive tools without a policy: ${destructive.join(', ')}`,
      policy: { name: 'Destructive tools need approval', match_expression: `attrs["gen_ai.tool.name"] in ${quoteList(destructive)}`, action: 'require_approval' },
    });
  }
  if (modelNames.length && !mentioned(ps, 'gen_ai.prompt')) {
    const tpl = findTemplate('block-prompt-injection');
    if (tpl) {
      suggestions.push({
        risk_level: 'high', owasp_ref: 'LLM01:2025',
        description: 'Agents make LLM calls and no policy inspects prompts for injection.',
        recommendation: 'Apply the prompt injection template (shadow mode first to see what it would block).',
        reason: `${modelNames.length} model(s) in use, no policy reads gen_ai.prompt`,
        policy: { name: tpl.name, match_expression: tpl.match_expression, action: tpl.action },
      });
    }
  }
  const expensive = modelNames.filter((m) => EXPENSIVE_MODELS.test(m) && !mentioned(ps, JSON.stringify(m)));
  if (expensive.length) {
    suggestions.push({
      risk_level: 'medium', owasp_ref: 'LLM10:2025',
      description: 'Expensive models are called without a rate limit.',
      recommendation: 'Throttle them (and set a cost budget).',
      reason: `expensive models without a policy: ${expensive.join(', ')}`,
      policy: { name: 'Throttle expensive models', match_expression: `attrs["gen_ai.request.model"] in ${quoteList(expensive)}`, action: 'throttle' },
    });
  }
  if (modelNames.length && !mentioned(ps, 'gen_ai.completion')) {
    const tpl = findTemplate('block-pii-outbound');
    if (tpl) {
      suggestions.push({
        risk_level: 'medium', owasp_ref: 'LLM02:2025',
        description: 'No policy checks model output for personal data.',
        recommendation: 'Apply the PII template.',
        reason: 'no policy reads gen_ai.completion',
        policy: { name: tpl.name, match_expression: tpl.match_expression, action: tpl.action },
      });
    }
  }
  if (toolNames.length && !ps.some((p) => p.enabled && /!\s*\(\s*attrs\["gen_ai\.tool\.name"\]\s+in\b/.test(p.match_expression))) {
    suggestions.push({
      risk_level: 'low', owasp_ref: 'ASI02:2026',
      description: 'Tools are allowed unless a policy names them; an allowlist inverts that.',
      recommendation: 'Allow only the tools observed (review the list first).',
      reason: `${toolNames.length} tool(s) observed, no allowlist policy`,
      policy: { name: 'Tool allowlist', match_expression: `!(attrs["gen_ai.tool.name"] in ${quoteList(toolNames.slice(0, 50))})`, action: 'block' },
    });
  }
  return { suggestions, count: suggestions.length, lookback_days: lookbackDays, agents_analyzed: Number(agents.rows[0]?.n ?? 0) };
}

// ---- conflicts ----------------------------------------------------------------------------------

export interface ConflictEntry {
  type: 'shadowed' | 'contradictory' | 'duplicate'; reason: string;
  policy_a: { id: string; name: string }; policy_b: { id: string; name: string };
}

const TERMINAL: PolicyAction[] = ['block', 'halt'];
const RESTRICTIVE: PolicyAction[] = ['block', 'halt', 'require_approval', 'throttle', 'steer'];

type Node = { op: string; args: unknown };
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && 'op' in v && 'args' in v;

/** The tool names an expression matches, when it is only a test of gen_ai.tool.name (== / in / ||). */
export function toolSet(expression: string): Set<string> | null {
  let ast: unknown;
  try {
    ast = environment().parse(expression).ast;
  } catch {
    return null;
  }
  const isToolAttr = (n: unknown) => isNode(n) && n.op === '[]' && Array.isArray(n.args)
    && isNode(n.args[0]) && n.args[0].op === 'id' && n.args[0].args === 'attrs'
    && isNode(n.args[1]) && n.args[1].op === 'value' && n.args[1].args === 'gen_ai.tool.name';
  const strValue = (n: unknown): string | null => (isNode(n) && n.op === 'value' && typeof n.args === 'string' ? n.args : null);
  const walk = (n: unknown): Set<string> | null => {
    if (!isNode(n) || !Array.isArray(n.args)) return null;
    const [l, r] = n.args as unknown[];
    if (n.op === '==') {
      const v = isToolAttr(l) ? strValue(r) : isToolAttr(r) ? strValue(l) : null;
      return v === null ? null : new Set([v]);
    }
    if (n.op === 'in' && isToolAttr(l) && isNode(r) && r.op === 'list' && Array.isArray(r.args)) {
      const vs = r.args.map(strValue);
      return vs.every((v): v is string => v !== null) ? new Set(vs) : null;
    }
    if (n.op === '||') {
      const a = walk(l);
      const b = walk(r);
      return a && b ? new Set([...a, ...b]) : null;
    }
    return null;
  };
  return walk(ast);
}

const normalized = (e: string) => e.replace(/\s+/g, ' ').trim();

export function findConflicts(policies: PolicyRow[]) {
  const active = policies.filter((p) => p.enabled && !p.shadow);
  const sets = new Map(active.map((p) => [p.id, toolSet(p.match_expression)]));
  const conflicts: ConflictEntry[] = [];
  const ref = (p: PolicyRow) => ({ id: p.id, name: p.name });
  const overlaps = (a: PolicyRow, b: PolicyRow) => {
    const x = a.applies_to;
    const y = b.applies_to;
    return !x.length || !y.length || x.some((v) => y.includes(v));
  };
  for (let i = 0; i < active.length; i++) {
    for (let j = i + 1; j < active.length; j++) {
      // a: the one that takes precedence (higher priority; earlier on ties).
      const [a, b] = (active[j] as PolicyRow).priority > (active[i] as PolicyRow).priority ? [active[j] as PolicyRow, active[i] as PolicyRow] : [active[i] as PolicyRow, active[j] as PolicyRow];
      if (!overlaps(a, b)) continue;
      const contradictory = (a.action === 'allow' && RESTRICTIVE.includes(b.action)) || (b.action === 'allow' && RESTRICTIVE.includes(a.action));
      if (normalized(a.match_expression) === normalized(b.match_expression)) {
        if (a.action === b.action) conflicts.push({ type: 'duplicate', reason: `same match expression and action (${a.action})`, policy_a: ref(a), policy_b: ref(b) });
        else if (contradictory) conflicts.push({ type: 'contradictory', reason: `same match expression, opposite actions: ${a.action} vs ${b.action}`, policy_a: ref(a), policy_b: ref(b) });
        else if (TERMINAL.includes(a.action)) conflicts.push({ type: 'shadowed', reason: `"${b.name}" (${b.action}) matches exactly what "${a.name}" already ${a.action}s at higher or equal priority`, policy_a: ref(a), policy_b: ref(b) });
        continue;
      }
      const sa = sets.get(a.id);
      const sb = sets.get(b.id);
      if (!sa || !sb) continue;
      const common = [...sb].filter((x) => sa.has(x));
      if (!common.length) continue;
      if (contradictory) {
        conflicts.push({ type: 'contradictory', reason: `${a.action} and ${b.action} for the same tools: ${common.join(', ')}`, policy_a: ref(a), policy_b: ref(b) });
      } else if (a.action === b.action && sa.size === sb.size && common.length === sb.size) {
        conflicts.push({ type: 'duplicate', reason: `both ${a.action} the same tools: ${common.join(', ')}`, policy_a: ref(a), policy_b: ref(b) });
      } else if (TERMINAL.includes(a.action) && common.length === sb.size) {
        conflicts.push({ type: 'shadowed', reason: `every tool "${b.name}" matches is already ${a.action === 'halt' ? 'halted' : 'blocked'} by "${a.name}" at higher or equal priority: ${common.join(', ')}`, policy_a: ref(a), policy_b: ref(b) });
      }
    }
  }
  return { conflicts, policies_analyzed: active.length };
}
