-- Up Migration
-- SPEC §4: core (tenancy, keys, pricing) and telemetry (spans, events, links, trace summaries).
-- Every key of a project-owned table starts with project_id (Citus-ready).

CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS telemetry;

CREATE TABLE core.organizations (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL,
  slug        text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE core.projects (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  organization_id  uuid NOT NULL REFERENCES core.organizations (id),
  name             text NOT NULL,
  slug             text NOT NULL,
  retention_days   integer CHECK (retention_days IS NULL OR retention_days > 0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  deleted_at       timestamptz,
  UNIQUE (organization_id, slug)
);

INSERT INTO core.organizations (id, name, slug)
VALUES ('00000000-0000-0000-0000-000000000001', 'Default organization', 'default');
INSERT INTO core.projects (id, organization_id, name, slug)
VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', 'Default project', 'default');

CREATE TABLE core.api_keys (
  project_id       uuid NOT NULL REFERENCES core.projects (id),
  id               uuid NOT NULL DEFAULT gen_random_uuid(),
  name             text NOT NULL,
  key_hash         bytea NOT NULL,
  key_prefix       text NOT NULL,
  scopes           text[] NOT NULL,
  created_by       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  last_used_at     timestamptz,
  revoked_at       timestamptz,
  deprecated_at    timestamptz,
  expires_at       timestamptz,
  rotated_from_id  uuid,
  allowed_ips      cidr[],
  PRIMARY KEY (project_id, id)
);
-- Lookup by SHA-256 of the presented key: no timing oracle on the key itself.
CREATE UNIQUE INDEX api_keys_key_hash_idx ON core.api_keys (key_hash);

-- Built-in price table (USD per million tokens) and per-project overrides.
CREATE TABLE core.default_model_prices (
  model                   text PRIMARY KEY,
  input_usd_per_million   numeric(20, 6) NOT NULL CHECK (input_usd_per_million >= 0),
  output_usd_per_million  numeric(20, 6) NOT NULL CHECK (output_usd_per_million >= 0)
);

CREATE TABLE core.model_prices (
  project_id              uuid NOT NULL REFERENCES core.projects (id),
  model                   text NOT NULL,
  input_usd_per_million   numeric(20, 6) NOT NULL CHECK (input_usd_per_million >= 0),
  output_usd_per_million  numeric(20, 6) NOT NULL CHECK (output_usd_per_million >= 0),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, model)
);

INSERT INTO core.default_model_prices (model, input_usd_per_million, output_usd_per_million) VALUES
  ('gpt-4o', 2.50, 10.00),
  ('gpt-4o-mini', 0.15, 0.60),
  ('gpt-4.1', 2.00, 8.00),
  ('gpt-4.1-mini', 0.40, 1.60),
  ('gpt-4.1-nano', 0.10, 0.40),
  ('gpt-4-turbo', 10.00, 30.00),
  ('gpt-4', 30.00, 60.00),
  ('gpt-3.5-turbo', 0.50, 1.50),
  ('gpt-5', 1.25, 10.00),
  ('gpt-5-mini', 0.25, 2.00),
  ('gpt-5-nano', 0.05, 0.40),
  ('o1', 15.00, 60.00),
  ('o1-mini', 1.10, 4.40),
  ('o3', 2.00, 8.00),
  ('o3-mini', 1.10, 4.40),
  ('o4-mini', 1.10, 4.40),
  ('claude-opus-4', 15.00, 75.00),
  ('claude-sonnet-4', 3.00, 15.00),
  ('claude-3-7-sonnet', 3.00, 15.00),
  ('claude-3-5-sonnet', 3.00, 15.00),
  ('claude-3-5-haiku', 0.80, 4.00),
  ('claude-haiku-4-5', 1.00, 5.00),
  ('claude-3-opus', 15.00, 75.00),
  ('claude-3-haiku', 0.25, 1.25),
  ('gemini-2.5-pro', 1.25, 10.00),
  ('gemini-2.5-flash', 0.30, 2.50),
  ('gemini-2.0-flash', 0.10, 0.40),
  ('gemini-1.5-pro', 1.25, 5.00),
  ('gemini-1.5-flash', 0.075, 0.30),
  ('mistral-large', 2.00, 6.00),
  ('mistral-medium', 0.40, 2.00),
  ('mistral-small', 0.20, 0.60),
  ('codestral', 0.30, 0.90),
  ('open-mistral-nemo', 0.15, 0.15);

-- Spans: monthly range partitions on start_time; times also kept as exact nanosecond integers.
CREATE TABLE telemetry.spans (
  project_id                uuid NOT NULL,
  trace_id                  bytea NOT NULL,
  span_id                   bytea NOT NULL,
  start_time                timestamptz NOT NULL,
  parent_span_id            bytea,
  trace_state               text,
  name                      text NOT NULL,
  kind                      smallint NOT NULL,
  start_time_unix_nano      bigint NOT NULL,
  end_time_unix_nano        bigint NOT NULL,
  status_code               smallint NOT NULL DEFAULT 0,
  status_message            text,
  flags                     bigint,
  resource_attributes       jsonb NOT NULL DEFAULT '{}',
  resource_dropped_attributes_count integer NOT NULL DEFAULT 0,
  resource_schema_url       text,
  scope_name                text,
  scope_version             text,
  scope_attributes          jsonb,
  scope_dropped_attributes_count integer NOT NULL DEFAULT 0,
  scope_schema_url          text,
  attributes                jsonb NOT NULL DEFAULT '{}',
  dropped_attributes_count  integer NOT NULL DEFAULT 0,
  dropped_events_count      integer NOT NULL DEFAULT 0,
  dropped_links_count       integer NOT NULL DEFAULT 0,
  event_count               integer NOT NULL DEFAULT 0,
  link_count                integer NOT NULL DEFAULT 0,
  service_name              text,
  agent_name                text,
  model                     text,
  provider                  text,
  operation_name            text,
  tool_name                 text,
  input_tokens              bigint,
  output_tokens             bigint,
  cost_usd                  numeric(20, 10),
  is_llm                    boolean NOT NULL DEFAULT false,
  is_tool                   boolean NOT NULL DEFAULT false,
  received_at               timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, trace_id, span_id, start_time)
) PARTITION BY RANGE (start_time);
CREATE INDEX spans_project_time_idx ON telemetry.spans (project_id, start_time DESC);

