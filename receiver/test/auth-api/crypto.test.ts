// Fernet against the spec's published vectors; Argon2id parameters and pepper; password rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fernet } from '../../src/auth/fernet.js';
import { PasswordHasher, passwordProblem, temporaryPassword } from '../../src/auth/passwords.js';
import { generateBackupCodes } from '../../src/auth/mfa.js';

// https://github.com/fernet/spec/blob/master/generate.json and verify.json
const SECRET = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const TOKEN = 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';
const NOW = Date.parse('1985-10-26T01:20:01-07:00') / 1000;

test('Fernet: the spec vector decrypts to "hello", and encrypting with its IV and time gives the same token', () => {
  const f = new Fernet(SECRET);
  assert.equal(f.decrypt(TOKEN).toString('utf8'), 'hello');
  assert.equal(f.decrypt(TOKEN, { ttlSeconds: 60, now: NOW }).toString('utf8'), 'hello');
  const iv = Buffer.from([...Array(16).keys()]);
  assert.equal(f.encrypt('hello', { at: 499162800, iv }), TOKEN);
});

test('Fernet: refuses a modified token, a wrong key, an expired token; round-trips random data', () => {
  const f = new Fernet(SECRET);
  const flipped = Buffer.from(TOKEN.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  flipped[30] = (flipped[30] as number) ^ 1;
  assert.throws(() => f.decrypt(flipped.toString('base64url')), /invalid token/);
  assert.throws(() => new Fernet(Fernet.generateKey()).decrypt(TOKEN), /invalid token/);
  assert.throws(() => f.decrypt(TOKEN, { ttlSeconds: 60, now: NOW + 3600 }), /expired/);
  assert.throws(() => f.decrypt('gAAAAA'), /invalid token/);
  assert.throws(() => new Fernet('c2hvcnQ='), /32 bytes/);
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const token = f.encrypt(secret);
  assert.notEqual(token, f.encrypt(secret), 'a fresh IV per encryption');
  assert.equal(f.decryptString(token), secret);
  assert.equal(f.decrypt(token.replace(/=+$/, '')).toString(), secret, 'unpadded base64 accepted');
});

test('passwords: Argon2id m=19456 t=2 p=1 with a per-password salt; the pepper is part of the hash', async () => {
  const pepper = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const h = new PasswordHasher(pepper);
  const a = await h.hash('a perfectly fine passphrase');
  const b = await h.hash('a perfectly fine passphrase');
  assert.match(a, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  assert.notEqual(a, b, 'salted');
  assert.equal(await h.verify(a, 'a perfectly fine passphrase'), true);
  assert.equal(await h.verify(a, 'a perfectly fine passphrasE'), false);
  assert.equal(await new PasswordHasher(undefined).verify(a, 'a perfectly fine passphrase'), false, 'without the pepper the hash does not verify');
  assert.equal(await h.verify('not a hash', 'x'), false);
  assert.equal(await h.verifyOrDummy(undefined, 'anything'), false);
});

test('password rules: at least 12 characters, not a common password (case-insensitive, with suffixes)', () => {
  assert.match(passwordProblem('short-pass1') ?? '', /at least 12/);
  for (const p of ['password1234', 'Password1234', 'QWERTYUIOPASDF', 'iloveyou2024!', 'passwordpassword', 'aaaaaaaaaaaaaaa', 'monkey123456']) {
    assert.match(passwordProblem(p) ?? '', /too common/, p);
  }
  assert.match(passwordProblem('alice.smith1234', { email: 'alice.smith@example.com' }) ?? '', /email/);
  assert.equal(passwordProblem('correct-horse-battery-staple-42'), null);
  assert.equal(passwordProblem(temporaryPassword()), null);
  const codes = generateBackupCodes();
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10);
  for (const c of codes) assert.match(c, /^[a-z2-9]{5}-[a-z2-9]{5}$/);
});
