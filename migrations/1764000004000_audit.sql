-- Up Migration
-- SPEC §10: the tamper-evident audit log. One hash chain per project: each row carries
-- hash = HMAC-SHA256(key, canonical(row) || prev_hash) (canonical form: receiver/src/audit/canonical.ts),
-- appends are serialized by a row lock on the project's chain head, and anchors record the head
-- (sequence, hash) every 60 s, HMAC'd, so truncating the tail is detectable too.

CREATE SCHEMA IF NOT EXISTS audit;

-- Monthly range partitions on occurred_at (events_yYYYYmMM) plus a DEFAULT partition. occurred_at
-- never decreases along a project's chain (append takes greatest(clock, head.updated_at)), so each
-- partition holds a contiguous run of every project's sequence numbers.
CREATE TABLE audit.events (
  project_id        uuid NOT NULL,
  sequence_no       bigint NOT NULL CHECK (sequence_no > 0),
  occurred_at       timestamptz NOT NULL,
  id                uuid NOT NULL,
  actor_type        text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system', 'cli')),
  actor_id          text,
  actor_display     text,
  actor_key_prefix  text,
  action            text NOT NULL,
  action_category   text NOT NULL,
  outcome           text NOT NULL CHECK (outcome IN ('success', 'failure')),
  resource_type     text,
  resource_id       text,
  request_id        text,
  source_ip         text,
  -- Never secrets: appendAudit redacts secret-named keys before hashing and storing.
  details           jsonb NOT NULL DEFAULT '{}',
  hmac_key_id       integer NOT NULL,
  prev_hash         bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
  hash              bytea NOT NULL CHECK (octet_length(hash) = 32),
  PRIMARY KEY (project_id, sequence_no, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE audit.events_default PARTITION OF audit.events DEFAULT;

-- GET /v1/audit/events?action=… (and the CLI's filter=action eq "…"): newest first per action.
CREATE INDEX events_project_action_idx ON audit.events (project_id, action, sequence_no DESC);

-- One row per project: the last appended (sequence, hash). Appends lock it FOR UPDATE, so a
-- project's chain never forks; updated_at is the occurred_at of the last row.
CREATE TABLE audit.chain_heads (
  project_id        uuid PRIMARY KEY,
  last_sequence_no  bigint NOT NULL DEFAULT 0,
  last_hash         bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Signed snapshots of a chain head. 'periodic': written by audit_partition_task every 60 s when the
-- head moved; 'prune': written before a partition holding the chain's oldest rows is dropped, and
-- then the verified chain starts after it.
CREATE TABLE audit.anchors (
  project_id   uuid NOT NULL,
  anchored_at  timestamptz NOT NULL,
  kind         text NOT NULL DEFAULT 'periodic' CHECK (kind IN ('periodic', 'prune')),
  sequence_no  bigint NOT NULL CHECK (sequence_no >= 0),
  hash         bytea NOT NULL CHECK (octet_length(hash) = 32),
  hmac_key_id  integer NOT NULL,
  anchor_hmac  bytea NOT NULL,
  PRIMARY KEY (project_id, anchored_at)
);
-- verifyChain reads the highest anchor (and the highest prune anchor) of one project.
CREATE INDEX anchors_project_sequence_idx ON audit.anchors (project_id, sequence_no DESC);

-- Append-only, whatever the role: UPDATE, DELETE and TRUNCATE raise unless the transaction set
-- strathon.audit_maintenance = 'on' (only audit.ensure_month_partitions does, to move rows out of
-- the DEFAULT partition). Dropping a whole partition fires no trigger; the code that does it
-- records a 'prune' anchor first. The HMAC chain, not this guard, is what makes tampering evident.
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF current_setting('strathon.audit_maintenance', true) = 'on' THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'audit.% is append-only: % refused', TG_ARGV[0], TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$fn$;

-- Row triggers are cloned onto every partition; statement (TRUNCATE) triggers are not, so each
-- partition gets its own (ensure_month_partitions adds it to the partitions it creates).
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change('events');
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change('events');
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events_default
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change('events');
CREATE TRIGGER anchors_append_only BEFORE UPDATE OR DELETE ON audit.anchors
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change('anchors');
CREATE TRIGGER anchors_no_truncate BEFORE TRUNCATE ON audit.anchors
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change('anchors');

REVOKE UPDATE, DELETE, TRUNCATE ON audit.events, audit.anchors FROM PUBLIC;

-- Creates monthly partitions [this month - 1, this month + months_ahead] of audit.events, like
-- telemetry.ensure_month_partitions: serialized by a transaction-level advisory lock, and rows that
-- had landed in the DEFAULT partition for a month being created are moved into it.
CREATE FUNCTION audit.ensure_month_partitions(months_ahead integer, base timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  m        integer;
  lo       timestamptz;
  hi       timestamptz;
  part     text;
  created  integer := 0;
  has_rows boolean;
  saved    text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('strathon.audit.partitions'));
  FOR m IN -1..months_ahead LOOP
    lo := date_trunc('month', base AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => m);
    hi := lo + interval '1 month';
    part := format('events_y%sm%s', to_char(lo AT TIME ZONE 'UTC', 'YYYY'), to_char(lo AT TIME ZONE 'UTC', 'MM'));
    CONTINUE WHEN to_regclass(format('audit.%I', part)) IS NOT NULL;
    SELECT EXISTS (SELECT 1 FROM audit.events_default WHERE occurred_at >= lo AND occurred_at < hi) INTO has_rows;
    IF has_rows THEN
      EXECUTE format('CREATE TABLE audit.%I (LIKE audit.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
      -- Moving rows is the one sanctioned DELETE: lift the append-only guard for this statement only.
      saved := current_setting('strathon.audit_maintenance', true);
      PERFORM set_config('strathon.audit_maintenance', 'on', true);
      EXECUTE format('WITH moved AS (DELETE FROM audit.events_default WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) INSERT INTO audit.%I SELECT * FROM moved', part)
        USING lo, hi;
      PERFORM set_config('strathon.audit_maintenance', coalesce(saved, ''), true);
      EXECUTE format('ALTER TABLE audit.events ATTACH PARTITION audit.%I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    ELSE
      EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    END IF;
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.%I FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change(%L)', part, 'events');
    created := created + 1;
  END LOOP;
  RETURN created;
END
$fn$;

-- The table works before any worker runs: this month (and 3 ahead) exist from the start; anything
-- outside them still lands in events_default until audit_partition_task creates its month.
SELECT audit.ensure_month_partitions(3);

-- Down Migration
DROP FUNCTION IF EXISTS audit.ensure_month_partitions(integer, timestamptz);
DROP TABLE IF EXISTS audit.anchors;
DROP TABLE IF EXISTS audit.chain_heads;
DROP TABLE IF EXISTS audit.events;
DROP FUNCTION IF EXISTS audit.refuse_change();
DROP SCHEMA IF EXISTS audit;
