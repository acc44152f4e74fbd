-- Up Migration
-- SPEC §11: heartbeat of every background worker, one row per (worker, replica), upserted after
-- each tick; plus the most recent runs of each worker (trimmed by the framework) for GET /v1/workers.

CREATE TABLE core.worker_status (
  worker                text NOT NULL,
  replica_id            text NOT NULL,
  enabled               boolean NOT NULL,
  interval_seconds      double precision NOT NULL CHECK (interval_seconds > 0),
  lock_kind             text NOT NULL CHECK (lock_kind IN ('advisory', 'none')),
  last_started_at       timestamptz,
  last_finished_at      timestamptz,
  last_succeeded_at     timestamptz,
  -- A tick skipped because another replica held the worker's lock: healthy, not a run.
  last_skipped_at       timestamptz,
  last_error            text,
  last_error_at         timestamptz,
  consecutive_failures  integer NOT NULL DEFAULT 0,
  runs                  bigint NOT NULL DEFAULT 0,
  failures              bigint NOT NULL DEFAULT 0,
  skips                 bigint NOT NULL DEFAULT 0,
  last_duration_ms      double precision,
  next_run_at           timestamptz,
  updated_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (worker, replica_id)
);

CREATE TABLE core.worker_runs (
  worker       text NOT NULL,
  id           bigint GENERATED ALWAYS AS IDENTITY,
  replica_id   text NOT NULL,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  duration_ms  double precision NOT NULL,
  outcome      text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
  error        text,
  details      jsonb,
  PRIMARY KEY (worker, id)
);

-- Down Migration
DROP TABLE IF EXISTS core.worker_runs;
DROP TABLE IF EXISTS core.worker_status;
