-- Up Migration
-- SPEC §12: the dashboard reads Postgres as strathon_dashboard, which may SELECT exactly what the
-- dashboard shows from the database and nothing else; every write goes through the receiver API.
--
-- The role is created LOGIN without a password, so it cannot log in (password auth) until one
-- is set. Two ways the dashboard uses it (dashboard/README.md, "Database access"):
--   * DASHBOARD_DATABASE_URL=postgres://strathon_dashboard:<pw>@…: the dashboard logs in as the
--     role; when it is also given DATABASE_URL it sets <pw> as the role's password at boot
--     (a SCRAM verifier, never the plaintext).
--   * unset: the dashboard connects with DATABASE_URL (or the embedded cluster's password file)
--     and every connection starts with `role=strathon_dashboard` and read-only transactions, so
--     its queries run with these grants only.
-- Roles are cluster-wide: the guard makes this safe to run in many databases of one cluster at once.

DO $$
BEGIN
  CREATE ROLE strathon_dashboard LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL; -- created by another database's migration (or a concurrent one): nothing to do
END
$$;

-- A non-superuser migrating role must be a member to start the dashboard's connections as it.
DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT strathon_dashboard TO %I', current_user);
  END IF;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'could not grant strathon_dashboard to %: %; set DASHBOARD_DATABASE_URL to a strathon_dashboard login instead', current_user, SQLERRM;
END
$$;

GRANT USAGE ON SCHEMA core, telemetry TO strathon_dashboard;
-- Overview: spans, traces and spend today, spans per minute (trace summaries, never spans).
GRANT SELECT ON telemetry.traces TO strathon_dashboard;
-- Workers page and overview health: heartbeats and recent runs.
GRANT SELECT ON core.worker_status, core.worker_runs TO strathon_dashboard;
-- Project picker and header: the projects of the signed-in user (found by their session's hash).
GRANT SELECT (id, name, slug, deleted_at) ON core.projects TO strathon_dashboard;
GRANT SELECT (project_id, user_id, role) ON core.members TO strathon_dashboard;
GRANT SELECT (token_hash, user_id, expires_at, revoked_at) ON core.sessions TO strathon_dashboard;
-- Account page: whether MFA is on (never the secret).
GRANT SELECT (id, mfa_enabled) ON core.users TO strathon_dashboard;

-- Down Migration
REVOKE SELECT (id, mfa_enabled) ON core.users FROM strathon_dashboard;
REVOKE SELECT (token_hash, user_id, expires_at, revoked_at) ON core.sessions FROM strathon_dashboard;
REVOKE SELECT (project_id, user_id, role) ON core.members FROM strathon_dashboard;
REVOKE SELECT (id, name, slug, deleted_at) ON core.projects FROM strathon_dashboard;
REVOKE SELECT ON core.worker_status, core.worker_runs FROM strathon_dashboard;
REVOKE SELECT ON telemetry.traces FROM strathon_dashboard;
REVOKE USAGE ON SCHEMA core, telemetry FROM strathon_dashboard;
-- Other databases of the cluster may still grant it something; then the role stays.
DO $$
BEGIN
  DROP ROLE IF EXISTS strathon_dashboard;
EXCEPTION WHEN dependent_objects_still_exist THEN
  RAISE NOTICE 'strathon_dashboard is still used by another database; role kept';
END
$$;
