// Password login and the MFA second step (SPEC §6.3, §6.4, §13.11).
//
// - 5 attempts per 5 minutes per client IP and per account (every attempt counts), in Postgres.
// - Unknown user and wrong password get the same 401 after the same work (a dummy Argon2 verify).
// - MFA users without a code get an mfa_token (not a session); a code in the login body works too.
// - A TOTP code is accepted once (consumeTotp); 5 codes per mfa_token, then it is burnt.
import type pg from 'pg';
import { TooManyRequests, Unauthorized } from '../errors.js';
import { userById, userByEmail, type UserRow } from './accounts.js';
import { DEFAULT_PROJECT_ID } from './keys.js';
import { LOGIN_PER_ACCOUNT, LOGIN_PER_IP, MFA_TOKEN_ATTEMPTS, takeAttempt } from './limits.js';
import {
  consumeBackupCode, consumeTotp, countMfaAttempt, createMfaChallenge, lockMfaChallenge, mfaCipher, spendMfaChallenge,
} from './mfa.js';
import { createSession } from './sessions.js';
import { inTransaction } from './transaction.js';
import { userActor, type AuthDeps, type ClientMeta } from './events.js';

export const INVALID_CREDENTIALS = 'invalid credentials';
export const INVALID_MFA_CODE = 'invalid MFA code';

export interface SessionGrant {
  kind: 'session';
  token: string;
  expiresAt: Date;
  user: { id: string; email: string; name: string | null; mustChangePassword: boolean };
}
export interface MfaRequired { kind: 'mfa_required'; mfaToken: string; expiresAt: Date }

/** A second factor: a TOTP code or a backup code. */
export interface SecondFactor { totpCode?: string; backupCode?: string }

function hasFactor(f: SecondFactor): boolean {
  return f.totpCode !== undefined || f.backupCode !== undefined;
}

async function checkFactor(client: pg.PoolClient, deps: AuthDeps, user: UserRow, f: SecondFactor): Promise<boolean> {
  if (f.totpCode !== undefined) return consumeTotp(client, mfaCipher(deps.config.encryptionKey), user, f.totpCode);
  if (f.backupCode !== undefined) return consumeBackupCode(client, user.id, f.backupCode);
  return false;
}

async function openSession(client: pg.PoolClient, deps: AuthDeps, user: UserRow, meta: ClientMeta, method: string): Promise<SessionGrant> {
  const s = await createSession(client, user.id, deps.config.sessionTtlSeconds, meta);
  await client.query('UPDATE core.users SET last_login_at = now() WHERE id = $1', [user.id]);
  await deps.audit(client, { projectId: user.home_project_id, actor: userActor(user), action: 'auth.login', resource: { type: 'user', id: user.id }, details: { email: user.email, method } });
  return { kind: 'session', token: s.token, expiresAt: s.expiresAt, user: { id: user.id, email: user.email, name: user.display_name, mustChangePassword: user.must_change_password } };
}

async function auditFailure(deps: AuthDeps, user: UserRow | undefined, email: string, reason: string): Promise<void> {
  await deps.audit(deps.pool, {
    projectId: user?.home_project_id ?? DEFAULT_PROJECT_ID,
    actor: userActor({ id: user?.id ?? null, email }),
    action: 'auth.login', outcome: 'failure', resource: { type: 'user', id: user?.id ?? null }, details: { email, reason },
  });
}

export async function passwordLogin(deps: AuthDeps, email: string, password: string, factor: SecondFactor, meta: ClientMeta): Promise<SessionGrant | MfaRequired> {
  const account = email.trim().toLowerCase();
  await takeAttempt(deps.pool, [{ limit: LOGIN_PER_IP, identifier: meta.ip || 'unknown' }, { limit: LOGIN_PER_ACCOUNT, identifier: account }]);
  const user = await userByEmail(deps.pool, account);
  // Same Argon2 work whether or not the user exists (or is disabled): no timing oracle.
  const ok = await deps.hasher.verifyOrDummy(user?.password_hash, password);
  if (!ok || !user || user.disabled_at) {
    // The reason stays in the audit log; the caller sees one answer for every case.
    await auditFailure(deps, user, account, !user ? 'unknown user' : user.disabled_at ? 'user disabled' : 'wrong password');
    throw new Unauthorized(INVALID_CREDENTIALS);
  }
  if (user.mfa_enabled && !hasFactor(factor)) {
    const c = await createMfaChallenge(deps.pool, user.id);
    return { kind: 'mfa_required', mfaToken: c.token, expiresAt: c.expiresAt };
  }
  const grant = await inTransaction(deps.pool, async (client) => {
    if (user.mfa_enabled) {
      const locked = await userById(client, user.id, true);
      if (!locked || !(await checkFactor(client, deps, locked, factor))) return undefined;
    }
    return openSession(client, deps, user, meta, user.mfa_enabled ? (factor.totpCode !== undefined ? 'password+totp' : 'password+backup_code') : 'password');
  });
  if (!grant) {
    await auditFailure(deps, user, account, 'invalid MFA code');
    throw new Unauthorized(INVALID_MFA_CODE);
  }
  return grant;
}

type VerifyOutcome = { grant: SessionGrant } | { refused: 'token' } | { refused: 'burnt'; retryAfterS: number } | { refused: 'code'; user: UserRow };

/**
 * POST /v1/auth/mfa/verify: the mfa_token's row is locked for the transaction, so concurrent
 * verifies of one token serialize; each counts an attempt (committed even when the code is wrong).
 */
export async function verifyMfaToken(deps: AuthDeps, mfaToken: string, factor: SecondFactor, meta: ClientMeta): Promise<SessionGrant> {
  const outcome = await inTransaction<VerifyOutcome>(deps.pool, async (client) => {
    const ch = await lockMfaChallenge(client, mfaToken);
    if (!ch || ch.used_at || ch.expired) return { refused: 'token' };
    if (ch.attempts >= MFA_TOKEN_ATTEMPTS) {
      return { refused: 'burnt', retryAfterS: Math.max(1, Math.ceil((ch.expires_at.getTime() - Date.now()) / 1000)) };
    }
    await countMfaAttempt(client, mfaToken);
    const user = await userById(client, ch.user_id, true);
    if (!user || user.disabled_at || !user.mfa_enabled) return { refused: 'token' };
    if (!(await checkFactor(client, deps, user, factor))) return { refused: 'code', user };
    await spendMfaChallenge(client, mfaToken);
    return { grant: await openSession(client, deps, user, meta, factor.totpCode !== undefined ? 'mfa_token+totp' : 'mfa_token+backup_code') };
  });
  if ('grant' in outcome) return outcome.grant;
  if (outcome.refused === 'burnt') throw new TooManyRequests('too many MFA attempts for this mfa_token; log in again', outcome.retryAfterS);
  if (outcome.refused === 'code') {
    await auditFailure(deps, outcome.user, outcome.user.email, 'invalid MFA code');
    throw new Unauthorized(INVALID_MFA_CODE);
  }
  throw new Unauthorized('invalid or expired mfa_token');
}
