// Signing secrets and Standard Webhooks signatures (SPEC §9). A secret is `whsec_` + base64 of 32
// random bytes; the HMAC key is those 32 bytes. At rest it is a Fernet token under
// STRATHON_ENCRYPTION_KEY, so every replica can sign and a restart loses nothing.
import { createHmac, randomBytes } from 'node:crypto';
import { Fernet } from '../auth/fernet.js';

export const SECRET_PREFIX = 'whsec_';

/** How long the previous secret keeps signing after a rotation. */
export const PREVIOUS_SECRET_TTL_SECONDS = 24 * 3600;

export function newSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/** The HMAC key of a `whsec_…` secret: the bytes its base64 part encodes. */
export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`. */
export function signature(secret: string, webhookId: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${webhookId}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The `webhook-signature` header: one `v1,…` entry per active secret, space-separated. */
export function signatureHeader(secrets: string[], webhookId: string, timestamp: number, body: string): string {
  return secrets.map((s) => signature(s, webhookId, timestamp, body)).join(' ');
}

/** Seals and opens signing secrets with STRATHON_ENCRYPTION_KEY. */
export class SecretBox {
  private readonly fernet: Fernet;
  constructor(encryptionKey: string) {
    this.fernet = new Fernet(encryptionKey);
  }
  seal(secret: string): string {
    return this.fernet.encrypt(secret);
  }
  open(token: string): string {
    return this.fernet.decryptString(token);
  }
}
