-- Up Migration
-- GET /v1/agents over long windows (SPEC §7.3): per project, UTC day and agent, the same totals the
-- live aggregate computes, kept by agent_rollup_task. agent_daily_days records which (project, day)
-- were rolled up and when: a day is read from the rollup only when it is listed there (complete
-- days only; the partial first day of a window and today are always aggregated live).
CREATE TABLE telemetry.agent_daily (
  project_id    uuid NOT NULL,
  day           date NOT NULL,
  agent_name    text NOT NULL,
  spans         bigint NOT NULL,
  error_spans   bigint NOT NULL,
  llm_calls     bigint NOT NULL,
  tool_calls    bigint NOT NULL,
  cost_usd      numeric NOT NULL,
  input_tokens  numeric NOT NULL,
  output_tokens numeric NOT NULL,
  first_ns      bigint NOT NULL,
  last_ns       bigint NOT NULL,
  tools_used    text[] NOT NULL,
  models_used   text[] NOT NULL,
  PRIMARY KEY (project_id, day, agent_name)
);

CREATE TABLE telemetry.agent_daily_days (
  project_id    uuid NOT NULL,
  day           date NOT NULL,
  rolled_up_at  timestamptz NOT NULL,
  PRIMARY KEY (project_id, day)
);

-- Down Migration
DROP TABLE IF EXISTS telemetry.agent_daily_days;
DROP TABLE IF EXISTS telemetry.agent_daily;
