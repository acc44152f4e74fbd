// MFA (SPEC §6.3, §13.11): TOTP (RFC 6238, 30 s, 6 digits, ±1 step) with the secret encrypted by
// Fernet in core.users.mfa_secret_enc; a code is accepted once only (core.users.mfa_last_step
// only moves forward, in one atomic UPDATE); 10 single-use backup codes stored as SHA-256; and
// the mfa_token between password and code, which is not a session.
import { randomBytes, randomInt } from 'node:crypto';
import type pg from 'pg';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import QRCode from 'qrcode';
import { HttpError } from '../errors.js';
import { Fernet, FernetError } from './fernet.js';
import { sha256 } from './sessions.js';

type Db = Pick<pg.Pool, 'query'>;

export const TOTP_ISSUER = 'Strathon';
export const BACKUP_CODE_COUNT = 10;
export const MFA_TOKEN_TTL_SECONDS = 300;

/** The Fernet for TOTP secrets; without STRATHON_ENCRYPTION_KEY, MFA cannot be used at all. */
export function mfaCipher(encryptionKey: string | undefined): Fernet {
  if (!encryptionKey) {
    // 503 without Retry-After: the server is misconfigured; retrying will not help until it is fixed.
    throw new HttpError(503, 'MFA is unavailable: STRATHON_ENCRYPTION_KEY must be set on the receiver to store TOTP secrets (generate one with: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64url\'))")');
  }
  return new Fernet(encryptionKey);
}

/** A stored TOTP secret; one the configured key cannot open is a server fault, said plainly. */
export function decryptSecret(cipher: Fernet, enc: string): string {
  try {
    return cipher.decryptString(enc);
  } catch (err) {
    if (!(err instanceof FernetError)) throw err;
    throw new HttpError(503, 'the stored MFA secret cannot be decrypted: was STRATHON_ENCRYPTION_KEY changed? (restore the old key, or reset the user with strathon-admin reset-password --disable-mfa)');
  }
}

export interface TotpEnrolment { secret: string; otpauthUri: string; qrSvg: string }

export async function newTotpEnrolment(email: string): Promise<TotpEnrolment> {
  const secret = generateSecret({ length: 20 });
  const otpauthUri = generateURI({ issuer: TOTP_ISSUER, label: email, secret });
  const qrSvg = await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M' });
  return { secret, otpauthUri, qrSvg };
}

export function looksLikeTotp(code: string): boolean {
  return /^\d{6}$/.test(code.replace(/\s+/g, ''));
}

/** The time step a code matches (±1 step, strictly after `afterStep`), or null. */
export async function matchTotp(secret: string, code: string, afterStep: number | null): Promise<number | null> {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return null;
  try {
    const r = await verifyTotp({ secret, token, epochTolerance: 30, ...(afterStep !== null ? { afterTimeStep: afterStep } : {}) });
    return r.valid && 'timeStep' in r ? r.timeStep : null;
  } catch {
    return null;
  }
}

/**
 * Accept a TOTP code for an enabled user at most once: the matched step must be newer than the
 * stored one, and moving mfa_last_step forward is a single conditional UPDATE, so of two
 * concurrent requests with the same code (on any replicas) exactly one wins.
 */
export async function consumeTotp(db: Db, cipher: Fernet, user: { id: string; mfa_secret_enc: string | null; mfa_last_step: string | number | null }, code: string): Promise<boolean> {
  if (!user.mfa_secret_enc) return false;
  const secret = decryptSecret(cipher, user.mfa_secret_enc);
  const last = user.mfa_last_step === null ? null : Number(user.mfa_last_step);
  const step = await matchTotp(secret, code, last);
  if (step === null) return false;
  const r = await db.query(
    'UPDATE core.users SET mfa_last_step = $2 WHERE id = $1 AND (mfa_last_step IS NULL OR mfa_last_step < $2)',
    [user.id, step],
  );
  return (r.rowCount ?? 0) === 1;
}

const BACKUP_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

function normalizeBackupCode(code: string): string {
  return code.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Ten fresh codes like "k7m2p-x9q4r" (10 chars of a 31-letter alphabet, ~50 bits each). */
export function generateBackupCodes(): string[] {
  const codes: string[] = [];
  for (let i = 0; i < BACKUP_CODE_COUNT; i++) {
    let s = '';
    for (let j = 0; j < 10; j++) s += BACKUP_ALPHABET[randomInt(BACKUP_ALPHABET.length)];
    codes.push(`${s.slice(0, 5)}-${s.slice(5)}`);
  }
  return codes;
}

/** Replace every backup code of the user (old ones stop working). */
export async function replaceBackupCodes(db: Db, userId: string, codes: string[]): Promise<void> {
  await db.query('DELETE FROM core.mfa_backup_codes WHERE user_id = $1', [userId]);
  await db.query(
    'INSERT INTO core.mfa_backup_codes (user_id, code_hash) SELECT $1, h FROM unnest($2::bytea[]) AS h ON CONFLICT DO NOTHING',
    [userId, codes.map((c) => sha256(normalizeBackupCode(c)))],
  );
}

/** Use a backup code (single-use: the UPDATE only matches an unused one). */
export async function consumeBackupCode(db: Db, userId: string, code: string): Promise<boolean> {
  const normalized = normalizeBackupCode(code);
  if (normalized.length !== 10) return false;
  const r = await db.query(
    'UPDATE core.mfa_backup_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL',
    [userId, sha256(normalized)],
  );
  return (r.rowCount ?? 0) === 1;
}

export async function remainingBackupCodes(db: Db, userId: string): Promise<number> {
  const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM core.mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL', [userId]);
  return r.rows[0]?.n ?? 0;
}

/**
 * The mfa_token: single-use, 5 minutes, only its SHA-256 stored, in core.mfa_challenges — never in
 * core.sessions, so the Authenticator cannot accept it as a session.
 */
export async function createMfaChallenge(db: Db, userId: string): Promise<{ token: string; expiresAt: Date }> {
  const token = `mfa_${randomBytes(32).toString('base64url')}`;
  const r = await db.query<{ expires_at: Date }>(
    'INSERT INTO core.mfa_challenges (token_hash, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at',
    [sha256(token), userId, MFA_TOKEN_TTL_SECONDS],
  );
  return { token, expiresAt: (r.rows[0] as { expires_at: Date }).expires_at };
}

export interface ChallengeRow { user_id: string; attempts: number; used_at: Date | null; expires_at: Date; expired: boolean }

/** Lock the challenge row for the rest of the caller's transaction (concurrent verifies serialize). */
export async function lockMfaChallenge(client: pg.PoolClient, token: string): Promise<ChallengeRow | undefined> {
  const r = await client.query<ChallengeRow>(
    'SELECT user_id, attempts, used_at, expires_at, expires_at <= now() AS expired FROM core.mfa_challenges WHERE token_hash = $1 FOR UPDATE',
    [sha256(token)],
  );
  return r.rows[0];
}

export async function countMfaAttempt(client: pg.PoolClient, token: string): Promise<void> {
  await client.query('UPDATE core.mfa_challenges SET attempts = attempts + 1 WHERE token_hash = $1', [sha256(token)]);
}

export async function spendMfaChallenge(client: pg.PoolClient, token: string): Promise<void> {
  await client.query('UPDATE core.mfa_challenges SET used_at = now() WHERE token_hash = $1', [sha256(token)]);
}