CREATE TABLE telemetry.span_events (
  project_id                uuid NOT NULL,
  trace_id                  bytea NOT NULL,
  span_id                   bytea NOT NULL,
  span_start_time           timestamptz NOT NULL,
  event_index               integer NOT NULL,
  time_unix_nano            bigint NOT NULL,
  name                      text NOT NULL,
  attributes                jsonb NOT NULL DEFAULT '{}',
  dropped_attributes_count  integer NOT NULL DEFAULT 0,
  PRIMARY KEY (project_id, trace_id, span_id, span_start_time, event_index)
) PARTITION BY RANGE (span_start_time);

CREATE TABLE telemetry.span_links (
  project_id                uuid NOT NULL,
  trace_id                  bytea NOT NULL,
  span_id                   bytea NOT NULL,
  span_start_time           timestamptz NOT NULL,
  link_index                integer NOT NULL,
  linked_trace_id           bytea NOT NULL,
  linked_span_id            bytea NOT NULL,
  trace_state               text,
  attributes                jsonb NOT NULL DEFAULT '{}',
  dropped_attributes_count  integer NOT NULL DEFAULT 0,
  flags                     bigint,
  PRIMARY KEY (project_id, trace_id, span_id, span_start_time, link_index)
) PARTITION BY RANGE (span_start_time);

-- Rows whose time falls outside every monthly partition (far past/future clocks) land here,
-- so they are still accepted; ensure_month_partitions moves them out when their month is created.
CREATE TABLE telemetry.spans_default PARTITION OF telemetry.spans DEFAULT;
CREATE TABLE telemetry.span_events_default PARTITION OF telemetry.span_events DEFAULT;
CREATE TABLE telemetry.span_links_default PARTITION OF telemetry.span_links DEFAULT;

