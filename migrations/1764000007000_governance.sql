-- Up Migration
-- SPEC §8: governance. Policies (CEL match expressions) and what the receiver recorded when it
-- evaluated them on ingested spans; halts (kill switches), human approvals, budgets and the budget
-- monitor's threshold crossings. Every key of these project-owned tables starts with project_id.

CREATE TABLE core.policies (
  project_id        uuid NOT NULL REFERENCES core.projects (id),
  id                uuid NOT NULL DEFAULT gen_random_uuid(),
  name              text NOT NULL,
  description       text,
  match_expression  text NOT NULL,
  action            text NOT NULL CHECK (action IN ('block', 'steer', 'throttle', 'log', 'alert', 'require_approval', 'allow', 'halt')),
  action_config     jsonb NOT NULL DEFAULT '{}',
  -- Agent names the policy applies to; empty = every agent.
  applies_to        text[] NOT NULL DEFAULT '{}',
  enabled           boolean NOT NULL DEFAULT true,
  priority          integer NOT NULL DEFAULT 0,
  -- A shadow policy records what it would have done and never acts.
  shadow            boolean NOT NULL DEFAULT false,
  template_id       text,
  match_count       bigint NOT NULL DEFAULT 0,
  last_matched_at   timestamptz,
  error_count       bigint NOT NULL DEFAULT 0,
  last_error        text,
  last_error_at     timestamptz,
  created_by        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id)
);

-- One row per (policy, span) that matched or failed to evaluate. The unique key makes recording
-- idempotent: a span re-sent by a client (stored once by the writer) is not counted twice.
-- GET /v1/policies/evaluations reads newest first through the primary key.
CREATE TABLE core.policy_evaluations (
  project_id       uuid NOT NULL,
  id               bigint GENERATED ALWAYS AS IDENTITY,
  policy_id        uuid NOT NULL,
  outcome          text NOT NULL CHECK (outcome IN ('matched', 'error')),
  action           text NOT NULL,
  shadow           boolean NOT NULL,
  -- The receiver acted on the match (halted the agent, sent the alert); never for shadow policies.
  acted            boolean NOT NULL DEFAULT false,
  trace_id         bytea NOT NULL,
  span_id          bytea NOT NULL,
  span_name        text,
  span_start_time  timestamptz,
  agent_name       text,
  tool_name        text,
  error            text,
  evaluated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id),
  UNIQUE (project_id, policy_id, trace_id, span_id),
  FOREIGN KEY (project_id, policy_id) REFERENCES core.policies (project_id, id) ON DELETE CASCADE
);

CREATE TABLE core.halts (
  project_id     uuid NOT NULL REFERENCES core.projects (id),
  id             bigint GENERATED ALWAYS AS IDENTITY,
  scope          text NOT NULL CHECK (scope IN ('project', 'agent')),
  -- The agent name of an agent halt; null for a project halt.
  scope_value    text,
  reason         text NOT NULL DEFAULT '',
  actor_type     text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'policy', 'budget')),
  actor_id       text,
  actor_display  text,
  budget_id      uuid,
  policy_id      uuid,
  set_at         timestamptz NOT NULL DEFAULT now(),
  cleared_at     timestamptz,
  cleared_by     text,
  PRIMARY KEY (project_id, id),
  CHECK ((scope = 'project') = (scope_value IS NULL))
);
-- GET /v1/halts and POST /v1/intervention/sync (every agent, every second): the active halts of a
-- project, by agent. Cleared halts are history and stay out of the index.
CREATE INDEX halts_active_idx ON core.halts (project_id, scope_value) WHERE cleared_at IS NULL;
-- A halt policy or a budget halts one target once: at most one active halt per (policy | budget,
-- target), however many spans match and however many replicas evaluate them.
CREATE UNIQUE INDEX halts_policy_active_key ON core.halts (project_id, policy_id, scope, coalesce(scope_value, ''))
  WHERE cleared_at IS NULL AND policy_id IS NOT NULL;
