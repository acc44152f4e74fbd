-- Up Migration
-- intervention_state of spans and traces (SPEC §7.3, Strathon's semantics): a span carries the
-- state its SDK recorded (`strathon.agent.intervention.state`: blocked, steered, halted …) or
-- "halted" when a halt policy of this receiver acted on it; a trace is "halted" when one of its
-- spans was intervened on. Both lookups run per listed trace, so each is a probe of a tiny
-- partial index (only intervened spans / acting halt evaluations pay for it), never a span scan.
CREATE INDEX spans_intervention_idx ON telemetry.spans (project_id, trace_id, start_time)
  WHERE attributes ? 'strathon.agent.intervention.state';
CREATE INDEX policy_evaluations_halted_idx ON core.policy_evaluations (project_id, trace_id, span_id)
  WHERE acted AND action = 'halt';

-- Down Migration
DROP INDEX IF EXISTS core.policy_evaluations_halted_idx;
DROP INDEX IF EXISTS telemetry.spans_intervention_idx;