-- Trace summaries, maintained incrementally by the writer so trace lists never scan spans.
CREATE TABLE telemetry.traces (
  project_id            uuid NOT NULL,
  trace_id              bytea NOT NULL,
  start_time            timestamptz NOT NULL,
  end_time              timestamptz NOT NULL,
  start_time_unix_nano  bigint NOT NULL,
  end_time_unix_nano    bigint NOT NULL,
  root_name             text,
  root_span_id          bytea,
  service_name          text,
  agent_name            text,
  span_count            integer NOT NULL DEFAULT 0,
  error_count           integer NOT NULL DEFAULT 0,
  llm_span_count        integer NOT NULL DEFAULT 0,
  tool_span_count       integer NOT NULL DEFAULT 0,
  input_tokens          bigint NOT NULL DEFAULT 0,
  output_tokens         bigint NOT NULL DEFAULT 0,
  cost_usd              numeric(20, 10) NOT NULL DEFAULT 0,
  models                text[] NOT NULL DEFAULT '{}',
  updated_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, trace_id)
);
CREATE INDEX traces_project_start_idx ON telemetry.traces (project_id, start_time DESC, trace_id);

-- Creates monthly partitions [this month - 1, this month + months_ahead] for spans, events, links.
-- Serialized by a transaction-level advisory lock so N replicas can call it at once; rows that
-- had landed in the default partition for a month being created are moved into it.
CREATE FUNCTION telemetry.ensure_month_partitions(months_ahead integer, base timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
  parent   text;
  m        integer;
  lo       timestamptz;
  hi       timestamptz;
  part     text;
  keycol   text;
  created  integer := 0;
  has_rows boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('strathon.telemetry.partitions'));
  FOREACH parent IN ARRAY ARRAY['spans', 'span_events', 'span_links'] LOOP
    keycol := CASE WHEN parent = 'spans' THEN 'start_time' ELSE 'span_start_time' END;
    FOR m IN -1..months_ahead LOOP
      lo := date_trunc('month', base AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(months => m);
      hi := lo + interval '1 month';
      part := format('%s_y%sm%s', parent, to_char(lo AT TIME ZONE 'UTC', 'YYYY'), to_char(lo AT TIME ZONE 'UTC', 'MM'));
      CONTINUE WHEN to_regclass(format('telemetry.%I', part)) IS NOT NULL;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM telemetry.%I WHERE %I >= $1 AND %I < $2)', parent || '_default', keycol, keycol)
        INTO has_rows USING lo, hi;
      IF has_rows THEN
        EXECUTE format('CREATE TABLE telemetry.%I (LIKE telemetry.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
        EXECUTE format('WITH moved AS (DELETE FROM telemetry.%I WHERE %I >= $1 AND %I < $2 RETURNING *) INSERT INTO telemetry.%I SELECT * FROM moved',
                       parent || '_default', keycol, keycol, part) USING lo, hi;
        EXECUTE format('ALTER TABLE telemetry.%I ATTACH PARTITION telemetry.%I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
      ELSE
        EXECUTE format('CREATE TABLE telemetry.%I PARTITION OF telemetry.%I FOR VALUES FROM (%L) TO (%L)', part, parent, lo, hi);
      END IF;
      created := created + 1;
    END LOOP;
  END LOOP;
  RETURN created;
END
$fn$;

-- Down Migration
DROP FUNCTION IF EXISTS telemetry.ensure_month_partitions(integer, timestamptz);
DROP TABLE IF EXISTS telemetry.traces;
DROP TABLE IF EXISTS telemetry.span_links;
DROP TABLE IF EXISTS telemetry.span_events;
DROP TABLE IF EXISTS telemetry.spans;
DROP TABLE IF EXISTS core.model_prices;
DROP TABLE IF EXISTS core.default_model_prices;
DROP TABLE IF EXISTS core.api_keys;
DROP TABLE IF EXISTS core.projects;
DROP TABLE IF EXISTS core.organizations;
DROP SCHEMA IF EXISTS telemetry;
DROP SCHEMA IF EXISTS core;
