// Pure parts of delivery: the Standard Webhooks signature (checked against the spec's published
// example), secret format and sealing, and the retry schedule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { backoffMs, newSigningSecret, SecretBox, signature, signatureHeader } from '../../src/webhooks/webhooks.js';

test('signature matches the Standard Webhooks reference example', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  assert.equal(signature(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  const two = signatureHeader([secret, newSigningSecret()], 'msg_1', 1, '{}').split(' ');
  assert.equal(two.length, 2);
  assert.equal(two[0], signature(secret, 'msg_1', 1, '{}'));
});

test('secrets: whsec_ + base64 of 32 random bytes; sealed with Fernet, opened only with the same key', () => {
  const s = newSigningSecret();
  assert.match(s, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.notEqual(newSigningSecret(), s);
  const key = randomBytes(32).toString('base64url');
  const sealed = new SecretBox(key).seal(s);
  assert.ok(!sealed.includes(s.slice(6)));
  assert.equal(new SecretBox(key).open(sealed), s);
  assert.throws(() => new SecretBox(randomBytes(32).toString('base64url')).open(sealed));
});

test('backoff: 1 s, 2 s, 4 s … capped at 1 h, with ±20 % jitter', () => {
  const at = (attempt: number, r: number) => backoffMs(attempt, 1000, 3_600_000, () => r);
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => at(n, 0.5)), [1000, 2000, 4000, 8000, 16000]);
  assert.equal(at(12, 0.5), 2_048_000);
  assert.equal(at(13, 0.5), 3_600_000);
  assert.equal(at(40, 0.5), 3_600_000);
  assert.equal(at(1, 0), 800);
  assert.equal(at(1, 1), 1200);
  assert.equal(at(30, 1), 4_320_000);
  for (let i = 0; i < 200; i++) {
    const v = backoffMs(3, 1000, 3_600_000);
    assert.ok(v >= 3200 && v <= 4800, String(v));
  }
});
