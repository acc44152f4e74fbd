// Dashboard security over plain HTTP (no browser needed): headers and CSP on every page, no inline
// script or style in any served HTML, HttpOnly SameSite=Strict cookies, CSRF refusals, HSTS only
// over TLS, expired and revoked sessions sent to sign-in, "requires role X" for a viewer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startDashboard } from '../src/server.js';
import { silentLogger } from '../src/log.js';
import { CONTENT_SECURITY_POLICY } from '../src/http/headers.js';
import { NAV } from '../src/layout.js';
import { addUser, Client, registerOwner, startStack } from './support.js';

const { r, d } = await startStack();
const owner = await registerOwner(r);

async function signedIn(role = 'owner'): Promise<Client> {
  const email = await addUser(r, owner.token, role);
  const c = new Client(d.url);
  const res = await c.login(email);
  assert.equal(res.status, 303, `login of a new ${role}: ${res.status} ${res.text.slice(0, 300)}`);
  return c;
}

function assertNoInlineCode(page: string, where: string): void {
  const scripts = page.match(/<script\b[^>]*>/gi) ?? [];
  assert.ok(scripts.length > 0, `${where}: the page loads /static/app.js`);
  for (const s of scripts) assert.match(s, /\bsrc="\/static\/[^"]+"/, `${where}: every <script> has a src (${s})`);
  assert.doesNotMatch(page, /<script\b[^>]*>[^<]+<\/script>/i, `${where}: no inline script body`);
  assert.doesNotMatch(page, /\sstyle\s*=/i, `${where}: no style= attribute`);
  assert.doesNotMatch(page, /<style\b/i, `${where}: no <style> element`);
  assert.doesNotMatch(page, /\son[a-z]+\s*=\s*"/i, `${where}: no inline event handler`);
  assert.doesNotMatch(page, /javascript:/i, `${where}: no javascript: URL`);
}

function assertSecurityHeaders(h: Headers, where: string): void {
  assert.equal(h.get('content-security-policy'), CONTENT_SECURITY_POLICY, where);
  assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /style-src 'self'(;|$)/);
  assert.match(CONTENT_SECURITY_POLICY, /frame-ancestors 'none'/);
  assert.equal(h.get('x-frame-options'), 'DENY', where);
  assert.equal(h.get('x-content-type-options'), 'nosniff', where);
  assert.equal(h.get('referrer-policy'), 'strict-origin-when-cross-origin', where);
  assert.match(h.get('permissions-policy') ?? '', /camera=\(\).*geolocation=\(\).*microphone=\(\)/, where);
  assert.equal(h.get('cache-control'), 'no-store', where);
  assert.equal(h.get('x-powered-by'), null, where);
  assert.equal(h.get('strict-transport-security'), null, `${where}: no HSTS over plain HTTP`);
}

test('every page sends CSP, frame, sniffing and permissions headers, and its HTML has no inline script or style', async () => {
  const c = await signedIn();
  const login = await new Client(d.url).get('/login');
  assertSecurityHeaders(login.headers, '/login');
  assertNoInlineCode(login.text, '/login');
  const pages = [...NAV.map((n) => n.href), '/account', '/account/password', '/traces/0123456789abcdef0123456789abcdef'];
  for (const p of pages) {
    const res = await c.get(p);
    assert.ok(res.status === 200 || (p.startsWith('/traces/') && res.status === 404), `${p}: ${res.status} ${res.text.slice(0, 200)}`);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8', p);
    assertSecurityHeaders(res.headers, p);
    assertNoInlineCode(res.text, p);
    assert.match(res.text, /<main id="main"/, `${p}: main landmark`);
    assert.match(res.text, /<nav aria-label="Main">/, `${p}: navigation landmark`);
    assert.match(res.text, /<h1>/, `${p}: a heading`);
  }
  const css = await c.get('/static/app.css');
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  const js = await c.get('/static/app.js');
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assertSecurityHeaders(js.headers.has('cache-control') ? new Headers([...js.headers].map(([k, v]) => [k, k === 'cache-control' ? 'no-store' : v])) : js.headers, '/static/app.js');
});

test('cookies are HttpOnly and SameSite=Strict; the session is the receiver\'s token', async () => {
  const email = await addUser(r, owner.token, 'viewer');
  const c = new Client(d.url);
  const form = await c.get('/login');
  const csrfCookie = form.setCookies.find((x) => x.startsWith('strathon_csrf='));
  assert.ok(csrfCookie, 'the login form sets its CSRF cookie');
  const res = await c.post('/login', { csrf: Client.csrfOf(form.text), email, password: 'correct-horse-battery-staple-42', next: '/traces' });
  assert.equal(res.status, 303);
  assert.equal(res.location, '/traces');
  const session = res.setCookies.find((x) => x.startsWith('strathon_session='));
  assert.ok(session, 'a session cookie is set');
  for (const cookie of [session, csrfCookie]) {
    assert.match(cookie, /; HttpOnly(;|$)/);
    assert.match(cookie, /; SameSite=Strict(;|$)/);
    assert.match(cookie, /; Path=\/(;|$)/);
    assert.doesNotMatch(cookie, /; Secure/, 'plain HTTP in development: no Secure flag');
  }
  // The cookie holds a real receiver session: the API accepts it as a Bearer token.
  const me = await fetch(`${r.url}/v1/me`, { headers: { authorization: `Bearer ${c.jar.get('strathon_session')}` } });
  assert.equal(((await me.json()) as { email: string }).email, email);
});

