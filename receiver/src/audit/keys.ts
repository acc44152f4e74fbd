// The audit HMAC keys: the current one signs, every configured one verifies (SPEC §2
// STRATHON_AUDIT_HMAC_KEY / _KEY_ID / _KEYS_PREVIOUS).
import type { Config } from '../config.js';

export interface AuditKeys {
  /** Signs new rows and anchors. */
  signingKeyId: number;
  signingKey: Buffer;
  /** Every key a stored row may name: the previous keys plus the current one. */
  verifying: ReadonlyMap<number, Buffer>;
}

export function auditKeys(config: Pick<Config, 'auditHmacKey' | 'auditHmacKeyId' | 'auditHmacKeysPrevious'>): AuditKeys {
  const verifying = new Map(config.auditHmacKeysPrevious);
  // The current key wins if a previous entry reuses its id.
  verifying.set(config.auditHmacKeyId, config.auditHmacKey);
  return { signingKeyId: config.auditHmacKeyId, signingKey: config.auditHmacKey, verifying };
}
