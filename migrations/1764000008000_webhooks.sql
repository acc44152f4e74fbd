-- Up Migration
-- SPEC §9: notification channels (webhook endpoints with encrypted signing secrets), the outbox of
-- events (written in the transaction of the change that caused them) and one delivery row per
-- (event, channel), claimed by webhook_sweeper_task with FOR UPDATE SKIP LOCKED.

CREATE TABLE core.notification_channels (
  project_id                  uuid NOT NULL REFERENCES core.projects (id),
  id                          uuid NOT NULL DEFAULT gen_random_uuid(),
  name                        text NOT NULL,
  channel_type                text NOT NULL DEFAULT 'webhook' CHECK (channel_type = 'webhook'),
  url                         text NOT NULL,
  description                 text,
  -- Event types the channel receives; empty = every type.
  events                      text[] NOT NULL DEFAULT '{}',
  enabled                     boolean NOT NULL DEFAULT true,
  -- Fernet tokens (STRATHON_ENCRYPTION_KEY) of the whsec_ secrets; never the plaintext.
  secret_enc                  text NOT NULL,
  -- After a rotation the old secret keeps signing (beside the new one) until it expires.
  previous_secret_enc         text,
  previous_secret_expires_at  timestamptz,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id)
);

-- The outbox: what happened, once per event however many channels receive it.
CREATE TABLE core.webhook_events (
  project_id  uuid NOT NULL REFERENCES core.projects (id),
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  type        text NOT NULL,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id)
);

CREATE TABLE core.webhook_deliveries (
  project_id        uuid NOT NULL,
  id                uuid NOT NULL DEFAULT gen_random_uuid(),
  channel_id        uuid NOT NULL,
  event_id          uuid NOT NULL,
  -- The Standard Webhooks `webhook-id` (msg_…): the same on every attempt, so receivers can dedupe.
  webhook_id        text NOT NULL,
  -- pending → delivering (claimed; next_attempt_at is then the lease's end) → succeeded | pending | dead.
  status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering', 'succeeded', 'dead')),
  attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at   timestamptz DEFAULT now(),
  last_status_code  integer,
  last_error        text,
  last_attempt_at   timestamptz,
  delivered_at      timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id),
  UNIQUE (project_id, event_id, channel_id),
  FOREIGN KEY (project_id, channel_id) REFERENCES core.notification_channels (project_id, id) ON DELETE CASCADE,
  FOREIGN KEY (project_id, event_id) REFERENCES core.webhook_events (project_id, id) ON DELETE CASCADE
);
-- The sweeper's claim: due pending rows, and claimed rows whose lease ran out (a replica died).
CREATE INDEX webhook_deliveries_due_idx ON core.webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'delivering');
-- GET /v1/notification-channels/{id}/deliveries, newest first (also serves the channel FK cascade).
CREATE INDEX webhook_deliveries_channel_idx ON core.webhook_deliveries (project_id, channel_id, created_at DESC, id DESC);

-- Down Migration
DROP TABLE IF EXISTS core.webhook_deliveries;
DROP TABLE IF EXISTS core.webhook_events;
DROP TABLE IF EXISTS core.notification_channels;
