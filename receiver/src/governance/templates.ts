// The built-in, read-only policy template catalogue (SPEC §8.1), mapped to the OWASP Top 10 for LLM
// Applications (2025: LLM01…LLM10) and for Agentic Applications (2026: ASI01…ASI10). Applying a
// template creates an ordinary policy (POST /v1/policy-templates/{id}/apply); every expression here
// compiles in the receiver's CEL environment (a test proves it).
import type { PolicyAction } from './policies.js';

export interface PolicyTemplate {
  id: string; name: string; description: string; owasp_risks: string[]; action: PolicyAction; match_expression: string;
  action_config: Record<string, unknown>; applies_to: string[]; tags: string[];
}

const t = (x: Omit<PolicyTemplate, 'action_config' | 'applies_to'> & Partial<Pick<PolicyTemplate, 'action_config' | 'applies_to'>>): PolicyTemplate => ({
  action_config: {}, applies_to: [], ...x,
});

export const TEMPLATES: readonly PolicyTemplate[] = [
  t({
    id: 'block-prompt-injection',
    name: 'Block prompt injection',
    description: 'Blocks LLM calls whose prompt carries common instruction-override phrases ("ignore previous instructions", "you are now", requests to reveal the system prompt).',
    owasp_risks: ['LLM01:2025', 'ASI01:2026'],
    action: 'block',
    match_expression: 'attrs["gen_ai.prompt"].matches("(?i)(ignore (all )?(previous|prior|above) instructions|disregard (your|the|all) (previous |prior )?(instructions|rules)|forget your instructions|you are now|pretend to be|reveal (your|the) system prompt)")',
    tags: ['security', 'prompt-injection'],
  }),
  t({
    id: 'block-pii-outbound',
    name: 'Block PII in model output',
    description: 'Blocks responses that contain a US social security number, a payment card number or an email address before they leave the agent.',
    owasp_risks: ['LLM02:2025'],
    action: 'block',
    match_expression: String.raw`attrs["gen_ai.completion"].matches("\\b\\d{3}-\\d{2}-\\d{4}\\b") || attrs["gen_ai.completion"].matches("\\b(?:\\d[ -]?){13,16}\\b") || attrs["gen_ai.completion"].matches("(?i)\\b[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}\\b")`,
    tags: ['privacy', 'pii', 'data-protection'],
  }),
  t({
    id: 'tool-allowlist',
    name: 'Tool allowlist',
    description: 'Blocks every tool call whose tool is not on the list. Edit the list to the tools your agents are meant to use.',
    owasp_risks: ['LLM06:2025', 'ASI02:2026'],
    action: 'block',
    match_expression: '!(attrs["gen_ai.tool.name"] in ["search", "read_document", "summarize", "calculate", "send_response"])',
    tags: ['security', 'least-privilege'],
  }),
  t({
    id: 'destructive-tools-need-approval',
    name: 'Destructive tools need approval',
    description: 'Holds tool calls that delete, deploy, send or move money until a person approves them.',
    owasp_risks: ['LLM06:2025', 'ASI02:2026', 'ASI09:2026'],
    action: 'require_approval',
    match_expression: 'attrs["gen_ai.tool.name"] in ["delete_file", "delete_record", "drop_table", "send_email", "deploy", "shutdown", "transfer_funds", "refund_payment", "rm"]',
    tags: ['human-in-the-loop', 'destructive-actions'],
  }),
  t({
    id: 'throttle-expensive-models',
    name: 'Throttle expensive models',
    description: 'Limits calls to the most expensive models to 10 per minute per agent, so a loop cannot burn the budget in minutes.',
    owasp_risks: ['LLM10:2025', 'ASI08:2026'],
    action: 'throttle',
    match_expression: 'attrs["gen_ai.request.model"] in ["gpt-4", "gpt-4-turbo", "o1", "claude-opus-4", "claude-3-opus", "gemini-1.5-pro"]',
    action_config: { max_calls: 10, window_seconds: 60 },
    tags: ['cost', 'rate-limit'],
  }),
  t({
    id: 'block-secret-leakage',
    name: 'Block secret leakage',
    description: 'Blocks prompts and responses that contain API keys, access tokens or private keys (OpenAI, GitHub, AWS, Strathon, PEM).',
    owasp_risks: ['LLM02:2025', 'LLM07:2025'],
    action: 'block',
    match_expression: 'attrs["gen_ai.prompt"].matches("(sk-[A-Za-z0-9_-]{20,}|ghp_[A-Za-z0-9]{36}|AKIA[0-9A-Z]{16}|stra_[A-Za-z0-9_-]{43}|-----BEGIN [A-Z ]*PRIVATE KEY-----)") || attrs["gen_ai.completion"].matches("(sk-[A-Za-z0-9_-]{20,}|ghp_[A-Za-z0-9]{36}|AKIA[0-9A-Z]{16}|stra_[A-Za-z0-9_-]{43}|-----BEGIN [A-Z ]*PRIVATE KEY-----)")',
    tags: ['security', 'secrets'],
  }),
  t({
    id: 'block-code-execution-tools',
    name: 'Block code execution tools',
    description: 'Blocks tools that run shell commands or evaluate code.',
    owasp_risks: ['ASI05:2026', 'LLM06:2025'],
    action: 'block',
    match_expression: 'attrs["gen_ai.tool.name"] in ["shell_exec", "bash", "exec", "eval", "python_exec", "run_command", "subprocess_run", "os_system"]',
    tags: ['security', 'code-execution'],
  }),
  t({
    id: 'block-sql-injection-in-tool-args',
    name: 'Block SQL injection in tool arguments',
    description: 'Blocks tool calls whose arguments carry SQL injection patterns (DROP TABLE, UNION SELECT, comment tails, 1=1).',
    owasp_risks: ['LLM05:2025', 'ASI02:2026'],
    action: 'block',
    match_expression: String.raw`attrs["strathon.tool.args"].matches("(?i)(drop\\s+table|union\\s+select|delete\\s+from|;\\s*--|\\bor\\s+1\\s*=\\s*1\\b)")`,
    tags: ['security', 'injection'],
  }),
  t({
    id: 'alert-expensive-call',
    name: 'Alert on expensive calls',
    description: 'Sends a policy.matched notification when a single LLM call costs more than one dollar.',
    owasp_risks: ['LLM10:2025'],
    action: 'alert',
    match_expression: 'attrs["gen_ai.usage.cost"] > 1.0',
    tags: ['cost', 'monitoring'],
  }),
  t({
    id: 'tools-in-business-hours',
    name: 'Tool calls only in business hours',
    description: 'Blocks tool calls outside Monday to Friday, 09:00 to 18:00 UTC, when nobody is around to oversee the agent.',
    owasp_risks: ['ASI09:2026', 'LLM06:2025'],
    action: 'block',
    match_expression: 'span.is_tool && (now.getDayOfWeek() == 0 || now.getDayOfWeek() == 6 || now.getHours() < 9 || now.getHours() >= 18)',
    tags: ['compliance', 'time-based', 'human-oversight'],
  }),
  t({
    id: 'halt-on-system-prompt-leak',
    name: 'Halt an agent that leaks its system prompt',
    description: 'Halts the agent (receiver-side) when a response repeats its instructions: the agent needs a person before it runs again.',
    owasp_risks: ['LLM07:2025', 'ASI10:2026'],
    action: 'halt',
    match_expression: 'attrs["gen_ai.completion"].matches("(?i)(my system prompt is|here (are|is) my (system )?(instructions|prompt)|i was instructed to)")',
    tags: ['security', 'kill-switch'],
  }),
  t({
    id: 'alert-outbound-http',
    name: 'Alert on outbound HTTP from tools',
    description: 'Notifies when an HTTP tool is called with a URL in its arguments: the path data leaves by.',
    owasp_risks: ['LLM02:2025', 'ASI02:2026'],
    action: 'alert',
    match_expression: 'attrs["gen_ai.tool.name"] in ["http_request", "fetch", "web_request", "curl"] && attrs["strathon.tool.args"].matches("https?://")',
    tags: ['data-exfiltration', 'monitoring'],
  }),
  t({
    id: 'block-memory-poisoning',
    name: 'Block memory poisoning',
    description: 'Blocks writes to agent memory that try to plant standing instructions ("from now on", "always answer").',
    owasp_risks: ['ASI06:2026', 'LLM04:2025'],
    action: 'block',
    match_expression: 'attrs["gen_ai.tool.name"] in ["memory_write", "save_memory", "remember", "update_memory"] && attrs["strathon.tool.args"].matches("(?i)(ignore previous|from now on|always (say|respond|answer)|system prompt)")',
    tags: ['security', 'memory'],
  }),
];

export function templateJson(x: PolicyTemplate) {
  return { ...x, slug: x.id };
}

export function findTemplate(id: string): PolicyTemplate | undefined {
  return TEMPLATES.find((x) => x.id === id);
}
