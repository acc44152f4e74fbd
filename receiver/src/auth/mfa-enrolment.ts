// A user turns MFA on and off (SPEC §6.3): setup stores a pending secret (encrypted), enable needs
// a first valid code and returns the 10 backup codes once, disable needs password + code, and the
// backup codes can be regenerated (old ones stop working).
import { Conflict, Forbidden, NotFound } from '../errors.js';
import { userById, type UserRow } from './accounts.js';
import { MFA_MANAGE, takeAttempt } from './limits.js';
import {
  consumeBackupCode, consumeTotp, decryptSecret, generateBackupCodes, looksLikeTotp, matchTotp, mfaCipher, newTotpEnrolment, replaceBackupCodes,
  type TotpEnrolment,
} from './mfa.js';
import type { UserPrincipal } from './principal.js';
import { inTransaction } from './transaction.js';
import { principalActor, type AuthDeps } from './events.js';
import type pg from 'pg';

async function lockedUser(client: pg.PoolClient, p: UserPrincipal): Promise<UserRow> {
  const u = await userById(client, p.userId, true);
  if (!u) throw new NotFound('user not found');
  return u;
}

const audit = (deps: AuthDeps, db: pg.PoolClient | pg.Pool, p: UserPrincipal, action: string, extra: { outcome?: 'failure'; details?: Record<string, unknown> } = {}) =>
  deps.audit(db, { projectId: p.projectId, actor: principalActor(p), action, resource: { type: 'user', id: p.userId }, ...extra });

/** Start (or restart) enrolment: a new pending secret; the current one, if any, is unaffected. */
export async function setupMfa(deps: AuthDeps, p: UserPrincipal): Promise<TotpEnrolment> {
  const cipher = mfaCipher(deps.config.encryptionKey);
  const enrolment = await newTotpEnrolment(p.email);
  await inTransaction(deps.pool, async (client) => {
    const u = await lockedUser(client, p);
    if (u.mfa_enabled) throw new Conflict('MFA is already enabled; disable it first to enrol a new authenticator');
    await client.query('UPDATE core.users SET mfa_pending_secret_enc = $2 WHERE id = $1', [p.userId, cipher.encrypt(enrolment.secret)]);
    await audit(deps, client, p, 'auth.mfa.setup');
  });
  return enrolment;
}

/** Confirm enrolment with a first code; the code's step is remembered so it cannot log in again. */
export async function enableMfa(deps: AuthDeps, p: UserPrincipal, code: string): Promise<{ backupCodes: string[] }> {
  const cipher = mfaCipher(deps.config.encryptionKey);
  await takeAttempt(deps.pool, [{ limit: MFA_MANAGE, identifier: p.userId }]);
  const result = await inTransaction(deps.pool, async (client) => {
    const u = await lockedUser(client, p);
    if (u.mfa_enabled) throw new Conflict('MFA is already enabled');
    if (!u.mfa_pending_secret_enc) throw new Conflict('no MFA enrolment in progress: call POST /v1/auth/mfa/setup first');
    const step = await matchTotp(decryptSecret(cipher, u.mfa_pending_secret_enc), code, null);
    if (step === null) return undefined;
    await client.query(
      `UPDATE core.users SET mfa_enabled = true, mfa_secret_enc = mfa_pending_secret_enc, mfa_pending_secret_enc = NULL, mfa_last_step = $2
       WHERE id = $1`,
      [p.userId, step],
    );
    const backupCodes = generateBackupCodes();
    await replaceBackupCodes(client, p.userId, backupCodes);
    await audit(deps, client, p, 'auth.mfa.enable');
    return { backupCodes };
  });
  if (!result) {
    await audit(deps, deps.pool, p, 'auth.mfa.enable', { outcome: 'failure', details: { reason: 'invalid code' } });
    throw new Forbidden('invalid MFA code');
  }
  return result;
}

/** Turn MFA off: the password and a current code (TOTP or backup code) are both required. */
export async function disableMfa(deps: AuthDeps, p: UserPrincipal, password: string, code: string): Promise<void> {
  await takeAttempt(deps.pool, [{ limit: MFA_MANAGE, identifier: p.userId }]);
  const before = await userById(deps.pool, p.userId);
  if (!before) throw new NotFound('user not found');
  if (!before.mfa_enabled) throw new Conflict('MFA is not enabled');
  const passwordOk = await deps.hasher.verify(before.password_hash, password);
  const done = await inTransaction(deps.pool, async (client) => {
    const u = await lockedUser(client, p);
    if (!passwordOk || !u.mfa_enabled) return false;
    const codeOk = looksLikeTotp(code)
      ? await consumeTotp(client, mfaCipher(deps.config.encryptionKey), u, code)
      : await consumeBackupCode(client, u.id, code);
    if (!codeOk) return false;
    await client.query(
      'UPDATE core.users SET mfa_enabled = false, mfa_secret_enc = NULL, mfa_pending_secret_enc = NULL, mfa_last_step = NULL WHERE id = $1',
      [p.userId],
    );
    await client.query('DELETE FROM core.mfa_backup_codes WHERE user_id = $1', [p.userId]);
    await client.query('UPDATE core.mfa_challenges SET used_at = now() WHERE user_id = $1 AND used_at IS NULL', [p.userId]);
    await audit(deps, client, p, 'auth.mfa.disable');
    return true;
  });
  if (!done) {
    await audit(deps, deps.pool, p, 'auth.mfa.disable', { outcome: 'failure', details: { reason: 'invalid password or code' } });
    throw new Forbidden('invalid password or code');
  }
}

/** New backup codes (shown once); the previous ones stop working. */
export async function regenerateBackupCodes(deps: AuthDeps, p: UserPrincipal): Promise<{ backupCodes: string[] }> {
  return inTransaction(deps.pool, async (client) => {
    const u = await lockedUser(client, p);
    if (!u.mfa_enabled) throw new Conflict('MFA is not enabled');
    const backupCodes = generateBackupCodes();
    await replaceBackupCodes(client, p.userId, backupCodes);
    await audit(deps, client, p, 'auth.mfa.backup_codes');
    return { backupCodes };
  });
}
