-- Up Migration
-- SPEC §4/§7: indexes for the query API, each serving one query of api/traces.ts or api/spans.ts.
-- Trace summaries are written once per trace per batch, so their indexes are cheap; span indexes
-- are partial, so only the spans they serve pay for them at ingest.

-- GET /v1/traces?agent_name=… (the CLI's `traces list --agent`): one agent's traces newest first,
-- in keyset order (start_time DESC, trace_id), so a page is a range scan even for a rare agent.
CREATE INDEX traces_project_agent_start_idx ON telemetry.traces (project_id, agent_name, start_time DESC, trace_id);

-- GET /v1/traces?service=…: the same for one service.
CREATE INDEX traces_project_service_start_idx ON telemetry.traces (project_id, service_name, start_time DESC, trace_id);

-- GET /v1/traces?status=error: failed traces are a small minority; a partial index keeps them
-- reachable without walking every healthy trace (and costs nothing for traces without errors).
CREATE INDEX traces_project_errors_start_idx ON telemetry.traces (project_id, start_time DESC, trace_id) WHERE error_count > 0;

-- GET /v1/spans?tool_name=… (the CLI's `spans search --tool`): only tool spans are indexed.
CREATE INDEX spans_project_tool_time_idx ON telemetry.spans (project_id, tool_name, start_time DESC) WHERE tool_name IS NOT NULL;

-- GET /v1/spans?request_model=… (the CLI's `spans search --model`): only LLM spans are indexed.
CREATE INDEX spans_project_model_time_idx ON telemetry.spans (project_id, model, start_time DESC) WHERE model IS NOT NULL;

-- Down Migration
DROP INDEX IF EXISTS telemetry.spans_project_model_time_idx;
DROP INDEX IF EXISTS telemetry.spans_project_tool_time_idx;
DROP INDEX IF EXISTS telemetry.traces_project_errors_start_idx;
DROP INDEX IF EXISTS telemetry.traces_project_service_start_idx;
DROP INDEX IF EXISTS telemetry.traces_project_agent_start_idx;
