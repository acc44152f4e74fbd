-- Up Migration
-- SPEC §6: users, project membership with roles, sessions, MFA, JWT revocation and refresh
-- families, invitations, and Postgres-backed abuse counters (shared by every replica).

CREATE TABLE core.users (
  id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email                    text NOT NULL,
  display_name             text,
  password_hash            text NOT NULL,
  must_change_password     boolean NOT NULL DEFAULT false,
  mfa_enabled              boolean NOT NULL DEFAULT false,
  mfa_secret_enc           text,
  mfa_pending_secret_enc   text,
  mfa_last_step            bigint,
  created_at               timestamptz NOT NULL DEFAULT now(),
  last_login_at            timestamptz,
  disabled_at              timestamptz
);
CREATE UNIQUE INDEX users_email_idx ON core.users (lower(email));

CREATE TABLE core.members (
  project_id      uuid NOT NULL REFERENCES core.projects (id),
  user_id         uuid NOT NULL REFERENCES core.users (id),
  role            text NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
  joined_at       timestamptz NOT NULL DEFAULT now(),
  last_active_at  timestamptz,
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX members_user_idx ON core.members (user_id);

-- Opaque 256-bit session tokens; only their SHA-256 is stored.
CREATE TABLE core.sessions (
  token_hash   bytea PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES core.users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  ip           text,
  user_agent   text
);
CREATE INDEX sessions_user_idx ON core.sessions (user_id);
CREATE INDEX sessions_expires_idx ON core.sessions (expires_at);

-- The single-use token between password and TOTP code; never a session.
CREATE TABLE core.mfa_challenges (
  token_hash   bytea PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES core.users (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  attempts     integer NOT NULL DEFAULT 0,
  used_at      timestamptz
);
CREATE INDEX mfa_challenges_expires_idx ON core.mfa_challenges (expires_at);

CREATE TABLE core.mfa_backup_codes (
  user_id    uuid NOT NULL REFERENCES core.users (id),
  code_hash  bytea NOT NULL,
  used_at    timestamptz,
  PRIMARY KEY (user_id, code_hash)
);

-- Revoked JWT ids (kept until the token would have expired anyway).
CREATE TABLE core.revoked_tokens (
  jti         text PRIMARY KEY,
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz NOT NULL DEFAULT now(),
  reason      text
);
CREATE INDEX revoked_tokens_expires_idx ON core.revoked_tokens (expires_at);

-- Refresh tokens: rotation within a family; reusing a spent one revokes the whole family.
CREATE TABLE core.refresh_tokens (
  jti         text PRIMARY KEY,
  family_id   uuid NOT NULL,
  project_id  uuid NOT NULL,
  key_id      uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON core.refresh_tokens (family_id);

CREATE TABLE core.invitations (
  project_id   uuid NOT NULL REFERENCES core.projects (id),
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  token_hash   bytea NOT NULL UNIQUE,
  email        text NOT NULL,
  role         text NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
  created_by   uuid,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  PRIMARY KEY (project_id, id)
);

-- Sliding-window counters for login / change-password / MFA limits, shared by all replicas.
CREATE TABLE core.rate_events (
  bucket      text NOT NULL,
  identifier  text NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rate_events_lookup_idx ON core.rate_events (bucket, identifier, at);

-- Down Migration
DROP TABLE IF EXISTS core.rate_events;
DROP TABLE IF EXISTS core.invitations;
DROP TABLE IF EXISTS core.refresh_tokens;
DROP TABLE IF EXISTS core.revoked_tokens;
DROP TABLE IF EXISTS core.mfa_backup_codes;
DROP TABLE IF EXISTS core.mfa_challenges;
DROP TABLE IF EXISTS core.sessions;
DROP TABLE IF EXISTS core.members;
DROP TABLE IF EXISTS core.users;
