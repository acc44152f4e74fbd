// Fernet (https://github.com/fernet/spec): authenticated symmetric encryption for secrets at rest
// (TOTP secrets, webhook signing secrets) with STRATHON_ENCRYPTION_KEY.
//
//   key   = url-safe base64 of 32 bytes: signing key (first 16) || encryption key (last 16)
//   token = base64url(0x80 || timestamp (u64 BE, seconds) || IV (16) || AES-128-CBC(PKCS7) || HMAC-SHA256)
//
// The HMAC covers everything before it and is checked (in constant time) before decrypting.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 0x80;
const HEADER = 1 + 8 + 16;
const HMAC_LEN = 32;

export class FernetError extends Error {}

function fromBase64Url(s: string): Buffer {
  return Buffer.from(s.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Url-safe base64 with padding, as every Fernet implementation writes it. */
function toBase64Url(b: Buffer): string {
  return b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

export class Fernet {
  private readonly signingKey: Buffer;
  private readonly encryptionKey: Buffer;

  constructor(key: string) {
    const raw = fromBase64Url(key);
    if (raw.length !== 32) throw new FernetError('a Fernet key is url-safe base64 of 32 bytes');
    this.signingKey = raw.subarray(0, 16);
    this.encryptionKey = raw.subarray(16, 32);
  }

  static generateKey(): string {
    return toBase64Url(randomBytes(32));
  }

  /** `at` and `iv` exist for the spec's test vectors; leave them unset. */
  encrypt(plaintext: string | Buffer, opts: { at?: number; iv?: Buffer } = {}): string {
    const iv = opts.iv ?? randomBytes(16);
    if (iv.length !== 16) throw new FernetError('IV must be 16 bytes');
    const header = Buffer.alloc(HEADER);
    header.writeUInt8(VERSION, 0);
    header.writeBigUInt64BE(BigInt(Math.floor(opts.at ?? Date.now() / 1000)), 1);
    iv.copy(header, 9);
    const cipher = createCipheriv('aes-128-cbc', this.encryptionKey, iv);
    const body = Buffer.concat([header, cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
    const mac = createHmac('sha256', this.signingKey).update(body).digest();
    return toBase64Url(Buffer.concat([body, mac]));
  }

  /** Verify and decrypt; with `ttlSeconds`, tokens older than that (or from the future) are refused. */
  decrypt(token: string, opts: { ttlSeconds?: number; now?: number } = {}): Buffer {
    const raw = fromBase64Url(token);
    // Ciphertext is a non-empty multiple of the AES block size.
    if (raw.length < HEADER + 16 + HMAC_LEN || (raw.length - HEADER - HMAC_LEN) % 16 !== 0) throw new FernetError('invalid token');
    if (raw.readUInt8(0) !== VERSION) throw new FernetError('invalid token');
    const body = raw.subarray(0, raw.length - HMAC_LEN);
    const mac = raw.subarray(raw.length - HMAC_LEN);
    const expected = createHmac('sha256', this.signingKey).update(body).digest();
    if (!timingSafeEqual(mac, expected)) throw new FernetError('invalid token');
    if (opts.ttlSeconds !== undefined) {
      const now = opts.now ?? Math.floor(Date.now() / 1000);
      const ts = Number(raw.readBigUInt64BE(1));
      if (ts + opts.ttlSeconds < now || ts > now + 60) throw new FernetError('token expired');
    }
    try {
      const decipher = createDecipheriv('aes-128-cbc', this.encryptionKey, raw.subarray(9, HEADER));
      return Buffer.concat([decipher.update(raw.subarray(HEADER, raw.length - HMAC_LEN)), decipher.final()]);
    } catch {
      throw new FernetError('invalid token');
    }
  }

  decryptString(token: string): string {
    return this.decrypt(token).toString('utf8');
  }
}
