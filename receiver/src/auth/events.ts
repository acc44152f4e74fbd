// What the auth services report for the audit log (SPEC §10), and the dependencies they share.
// The services call `audit` inside the transaction of the change it records (last, just before
// COMMIT), or with the pool for attempts that change nothing (a refused login). The caller wires
// it to audit/appendAudit, adding the request id and client IP; auth/ never imports audit/.
import type pg from 'pg';
import type { Config } from '../config.js';
import type { PasswordHasher } from './passwords.js';
import type { Principal } from './principal.js';

export interface AuthActor {
  type: 'user' | 'api_key' | 'system' | 'cli';
  id: string | null;
  display?: string | null;
  keyPrefix?: string | null;
}

export interface AuthEvent {
  projectId: string;
  actor: AuthActor;
  /** e.g. "auth.login", "auth.mfa.enable", "auth.password.change". */
  action: string;
  outcome?: 'success' | 'failure';
  resource?: { type: string; id?: string | null };
  /** Never secrets (no passwords, codes or tokens). */
  details?: Record<string, unknown>;
}

export type AuditHook = (db: pg.Pool | pg.PoolClient, event: AuthEvent) => Promise<void>;

export interface AuthDeps {
  pool: pg.Pool;
  hasher: PasswordHasher;
  config: Pick<Config, 'sessionTtlSeconds' | 'encryptionKey' | 'jwtSecret' | 'accessTokenTtlSeconds' | 'refreshTokenTtlSeconds'>;
  audit: AuditHook;
}

/** Where a request came from (kept on the session row). */
export interface ClientMeta { ip: string; userAgent?: string }

export function userActor(u: { id: string | null; email: string }): AuthActor {
  return { type: 'user', id: u.id, display: u.email };
}

export function principalActor(p: Principal): AuthActor {
  return p.kind === 'user'
    ? { type: 'user', id: p.userId, display: p.email }
    : { type: 'api_key', id: p.keyId, display: p.keyPrefix, keyPrefix: p.keyPrefix };
}
