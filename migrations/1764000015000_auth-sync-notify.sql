-- Up Migration
-- Cache invalidation (receiver/src/auth/invalidation.ts): every committed change to what the
-- receivers cache in memory NOTIFYs strathon_invalidate, whichever replica or code path made it,
-- so every replica drops its copy at once. Payloads: 'key:<api key id>', 'project:<project id>',
-- 'sync:<project id>' (intervention sync state), 'all' (TRUNCATE).
-- core.api_keys: any change but last_used_at (touched once a minute per key by every replica).
CREATE FUNCTION core.invalidate_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) - 'last_used_at') = (to_jsonb(NEW) - 'last_used_at') THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('strathon_invalidate', 'key:' || OLD.id::text);
  IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
    PERFORM pg_notify('strathon_invalidate', 'key:' || NEW.id::text);
  END IF;
  RETURN NULL;
END $$;

-- core.projects: deletion (deleted_at) and any other change.
CREATE FUNCTION core.invalidate_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND to_jsonb(OLD) = to_jsonb(NEW) THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('strathon_invalidate', 'project:' || OLD.id::text);
  RETURN NULL;
END $$;

-- core.halts, core.budgets, core.approvals: the project's intervention sync state.
CREATE FUNCTION core.invalidate_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('strathon_invalidate', 'sync:' || OLD.project_id::text);
  END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.project_id <> OLD.project_id) THEN
    PERFORM pg_notify('strathon_invalidate', 'sync:' || NEW.project_id::text);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION core.invalidate_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('strathon_invalidate', 'all');
  RETURN NULL;
END $$;

CREATE TRIGGER api_keys_invalidate AFTER UPDATE OR DELETE ON core.api_keys
  FOR EACH ROW EXECUTE FUNCTION core.invalidate_api_key();
CREATE TRIGGER api_keys_invalidate_truncate AFTER TRUNCATE ON core.api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION core.invalidate_all();
CREATE TRIGGER projects_invalidate AFTER UPDATE OR DELETE ON core.projects
  FOR EACH ROW EXECUTE FUNCTION core.invalidate_project();
CREATE TRIGGER projects_invalidate_truncate AFTER TRUNCATE ON core.projects
  FOR EACH STATEMENT EXECUTE FUNCTION core.invalidate_all();

-- Sync state: halts and approvals on any change; budgets only when what sync reports changes (the
-- budget monitor rewrites spent_usd and evaluated_at on every tick).
CREATE TRIGGER halts_invalidate AFTER INSERT OR UPDATE OR DELETE ON core.halts
  FOR EACH ROW EXECUTE FUNCTION core.invalidate_sync();
CREATE TRIGGER halts_invalidate_truncate AFTER TRUNCATE ON core.halts
  FOR EACH STATEMENT EXECUTE FUNCTION core.invalidate_all();
CREATE TRIGGER approvals_invalidate AFTER INSERT OR UPDATE OR DELETE ON core.approvals
  FOR EACH ROW EXECUTE FUNCTION core.invalidate_sync();
CREATE TRIGGER approvals_invalidate_truncate AFTER TRUNCATE ON core.approvals
  FOR EACH STATEMENT EXECUTE FUNCTION core.invalidate_all();
CREATE TRIGGER budgets_invalidate AFTER INSERT OR DELETE ON core.budgets
  FOR EACH ROW EXECUTE FUNCTION core.invalidate_sync();
CREATE TRIGGER budgets_invalidate_update AFTER UPDATE ON core.budgets
  FOR EACH ROW WHEN (OLD.project_id IS DISTINCT FROM NEW.project_id OR OLD.id IS DISTINCT FROM NEW.id
    OR OLD.scope IS DISTINCT FROM NEW.scope OR OLD.scope_value IS DISTINCT FROM NEW.scope_value
    OR OLD.is_active IS DISTINCT FROM NEW.is_active OR OLD.exhausted IS DISTINCT FROM NEW.exhausted)
  EXECUTE FUNCTION core.invalidate_sync();
CREATE TRIGGER budgets_invalidate_truncate AFTER TRUNCATE ON core.budgets
  FOR EACH STATEMENT EXECUTE FUNCTION core.invalidate_all();

-- Down Migration
DROP TRIGGER IF EXISTS budgets_invalidate_truncate ON core.budgets;
DROP TRIGGER IF EXISTS budgets_invalidate_update ON core.budgets;
DROP TRIGGER IF EXISTS budgets_invalidate ON core.budgets;
DROP TRIGGER IF EXISTS approvals_invalidate_truncate ON core.approvals;
DROP TRIGGER IF EXISTS approvals_invalidate ON core.approvals;
DROP TRIGGER IF EXISTS halts_invalidate_truncate ON core.halts;
DROP TRIGGER IF EXISTS halts_invalidate ON core.halts;
DROP TRIGGER IF EXISTS projects_invalidate_truncate ON core.projects;
DROP TRIGGER IF EXISTS projects_invalidate ON core.projects;
DROP TRIGGER IF EXISTS api_keys_invalidate_truncate ON core.api_keys;
DROP TRIGGER IF EXISTS api_keys_invalidate ON core.api_keys;
DROP FUNCTION IF EXISTS core.invalidate_all();
DROP FUNCTION IF EXISTS core.invalidate_sync();
DROP FUNCTION IF EXISTS core.invalidate_project();
DROP FUNCTION IF EXISTS core.invalidate_api_key();
