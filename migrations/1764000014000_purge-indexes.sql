-- Up Migration
-- retention_cleanup_task purges two tables that only grew (SPEC §11): policy evaluations older
-- than their project's retention, and webhook events older than 30 days whose deliveries are all
-- finished. Each batch finds its rows through one of these indexes instead of scanning the table.
CREATE INDEX policy_evaluations_evaluated_idx ON core.policy_evaluations (project_id, evaluated_at);
CREATE INDEX webhook_events_created_idx ON core.webhook_events (created_at);

-- Down Migration
DROP INDEX IF EXISTS core.webhook_events_created_idx;
DROP INDEX IF EXISTS core.policy_evaluations_evaluated_idx;
