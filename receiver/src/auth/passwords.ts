// Passwords (SPEC §6.1): Argon2id with a per-password salt and STRATHON_PASSWORD_PEPPER as the
// Argon2 secret; minimum length 12; the most common passwords refused.
import { randomBytes, randomInt } from 'node:crypto';
import argon2 from 'argon2';
import { COMMON_PASSWORDS } from './common-passwords.js';

export const MIN_PASSWORD_LENGTH = 12;
/** Argon2 hashes whatever it is given; an upper bound keeps one request from buying minutes of CPU. */
export const MAX_PASSWORD_LENGTH = 1024;

/** OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane. */
const PARAMS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export class PasswordHasher {
  private dummy: Promise<string> | undefined;

  constructor(private readonly pepper: Buffer | undefined) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, { ...PARAMS, ...(this.pepper ? { secret: this.pepper } : {}) });
  }

  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, password, this.pepper ? { secret: this.pepper } : {});
    } catch {
      return false; // a malformed stored hash never matches
    }
  }

  /**
   * Verify against the user's hash, or — for an unknown user — against a dummy hash with the same
   * parameters, so both answers cost the same time. Always false without a user.
   */
  async verifyOrDummy(hash: string | undefined, password: string): Promise<boolean> {
    if (hash !== undefined) return this.verify(hash, password);
    this.dummy ??= this.hash(randomBytes(32).toString('base64url'));
    await this.verify(await this.dummy, password);
    return false;
  }
}

/** Why a new password is refused (null when acceptable). The message names no secret. */
export function passwordProblem(password: string, context: { email?: string } = {}): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `password must be at most ${MAX_PASSWORD_LENGTH} characters`;
  const lower = password.toLowerCase();
  if (isCommon(lower)) return 'password is too common; choose another';
  if (context.email) {
    const email = context.email.toLowerCase();
    const local = email.split('@')[0] ?? '';
    if (lower === email || (local.length >= 3 && lower.replace(/[\d\W_]+$/, '') === local)) return 'password must not be the email address';
  }
  return null;
}

function isCommon(lower: string): boolean {
  if (COMMON_PASSWORDS.has(lower)) return true;
  if (/^(.)\1+$/.test(lower)) return true;
  // "password2024!", "iloveyou123456": a listed password with digits/symbols appended.
  const stem = lower.replace(/[\d\W_]+$/, '');
  if (stem.length > 0 && stem !== lower && COMMON_PASSWORDS.has(stem)) return true;
  // "passwordpassword", "abc123abc123": a listed password repeated.
  for (let n = 1; n <= lower.length / 2; n++) {
    if (lower.length % n === 0 && lower.slice(0, n).repeat(lower.length / n) === lower && COMMON_PASSWORDS.has(lower.slice(0, n))) return true;
  }
  return false;
}

const TEMP_ALPHABET = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** A one-time temporary password (20 chars, ~115 bits), without look-alike characters. */
export function temporaryPassword(): string {
  let s = '';
  for (let i = 0; i < 20; i++) s += TEMP_ALPHABET[randomInt(TEMP_ALPHABET.length)];
  return s;
}
