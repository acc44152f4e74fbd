// MFA (SPEC §6.3, §13.11): enrolment, the mfa_token is never a session and is single-use, a TOTP
// code is accepted once, 5 codes per mfa_token, backup codes are single-use, disable needs
// password + code, and without STRATHON_ENCRYPTION_KEY MFA is refused with a clear message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Fernet } from '../../src/auth/fernet.js';
import { ENCRYPTION_KEY, GOOD_PASSWORD, codeAt, currentStep, get, post, registerOwner, startAuthReceiver, addUser, uniqueEmail } from './support.js';

test('MFA: enrol, log in with mfa_token (never a session, single-use), replay refused, 5 codes burn the token, backup codes once', async () => {
  const r = await startAuthReceiver();
  const owner = await registerOwner(r);

  const setup = await post(r.url, '/v1/auth/mfa/setup', {}, { token: owner.token });
  assert.equal(setup.status, 200, JSON.stringify(setup.body));
  const secret: string = setup.body.secret;
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.match(setup.body.otpauth_uri, /^otpauth:\/\/totp\/Strathon:.*secret=[A-Z2-7]+.*issuer=Strathon/);
  assert.match(setup.body.qr_svg, /^<svg[\s\S]*<\/svg>\s*$/);
  const stored = await r.pool.query('SELECT mfa_pending_secret_enc, mfa_enabled FROM core.users WHERE id = $1', [owner.id]);
  const enc = stored.rows[0].mfa_pending_secret_enc as string;
  assert.ok(!enc.includes(secret), 'the secret is stored encrypted');
  assert.equal(new Fernet(ENCRYPTION_KEY).decryptString(enc), secret);
  assert.equal(stored.rows[0].mfa_enabled, false, 'not enabled before a first code');

  const badEnable = await post(r.url, '/v1/auth/mfa/enable', { code: '000000' }, { token: owner.token });
  assert.equal(badEnable.status, 403);
  const s0 = currentStep();
  const enrolCode = await codeAt(secret, s0);
  const enable = await post(r.url, '/v1/auth/mfa/enable', { code: enrolCode }, { token: owner.token });
  assert.equal(enable.status, 200, JSON.stringify(enable.body));
  const backup: string[] = enable.body.backup_codes;
  assert.equal(backup.length, 10);
  const codeRows = await r.pool.query('SELECT code_hash FROM core.mfa_backup_codes WHERE user_id = $1', [owner.id]);
  assert.equal(codeRows.rowCount, 10);
  assert.ok(codeRows.rows.every((x) => (x.code_hash as Buffer).length === 32), 'stored as SHA-256');
  assert.equal((await post(r.url, '/v1/auth/mfa/setup', {}, { token: owner.token })).status, 409, 'already enabled');

  assert.equal((await post(r.url, '/v1/auth/logout', {}, { token: owner.token })).status, 200);

  const login = await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD });
  assert.equal(login.status, 200);
  assert.equal(login.body.mfa_required, true);
  assert.equal(login.body.token, undefined, 'no session before the second factor');
  assert.equal(login.headers.get('set-cookie'), null);
  const mfaToken: string = login.body.mfa_token;
  assert.ok(mfaToken.length >= 40);

  for (const asCredential of [{ token: mfaToken }, { cookie: `strathon_session=${mfaToken}` }]) {
    const refused = await get(r.url, '/v1/me', asCredential);
    assert.equal(refused.status, 401, 'the mfa_token is not a session');
  }
  const validated = await post(r.url, '/v1/auth/validate', { token: mfaToken });
  assert.equal(validated.body.valid, false);

  const replayEnrol = await post(r.url, '/v1/auth/mfa/verify', { mfa_token: mfaToken, code: enrolCode });
  assert.equal(replayEnrol.status, 401, 'the enrolment code cannot be used again');
  assert.deepEqual(replayEnrol.body, { detail: 'invalid MFA code' });
  const nextCode = await codeAt(secret, s0 + 1);
  const verified = await post(r.url, '/v1/auth/mfa/verify', { mfa_token: mfaToken, totp_code: nextCode });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.equal(verified.body.token_type, 'session');
  assert.match(verified.headers.get('set-cookie') ?? '', /^strathon_session=[^;]+; Path=\/; Max-Age=86400; HttpOnly; SameSite=Strict$/);
  assert.equal((await get(r.url, '/v1/me', { token: verified.body.token })).status, 200);
  const reuse = await post(r.url, '/v1/auth/mfa/verify', { mfa_token: mfaToken, code: await codeAt(secret, s0 + 1) });
  assert.equal(reuse.status, 401, 'an mfa_token is single-use');

  const login2 = await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD });
  const replay = await post(r.url, '/v1/auth/mfa/verify', { mfa_token: login2.body.mfa_token, code: nextCode });
  assert.equal(replay.status, 401, 'the same TOTP code is never accepted twice');
  for (let i = 0; i < 4; i++) {
    assert.equal((await post(r.url, '/v1/auth/mfa/verify', { mfa_token: login2.body.mfa_token, code: '000000' })).status, 401);
  }
  const burnt = await post(r.url, '/v1/auth/mfa/verify', { mfa_token: login2.body.mfa_token, backup_code: backup[0] });
  assert.equal(burnt.status, 429, 'five codes per mfa_token, then it is burnt (even with a good code)');
  assert.match(burnt.headers.get('retry-after') ?? '', /^\d+$/);
  const attempts = await r.pool.query('SELECT attempts FROM core.mfa_challenges WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1', [owner.id]);
  assert.equal(attempts.rows[0].attempts, 5);

  const login3 = await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD });
  const viaBackup = await post(r.url, '/v1/auth/mfa/verify', { mfa_token: login3.body.mfa_token, code: backup[0]?.toUpperCase() });
  assert.equal(viaBackup.status, 200, 'a backup code works (case-insensitive)');
  const login4 = await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD, backup_code: backup[0] });
  assert.equal(login4.status, 401, 'a backup code works once');
  const direct = await post(r.url, '/v1/auth/login', { email: owner.email, password: GOOD_PASSWORD, backup_code: backup[1] });
  assert.equal(direct.status, 200, 'a code given directly in the login body also works');
  assert.equal(direct.body.token_type, 'session');

  const actions = await r.pool.query(`SELECT action, outcome FROM audit.events WHERE action LIKE 'auth.mfa.%' OR action = 'auth.login' ORDER BY sequence_no`);
  const seen = actions.rows.map((x) => `${x.action}:${x.outcome}`);
  for (const want of ['auth.mfa.setup:success', 'auth.mfa.enable:failure', 'auth.mfa.enable:success', 'auth.login:success', 'auth.login:failure']) {
    assert.ok(seen.includes(want), `${want} audited (${seen.join(', ')})`);
  }
});

