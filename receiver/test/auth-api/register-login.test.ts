// Registration (first user → owner; then invitation or projects:manage caller), login (cookie,
// identical failures) and the Postgres-backed login limits, across two receivers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { DEFAULT_PROJECT_ID, makeKey, makeProject } from '../helpers.js';
import { GOOD_PASSWORD, freshIp, get, post, startAuthReceiver, uniqueEmail } from './support.js';

test('register: first user owns the default project; then only an invitation or a projects:manage caller', async () => {
  const r = await startAuthReceiver();
  const ownerEmail = uniqueEmail('owner');
  const first = await post(r.url, '/v1/auth/register', { email: ownerEmail, password: GOOD_PASSWORD, name: 'Olga Owner' });
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.user.email, ownerEmail);
  assert.equal(first.body.user.display_name, 'Olga Owner');
  assert.equal(first.body.project.id, DEFAULT_PROJECT_ID);
  assert.equal(first.body.organization.id, DEFAULT_PROJECT_ID);
  assert.equal(first.body.role, 'owner');
  assert.equal(typeof first.body.message, 'string');
  const me = await get(r.url, '/v1/me', { token: first.body.token });
  assert.equal(me.status, 200);
  assert.deepEqual({ kind: me.body.kind, id: me.body.id, role: me.body.role, project_id: me.body.project_id, scopes: me.body.scopes }, { kind: 'user', id: first.body.user.id, role: 'owner', project_id: DEFAULT_PROJECT_ID, scopes: ['*'] });

  const stranger = await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD });
  assert.equal(stranger.status, 403);
  assert.deepEqual(stranger.body, { detail: 'registration requires an invitation' });

  const dup = await post(r.url, '/v1/auth/register', { email: ownerEmail.toUpperCase(), password: GOOD_PASSWORD }, { token: first.body.token });
  assert.equal(dup.status, 409);

  // An invitation (as POST /v1/members/invitations stores it: sha256 of the token).
  const other = await makeProject(r.pool);
  const invitationToken = randomBytes(32).toString('base64url');
  const invitedEmail = uniqueEmail('invited');
  await r.pool.query(
    `INSERT INTO core.invitations (project_id, token_hash, email, role, expires_at) VALUES ($1, $2, $3, 'operator', now() + interval '1 day')`,
    [other, createHash('sha256').update(invitationToken).digest(), invitedEmail],
  );
  const wrongEmail = await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD, invitation_token: invitationToken });
  assert.equal(wrongEmail.status, 403);
  const bogus = await post(r.url, '/v1/auth/register', { email: invitedEmail, password: GOOD_PASSWORD, invitation_token: 'nope' });
  assert.equal(bogus.status, 403);
  const invited = await post(r.url, '/v1/auth/register', { email: invitedEmail, password: GOOD_PASSWORD, invitation_token: invitationToken, role: 'owner' });
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  assert.equal(invited.body.role, 'operator', 'the invitation decides the role, not the body');
  assert.equal(invited.body.project.id, other);
  const invitedMe = await get(r.url, '/v1/me', { token: invited.body.token });
  assert.equal(invitedMe.body.project_id, other);
  assert.equal(invitedMe.body.role, 'operator');
  const again = await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD, invitation_token: invitationToken });
  assert.equal(again.status, 403, 'an invitation is single-use');

  // Expired invitation.
  const expiredToken = randomBytes(32).toString('base64url');
  const expiredEmail = uniqueEmail();
  await r.pool.query(
    `INSERT INTO core.invitations (project_id, token_hash, email, role, expires_at) VALUES ($1, $2, $3, 'viewer', now() - interval '1 second')`,
    [other, createHash('sha256').update(expiredToken).digest(), expiredEmail],
  );
  assert.equal((await post(r.url, '/v1/auth/register', { email: expiredEmail, password: GOOD_PASSWORD, invitation_token: expiredToken })).status, 403);

  // A caller holding projects:manage adds a user to its own project, default role viewer, no session minted for them.
  const byOwner = await post(r.url, '/v1/auth/register', { email: uniqueEmail('viewer'), password: GOOD_PASSWORD }, { token: first.body.token });
  assert.equal(byOwner.status, 201, JSON.stringify(byOwner.body));
  assert.equal(byOwner.body.role, 'viewer');
  assert.equal(byOwner.body.token, null, 'no session for somebody else');
  assert.equal(byOwner.headers.get('set-cookie'), null);
  const adminEmail = uniqueEmail('admin');
  assert.equal((await post(r.url, '/v1/auth/register', { email: adminEmail, password: GOOD_PASSWORD, role: 'admin' }, { token: first.body.token })).status, 201);
  const adminLogin = await post(r.url, '/v1/auth/login', { email: adminEmail, password: GOOD_PASSWORD });
  assert.equal(adminLogin.status, 200);
  const aboveOwn = await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD, role: 'owner' }, { token: adminLogin.body.token });
  assert.equal(aboveOwn.status, 403, 'an admin cannot create an owner');
  assert.equal((await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD, role: 'admin' }, { token: adminLogin.body.token })).status, 201);

  // API keys: projects:manage needed; a non-* key acts as admin.
  const readKey = await makeKey(r.pool, ['traces:read']);
  assert.equal((await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD }, { token: readKey })).status, 403);
  const manageKey = await makeKey(r.pool, ['projects:manage']);
  assert.equal((await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD, role: 'owner' }, { token: manageKey })).status, 403);
  const viaKey = await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD, role: 'operator' }, { token: manageKey });
  assert.equal(viaKey.status, 201);
  assert.equal(viaKey.body.project.id, DEFAULT_PROJECT_ID);
  assert.equal((await post(r.url, '/v1/auth/register', { email: uniqueEmail(), password: GOOD_PASSWORD }, { token: 'stra_not_a_real_key' })).status, 401);

  const audit = await r.pool.query(`SELECT count(*)::int AS n FROM audit.events WHERE action = 'auth.register'`);
  assert.ok((audit.rows[0] as { n: number }).n >= 6, 'registrations are audited');
});