test('a form POST without (or with a wrong) CSRF token is refused with 403 and changes nothing', async () => {
  const c = await signedIn('admin');
  const keysBefore = (await r.pool.query('SELECT count(*)::int AS n FROM core.api_keys')).rows[0].n;
  const none = await c.post('/keys', { name: 'csrf-none', scopes: 'traces:read' });
  assert.equal(none.status, 403);
  assert.match(none.text, /CSRF check failed/);
  const wrong = await c.post('/keys', { name: 'csrf-wrong', scopes: 'traces:read', csrf: 'x'.repeat(43) });
  assert.equal(wrong.status, 403);
  // Another user's token does not fit this session either.
  const other = await signedIn('admin');
  const foreign = Client.csrfOf((await other.get('/keys')).text);
  assert.equal((await c.post('/keys', { name: 'csrf-foreign', csrf: foreign })).status, 403);
  assert.equal((await r.pool.query('SELECT count(*)::int AS n FROM core.api_keys')).rows[0].n, keysBefore, 'no key was created');
  const ok = await c.post('/keys', { name: 'csrf-ok', scopes: 'traces:read', csrf: Client.csrfOf((await c.get('/keys')).text) });
  assert.equal(ok.status, 303);
  assert.equal((await r.pool.query('SELECT count(*)::int AS n FROM core.api_keys')).rows[0].n, keysBefore + 1);
  // Before sign-in: the login form's double-submit token is required too.
  const anon = new Client(d.url);
  await anon.get('/login');
  assert.equal((await anon.post('/login', { email: owner.email, password: 'x' })).status, 403);
  assert.equal((await anon.post('/login', { email: owner.email, password: 'x', csrf: 'forged' })).status, 403);
  // And sign-out, which runs before /v1/me.
  assert.equal((await c.post('/logout', {})).status, 403);
});

test('an expired or revoked session sends the browser to sign in, back to the page afterwards', async () => {
  const c = await signedIn('viewer');
  assert.equal((await c.get('/traces?range=1h')).status, 200);
  await r.pool.query(`UPDATE core.sessions SET expires_at = now() - interval '1 second' WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, [c.jar.get('strathon_session')]);
  const res = await c.get('/traces?range=1h');
  assert.equal(res.status, 302);
  assert.equal(res.location, `/login?expired=1&next=${encodeURIComponent('/traces?range=1h')}`);
  assert.ok(res.setCookies.some((x) => x.startsWith('strathon_session=;') && /Max-Age=0/.test(x)), 'the dead session cookie is cleared');
  const login = await c.get(res.location as string);
  assert.match(login.text, /Your session has expired/);
  assert.match(login.text, /name="next" value="\/traces\?range=1h"/);
  // A form POST with a dead session is not performed either.
  const c2 = await signedIn('admin');
  const csrf = Client.csrfOf((await c2.get('/keys')).text);
  await r.pool.query(`UPDATE core.sessions SET revoked_at = now() WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, [c2.jar.get('strathon_session')]);
  const post = await c2.post('/keys', { name: 'after-revoke', csrf });
  assert.equal(post.status, 303);
  assert.equal(post.location, '/login?expired=1');
  assert.equal((await r.pool.query(`SELECT count(*)::int AS n FROM core.api_keys WHERE name = 'after-revoke'`)).rows[0].n, 0);
  // No session at all: straight to sign-in.
  const anon = await new Client(d.url).get('/audit');
  assert.equal(anon.status, 302);
  assert.equal(anon.location, '/login?next=%2Faudit');
});

test('a viewer trying to create an API key is told the role it needs', async () => {
  const c = await signedIn('viewer');
  const page = await c.get('/keys');
  assert.equal(page.status, 200);
  const res = await c.post('/keys', { name: 'viewer-key', scopes: 'traces:read', csrf: Client.csrfOf(page.text) });
  assert.equal(res.status, 303);
  const after = await c.get(res.location as string);
  assert.match(after.text, /role="alert"><p>Not allowed: requires role admin\.<\/p>/);
  assert.equal((await c.get('/keys')).text.includes('requires role admin'), false, 'the message is shown once');
  const members = await c.get('/members');
  assert.match(members.text, /Not allowed: requires role admin\./, 'reads the API refuses say so too');
});

test('HSTS and Secure cookies only over TLS, as told by a trusted proxy', async () => {
  const email = await addUser(r, owner.token, 'viewer');
  const c = new Client(d.url);
  const form = await c.get('/login', { 'x-forwarded-proto': 'https' });
  assert.equal(form.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
  const res = await c.post('/login', { csrf: Client.csrfOf(form.text), email, password: 'correct-horse-battery-staple-42', next: '/' }, { 'x-forwarded-proto': 'https' });
  assert.match(res.setCookies.find((x) => x.startsWith('strathon_session=')) ?? '', /; Secure$/);
  // The same header from a peer that is not a trusted proxy is ignored.
  const direct = await startDashboard({ env: { DASHBOARD_HOST: '127.0.0.1', DASHBOARD_PORT: '0', STRATHON_RECEIVER_URL: r.url, DATABASE_URL: r.databaseUrl }, log: silentLogger });
  try {
    const plain = await new Client(direct.url).get('/login', { 'x-forwarded-proto': 'https' });
    assert.equal(plain.headers.get('strict-transport-security'), null);
  } finally {
    await direct.close();
  }
});
