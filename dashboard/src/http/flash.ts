// One-shot messages after a POST → 303 → GET (so a reload never repeats the action), in a cookie
// encrypted with a key derived from the session token (AES-256-GCM). Used for one-time secrets
// too (a new API key, a webhook secret): the GET that shows it also clears it, so a reload or a
// later visit never shows it again, and nothing secret is kept on the server.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
  /** A value shown once (raw API key, webhook secret, invitation token). */
  secret?: { label: string; value: string };
  /** Extra lines, e.g. the details of a verification. */
  lines?: string[];
}

const keyFor = (sessionToken: string) => createHash('sha256').update('strathon-dashboard-flash-v1\0').update(sessionToken).digest();

export function sealFlash(sessionToken: string, flash: Flash): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', keyFor(sessionToken), iv);
  const body = Buffer.concat([c.update(JSON.stringify(flash), 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url');
}

export function openFlash(sessionToken: string, sealed: string | undefined): Flash | undefined {
  if (!sealed) return undefined;
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const d = createDecipheriv('aes-256-gcm', keyFor(sessionToken), raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
    const f = JSON.parse(text) as Flash;
    return f && (f.kind === 'ok' || f.kind === 'error') && typeof f.text === 'string' ? f : undefined;
  } catch {
    return undefined;
  }
}