test('register validation: 422 naming the field (password too short / common, bad email, bad role)', async () => {
  const r = await startAuthReceiver();
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ email: uniqueEmail(), password: 'short-pass1' }, 'password', /at least 12/],
    [{ email: uniqueEmail(), password: 'Password1234' }, 'password', /common/],
    [{ email: uniqueEmail(), password: 'qwertyuiopasdfghjkl' }, 'password', /common/],
    [{ email: uniqueEmail() }, 'password', /required/],
    [{ email: uniqueEmail(), password: 123456789012345 }, 'password', /string/],
    [{ email: 'not-an-email', password: GOOD_PASSWORD }, 'email', /email/],
    [{ email: uniqueEmail(), password: GOOD_PASSWORD, role: 'god' }, 'role', /one of/],
  ];
  for (const [body, field, msg] of cases) {
    const res = await post(r.url, '/v1/auth/register', body);
    assert.equal(res.status, 422, `${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
    assert.deepEqual(res.body.detail[0].loc, ['body', field]);
    assert.match(res.body.detail[0].msg, msg);
  }
  assert.equal((await r.pool.query('SELECT 1 FROM core.users')).rowCount, 0, 'nothing was created');
});

test('login: session cookie flags exact; unknown user and wrong password answer identically', async () => {
  const r = await startAuthReceiver({ STRATHON_SESSION_TTL_SECONDS: '7200' });
  const email = uniqueEmail('login');
  assert.equal((await post(r.url, '/v1/auth/register', { email, password: GOOD_PASSWORD, display_name: 'Lou' })).status, 201);

  const ok = await post(r.url, '/v1/auth/login', { email: email.toUpperCase(), password: GOOD_PASSWORD });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.token_type, 'session');
  assert.equal(ok.body.user.email, email);
  assert.equal(ok.body.user.name, 'Lou');
  assert.ok(Math.abs(Date.parse(ok.body.expires_at) - Date.now() - 7200_000) < 60_000);
  assert.equal(ok.headers.get('set-cookie'), `strathon_session=${ok.body.token}; Path=/; Max-Age=7200; HttpOnly; SameSite=Strict`);
  assert.equal((await get(r.url, '/v1/me', { cookie: `strathon_session=${ok.body.token}` })).status, 200, 'the cookie authenticates');
  const stored = await r.pool.query('SELECT token_hash FROM core.sessions WHERE token_hash = $1', [createHash('sha256').update(ok.body.token).digest()]);
  assert.equal(stored.rowCount, 1, 'only the SHA-256 of the session token is stored');

  const secure = await startAuthReceiver({ STRATHON_COOKIE_SECURE: 'true' }, { databaseUrl: r.databaseUrl });
  const s = await post(secure.url, '/v1/auth/login', { email, password: GOOD_PASSWORD });
  assert.equal(s.headers.get('set-cookie'), `strathon_session=${s.body.token}; Path=/; Max-Age=86400; HttpOnly; SameSite=Strict; Secure`);

  const t0 = performance.now();
  const wrong = await post(r.url, '/v1/auth/login', { email, password: 'wrong-password-but-long' });
  const t1 = performance.now();
  const unknown = await post(r.url, '/v1/auth/login', { email: uniqueEmail('ghost'), password: 'wrong-password-but-long' });
  const t2 = performance.now();
  assert.equal(wrong.status, 401);
  assert.equal(unknown.status, 401);
  assert.deepEqual(wrong.body, { detail: 'invalid credentials' });
  assert.deepEqual(unknown.body, wrong.body);
  assert.equal(unknown.headers.get('www-authenticate'), wrong.headers.get('www-authenticate'));
  assert.equal(unknown.headers.get('set-cookie'), null);
  // Both pay one Argon2 verify; allow generous noise, but an unknown user must not be a fast path.
  assert.ok(t2 - t1 > (t1 - t0) * 0.3, `unknown user ${Math.round(t2 - t1)} ms vs wrong password ${Math.round(t1 - t0)} ms`);

  const failures = await r.pool.query(`SELECT outcome, details->>'reason' AS reason FROM audit.events WHERE action = 'auth.login' ORDER BY sequence_no`);
  assert.deepEqual(failures.rows.filter((x) => x.outcome === 'failure').map((x) => x.reason), ['wrong password', 'unknown user'], 'both failures audited (with the reason kept internal)');

  for (const [body, field] of [[{ password: GOOD_PASSWORD }, 'email'], [{ email, password: 5 }, 'password']] as const) {
    const res = await post(r.url, '/v1/auth/login', body);
    assert.equal(res.status, 422);
    assert.deepEqual(res.body.detail[0].loc, ['body', field]);
  }
});

test('login limit: 5 attempts per 5 minutes per client IP and per account, shared by two receivers', async () => {
  const a = await startAuthReceiver();
  const b = await startAuthReceiver({}, { databaseUrl: a.databaseUrl });
  const email = uniqueEmail('limited');
  assert.equal((await post(a.url, '/v1/auth/register', { email, password: GOOD_PASSWORD })).status, 201);

  // Per IP: different accounts, one client address, alternating receivers.
  const ip = freshIp();
  for (let i = 0; i < 5; i++) {
    const res = await post(i % 2 ? b.url : a.url, '/v1/auth/login', { email: uniqueEmail('nobody'), password: 'not-the-password' }, { ip });
    assert.equal(res.status, 401, `attempt ${i + 1}`);
  }
  const blocked = await post(b.url, '/v1/auth/login', { email, password: GOOD_PASSWORD }, { ip });
  assert.equal(blocked.status, 429);
  const retryAfter = blocked.headers.get('retry-after') ?? '';
  assert.match(retryAfter, /^\d+$/);
  assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 300);
  assert.match(blocked.body.detail, /too many login attempts, retry in \d+s/);
  assert.equal((await post(a.url, '/v1/auth/login', { email, password: GOOD_PASSWORD }, { ip })).status, 429, 'the other replica agrees');
  assert.equal((await post(a.url, '/v1/auth/login', { email, password: GOOD_PASSWORD })).status, 200, 'another address is not limited');

  // Per account: 5 addresses, one account (successes count as attempts too: one login above).
  const target = uniqueEmail('target');
  assert.equal((await post(a.url, '/v1/auth/register', { email: target, password: GOOD_PASSWORD }, { token: (await post(a.url, '/v1/auth/login', { email, password: GOOD_PASSWORD })).body.token })).status, 201);
  for (let i = 0; i < 4; i++) assert.equal((await post(i % 2 ? a.url : b.url, '/v1/auth/login', { email: target, password: 'not-the-password' })).status, 401);
  assert.equal((await post(a.url, '/v1/auth/login', { email: target.toUpperCase(), password: GOOD_PASSWORD })).status, 200, 'fifth attempt, correct password');
  const locked = await post(b.url, '/v1/auth/login', { email: target, password: GOOD_PASSWORD });
  assert.equal(locked.status, 429, 'the sixth attempt on the account, from a new address, on the other replica');
  assert.match(locked.headers.get('retry-after') ?? '', /^\d+$/);
  const rows = await a.pool.query(`SELECT count(*)::int AS n FROM core.rate_events WHERE bucket = 'login_account' AND identifier = $1`, [target]);
  assert.equal((rows.rows[0] as { n: number }).n, 5, 'refused attempts are not recorded');
});