test('MFA: a TOTP code in the login body; regenerate backup codes; disable needs password + code', async () => {
  const r = await startAuthReceiver();
  const owner = await registerOwner(r);
  const user = await addUser(r, owner.token, 'operator');
  const { secret } = (await post(r.url, '/v1/auth/mfa/setup', {}, { token: user.token })).body;
  const s0 = currentStep();
  const enabled = await post(r.url, '/v1/auth/mfa/enable', { code: await codeAt(secret, s0) }, { token: user.token });
  assert.equal(enabled.status, 200);

  const noCode = await post(r.url, '/v1/auth/login', { email: user.email, password: GOOD_PASSWORD, totp_code: '123' });
  assert.equal(noCode.status, 401);
  const withCode = await post(r.url, '/v1/auth/login', { email: user.email, password: GOOD_PASSWORD, totp_code: await codeAt(secret, s0 + 1) });
  assert.equal(withCode.status, 200, JSON.stringify(withCode.body));
  assert.equal(withCode.body.token_type, 'session');

  const regenerated = await post(r.url, '/v1/auth/mfa/backup-codes', {}, { token: withCode.body.token });
  assert.equal(regenerated.status, 200);
  assert.equal(regenerated.body.backup_codes.length, 10);
  assert.equal((await post(r.url, '/v1/auth/login', { email: user.email, password: GOOD_PASSWORD, backup_code: enabled.body.backup_codes[0] })).status, 401, 'old codes stop working');

  assert.equal((await post(r.url, '/v1/auth/mfa/disable', { password: GOOD_PASSWORD }, { token: withCode.body.token })).status, 422);
  assert.equal((await post(r.url, '/v1/auth/mfa/disable', { password: 'wrong-password-here', code: regenerated.body.backup_codes[0] }, { token: withCode.body.token })).status, 403);
  assert.equal((await post(r.url, '/v1/auth/mfa/disable', { password: GOOD_PASSWORD, code: '000000' }, { token: withCode.body.token })).status, 403);
  const disabled = await post(r.url, '/v1/auth/mfa/disable', { password: GOOD_PASSWORD, code: regenerated.body.backup_codes[1] }, { token: withCode.body.token });
  assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
  const row = await r.pool.query('SELECT mfa_enabled, mfa_secret_enc FROM core.users WHERE id = $1', [user.id]);
  assert.deepEqual(row.rows[0], { mfa_enabled: false, mfa_secret_enc: null });
  const plain = await post(r.url, '/v1/auth/login', { email: user.email, password: GOOD_PASSWORD });
  assert.equal(plain.body.token_type, 'session', 'no MFA step any more');

  const keyCall = await post(r.url, '/v1/auth/mfa/setup', {}, { token: r.key });
  assert.equal(keyCall.status, 403, 'MFA routes are for user sessions');
});

test('MFA without STRATHON_ENCRYPTION_KEY: setup is refused with a message naming the variable', async () => {
  const r = await startAuthReceiver({ STRATHON_ENCRYPTION_KEY: '' });
  const owner = await registerOwner(r, uniqueEmail('nokey'));
  const res = await post(r.url, '/v1/auth/mfa/setup', {}, { token: owner.token });
  assert.equal(res.status, 503);
  assert.match(res.body.detail, /STRATHON_ENCRYPTION_KEY must be set/);
  assert.equal((await r.pool.query('SELECT mfa_pending_secret_enc FROM core.users WHERE id = $1', [owner.id])).rows[0].mfa_pending_secret_enc, null);
});
