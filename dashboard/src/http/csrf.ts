// CSRF protection for every form POST (SPEC §12), on top of SameSite=Strict cookies.
// - Signed-in forms carry a synchronizer token derived from the session: HMAC-SHA256 keyed by the
//   session token. Only a holder of the HttpOnly session cookie can compute it, and it needs no
//   server secret, so it survives restarts and works across dashboard replicas.
// - Forms before sign-in (login, MFA, register) use a double-submit token: a random value in an
//   HttpOnly SameSite=Strict cookie, repeated in a hidden field.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const CSRF_FIELD = 'csrf';

export function sessionCsrfToken(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('strathon-dashboard-csrf-v1').digest('base64url');
}

export function newAnonymousCsrfToken(): string {
  return randomBytes(24).toString('base64url');
}

export function tokensEqual(expected: string | undefined, presented: string | undefined): boolean {
  if (!expected || !presented) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