CREATE UNIQUE INDEX halts_budget_active_key ON core.halts (project_id, budget_id, scope, coalesce(scope_value, ''))
  WHERE cleared_at IS NULL AND budget_id IS NOT NULL;

CREATE TABLE core.approvals (
  project_id          uuid NOT NULL REFERENCES core.projects (id),
  id                  uuid NOT NULL DEFAULT gen_random_uuid(),
  policy_id           uuid,
  policy_name         text,
  trace_id            text,
  span_id             text,
  span_name           text,
  agent_name          text,
  tool_name           text,
  tool_args           jsonb,
  status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
  requested_at        timestamptz NOT NULL DEFAULT now(),
  timeout_seconds     integer NOT NULL CHECK (timeout_seconds > 0),
  expires_at          timestamptz NOT NULL,
  resolved_at         timestamptz,
  resolved_by         text,
  approvers_required  integer NOT NULL DEFAULT 1 CHECK (approvers_required >= 1),
  -- [{actor: {type, id, display}, decision: "approve" | "deny", comment, timestamp}]
  approval_decisions  jsonb NOT NULL DEFAULT '[]',
  requested_by        text,
  PRIMARY KEY (project_id, id)
);
-- Intervention sync: the pending approvals of the polling agents.
CREATE INDEX approvals_pending_idx ON core.approvals (project_id, agent_name) WHERE status = 'pending';
-- Intervention sync: approvals decided since the agent's last poll.
CREATE INDEX approvals_resolved_idx ON core.approvals (project_id, resolved_at) WHERE resolved_at IS NOT NULL;
-- The budget monitor's expiry sweep: pending approvals by deadline, across projects.
CREATE INDEX approvals_expiry_idx ON core.approvals (expires_at) WHERE status = 'pending';
-- GET /v1/approvals: newest first.
CREATE INDEX approvals_requested_idx ON core.approvals (project_id, requested_at DESC, id DESC);

CREATE TABLE core.budgets (
  project_id           uuid NOT NULL REFERENCES core.projects (id),
  id                   uuid NOT NULL DEFAULT gen_random_uuid(),
  name                 text NOT NULL,
  scope                text NOT NULL CHECK (scope IN ('project', 'agent', 'model')),
  scope_value          text,
  budget_type          text NOT NULL CHECK (budget_type IN ('cost', 'iteration')),
  max_spend_usd        numeric(20, 10) CHECK (max_spend_usd > 0),
  max_repeated_calls   integer CHECK (max_repeated_calls > 0),
  loop_window_seconds  integer CHECK (loop_window_seconds > 0),
  budget_duration      text NOT NULL DEFAULT '1d' CHECK (budget_duration IN ('1h', '1d', '7d', '30d')),
  window_type          text NOT NULL DEFAULT 'fixed' CHECK (window_type IN ('fixed', 'rolling')),
  action               text NOT NULL DEFAULT 'halt' CHECK (action IN ('halt', 'alert')),
  -- Percentages of the limit; each crossing is recorded once per window (core.budget_crossings).
  thresholds           numeric[] NOT NULL DEFAULT '{80,100}',
  is_active            boolean NOT NULL DEFAULT true,
  auto_halted          boolean NOT NULL DEFAULT false,
  -- Written by the budget monitor on every tick: what it measured in the current window.
  spent_usd            numeric(20, 10) NOT NULL DEFAULT 0,
  current_count        integer NOT NULL DEFAULT 0,
  exhausted            boolean NOT NULL DEFAULT false,
  window_start         timestamptz,
  evaluated_at         timestamptz,
  created_by           text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id),
  CHECK ((scope = 'project') = (scope_value IS NULL)),
  CHECK (budget_type <> 'cost' OR max_spend_usd IS NOT NULL),
  CHECK (budget_type <> 'iteration' OR (max_repeated_calls IS NOT NULL AND loop_window_seconds IS NOT NULL))
);
-- The budget monitor and intervention sync read the active budgets.
CREATE INDEX budgets_active_idx ON core.budgets (project_id) WHERE is_active;

