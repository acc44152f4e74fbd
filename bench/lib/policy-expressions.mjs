// The 20 match expressions of bench/policies.mjs (also pinned by receiver/test/governance/cel-fast.test.ts).
/** 20 expressions of the kinds Strathon's docs and our templates use; none matches the bench's spans often. */
export const POLICY_EXPRESSIONS = [
  'attrs["gen_ai.tool.name"] == "delete_database"',
  'attrs["gen_ai.tool.name"] in ["rm_rf", "drop_table", "shutdown"]',
  '"gen_ai.prompt" in attrs && attrs["gen_ai.prompt"].contains("ignore previous instructions")',
  'span.name.startsWith("admin.")',
  'span.model == "o1-pro" && span.input_tokens > 100000',
  'span.cost_usd > 5.0',
  'span.duration_ms > 600000.0',
  'span.status == "ERROR" && span.agent == "payments-agent"',
  'attrs["gen_ai.tool.name"] == "send_email" && span.agent == "untrusted-agent"',
  'span.output_tokens > 200000',
  '"http.url" in attrs && attrs["http.url"].matches("^https?://(10|192\\\\.168)\\\\.")',
  'span.service == "legacy-billing"',
  'attrs["gen_ai.tool.name"] == "run_sql" && "db.statement" in attrs && attrs["db.statement"].contains("DROP")',
  'span.name.contains("secret") || span.name.contains("password")',
  'span.kind == "SERVER" && span.agent == "nobody"',
  'span.model.startsWith("gpt-3")',
  '"user.email" in attrs && attrs["user.email"].endsWith("@competitor.example")',
  'span.input_tokens + span.output_tokens > 500000',
  'attrs["gen_ai.tool.name"] == "transfer_funds"',
  'now.getHours() == 25',
];