-- One row per threshold crossed per budget window. The unique key is the second guard of the
-- budget monitor (after its advisory lock): the crossing, its event and its halt are written in
-- one transaction that only the first inserter of the row commits with effects.
CREATE TABLE core.budget_crossings (
  project_id     uuid NOT NULL,
  id             bigint GENERATED ALWAYS AS IDENTITY,
  budget_id      uuid NOT NULL,
  window_start   timestamptz NOT NULL,
  threshold      numeric NOT NULL,
  event_type     text NOT NULL CHECK (event_type IN ('budget.threshold', 'budget.exceeded')),
  spent_usd      numeric(20, 10),
  current_count  integer,
  halt_ids       bigint[] NOT NULL DEFAULT '{}',
  crossed_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id),
  UNIQUE (project_id, budget_id, window_start, threshold),
  FOREIGN KEY (project_id, budget_id) REFERENCES core.budgets (project_id, id) ON DELETE CASCADE
);

-- A budget's window at time `at`: the key crossings are recorded under (window_start), the start
-- of the spend it measures (spend_from) and the end of the window (window_end). Fixed windows are
-- calendar-aligned in UTC (hour, day, ISO week, month); rolling windows measure the last duration
-- and key their crossings by the duration-aligned bucket, so replicas agree on the key.
CREATE FUNCTION core.budget_window(duration text, window_type text, at timestamptz,
  OUT window_start timestamptz, OUT spend_from timestamptz, OUT window_end timestamptz)
LANGUAGE sql STABLE AS $fn$
  SELECT CASE WHEN window_type = 'fixed' THEN f.start ELSE r.bucket END,
         CASE WHEN window_type = 'fixed' THEN f.start ELSE at - d.len END,
         CASE WHEN window_type = 'fixed' THEN f.start + d.step ELSE at + d.len END
  FROM (SELECT CASE duration WHEN '1h' THEN interval '1 hour' WHEN '1d' THEN interval '1 day'
                             WHEN '7d' THEN interval '7 days' ELSE interval '30 days' END AS len,
               CASE duration WHEN '1h' THEN interval '1 hour' WHEN '1d' THEN interval '1 day'
                             WHEN '7d' THEN interval '7 days' ELSE interval '1 month' END AS step,
               CASE duration WHEN '1h' THEN 3600 WHEN '1d' THEN 86400 WHEN '7d' THEN 604800 ELSE 2592000 END AS secs,
               CASE duration WHEN '1h' THEN 'hour' WHEN '1d' THEN 'day' WHEN '7d' THEN 'week' ELSE 'month' END AS unit) d,
       LATERAL (SELECT date_trunc(d.unit, at, 'UTC') AS start) f,
       LATERAL (SELECT to_timestamp(floor(extract(epoch FROM at) / d.secs) * d.secs) AS bucket) r
$fn$;

-- Budget monitor (cost budgets, every tick) and the cost forecast: the priced spans of a project
-- in a time range, with what a budget's scope filters on. Partial: only priced (LLM) spans pay for it.
CREATE INDEX spans_project_cost_time_idx ON telemetry.spans (project_id, start_time) INCLUDE (cost_usd, agent_name, model)
  WHERE cost_usd IS NOT NULL;

-- Down Migration
DROP INDEX IF EXISTS telemetry.spans_project_cost_time_idx;
DROP FUNCTION IF EXISTS core.budget_window(text, text, timestamptz);
DROP TABLE IF EXISTS core.budget_crossings;
DROP TABLE IF EXISTS core.budgets;
DROP TABLE IF EXISTS core.approvals;
DROP TABLE IF EXISTS core.halts;
DROP TABLE IF EXISTS core.policy_evaluations;
DROP TABLE IF EXISTS core.policies;
