// The dashboard's forms against a real receiver over HTTP: webhooks (secret once, test delivery,
// re-queue a dead one), policy simulation, invitations and roles, the project picker, password
// change, key rotation. Each asserts the page and what the receiver stored.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { withExporter } from '../../receiver/test/otel.js';
import { addUser, Client, GOOD_PASSWORD, registerOwner, startStack, uniqueEmail } from './support.js';

const { r, d } = await startStack({}, { STRATHON_WEBHOOK_SWEEPER_INTERVAL_SECONDS: '1', STRATHON_WEBHOOK_MAX_ATTEMPTS: '1' });
const owner = await registerOwner(r);

async function signedIn(role = 'owner', email?: string): Promise<Client> {
  const e = email ?? (await addUser(r, owner.token, role));
  const c = new Client(d.url);
  const res = await c.login(e);
  assert.equal(res.status, 303, `login: ${res.status} ${res.text.slice(0, 300)}`);
  return c;
}

const csrfOn = async (c: Client, path: string) => Client.csrfOf((await c.get(path)).text);
const secretOf = (page: string) => /<code id="one-time-secret" class="reveal">([^<]+)<\/code>/.exec(page)?.[1];

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

test('webhooks: the secret is shown once, a test event is delivered, a dead delivery is re-queued', async () => {
  const received: http.IncomingHttpHeaders[] = [];
  let answer = 204;
  const hook = http.createServer((req, res) => {
    received.push(req.headers);
    req.resume();
    res.statusCode = answer;
    res.end();
  });
  await new Promise<void>((res) => hook.listen(0, '127.0.0.1', () => res()));
  after(() => new Promise<void>((res) => hook.close(() => res())));
  const c = await signedIn('admin');
  const add = await c.post('/webhooks', { csrf: await csrfOn(c, '/webhooks'), name: 'ops hook', url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`, events: ['webhook.test', 'halt.created'] });
  assert.equal(add.status, 303);
  const list = await c.get('/webhooks');
  assert.match(secretOf(list.text) ?? '', /^whsec_/);
  assert.equal(secretOf((await c.get('/webhooks')).text), undefined, 'shown once');
  const id = /href="\/webhooks\/([0-9a-f-]{36})">ops hook</.exec(list.text)?.[1] as string;
  assert.ok(id);

  const sent = await c.post(`/webhooks/${id}/test`, { csrf: await csrfOn(c, `/webhooks/${id}`) });
  assert.equal(sent.location, `/webhooks/${id}`);
  assert.match((await c.get(`/webhooks/${id}`)).text, /Test event queued/);
  await until('the test delivery', async () => ((await c.get(`/webhooks/${id}?status=succeeded`)).text.includes('webhook.test') ? true : undefined));
  assert.match(String(received[0]?.['webhook-signature']), /^v1,/);

  answer = 500;
  await c.post(`/webhooks/${id}/test`, { csrf: await csrfOn(c, `/webhooks/${id}`) });
  const dead = await until('a dead delivery', async () => /action="(\/webhooks\/[^"]+\/deliveries\/[0-9a-f-]{36}\/retry)"/.exec((await c.get(`/webhooks/${id}?status=dead`)).text)?.[1]);
  assert.match((await c.get(`/webhooks/${id}?status=dead`)).text, /HTTP 500/);
  answer = 204;
  const retry = await c.post(dead, { csrf: await csrfOn(c, `/webhooks/${id}`) });
  assert.equal(retry.status, 303);
  assert.match((await c.get(`/webhooks/${id}`)).text, /Delivery re-queued\./);
  await until('the re-queued delivery to succeed', async () => ((await c.get(`/webhooks/${id}?status=dead`)).text.includes('No deliveries.') ? true : undefined));

  await c.post(`/webhooks/${id}/enabled`, { csrf: await csrfOn(c, `/webhooks/${id}`), enabled: 'false' });
  assert.match((await c.get(`/webhooks/${id}`)).text, /Endpoint disabled\./);
  const stored = await r.pool.query('SELECT enabled FROM core.notification_channels WHERE id = $1', [id]);
  assert.equal(stored.rows[0].enabled, false);
});

test('policies: an expression is simulated against recent spans; a bad one gets the compiler\'s message', async () => {
  const agent = `sim-${randomBytes(3).toString('hex')}`;
  await withExporter(r.url, r.key, 'json', false, { 'service.name': agent }, (tracer) => {
    tracer.startSpan('execute_tool shell', { attributes: { 'gen_ai.tool.name': 'shell_exec', 'gen_ai.agent.name': agent } }).end();
  });
  const c = await signedIn('viewer');
  const page = await c.get('/policies');
  assert.equal(page.status, 200);
  const sim = await c.post('/policies/simulate', { csrf: Client.csrfOf(page.text), match_expression: `attrs["gen_ai.tool.name"] == "shell_exec" && span.agent == "${agent}"`, hours: '24' });
  assert.equal(sim.status, 200);
  assert.match(sim.text, /role="status">1 matching spans out of \d+ spans/);
  assert.match(sim.text, /execute_tool shell/);
  const bad = await c.post('/policies/simulate', { csrf: Client.csrfOf(page.text), match_expression: 'attrs[', hours: '24' });
  assert.match(bad.text, /class="notice notice-error" role="alert"><p>match_expression: /);
});

test('members: an invitation token is shown once, registers the invitee, whose role the admin then changes', async () => {
  const admin = await signedIn('admin');
  const invitee = uniqueEmail('invitee');
  await admin.post('/members/invite', { csrf: await csrfOn(admin, '/members'), email: invitee, role: 'viewer' });
  const token = secretOf((await admin.get('/members')).text) as string;
  assert.ok(token && token.length > 20);
  const anon = new Client(d.url);
  const form = await anon.get(`/register?invitation=${encodeURIComponent(token)}`);
  assert.match(form.text, new RegExp(`name="invitation_token" type="text" autocomplete="off" value="${token}"`));
  const reg = await anon.post('/register', { csrf: Client.csrfOf(form.text), email: invitee, password: GOOD_PASSWORD, invitation_token: token });
  assert.equal(reg.status, 303, reg.text.slice(0, 400));
  assert.match((await anon.get('/')).text, /<span class="role">viewer<\/span>/);
  const members = await admin.get('/members');
  const userId = new RegExp(`<th scope="row">${invitee}</th>[\\s\\S]*?action="/members/([0-9a-f-]{36})/role"`).exec(members.text)?.[1] as string;
  await admin.post(`/members/${userId}/role`, { csrf: Client.csrfOf(members.text), role: 'operator' });
  assert.match((await admin.get('/members')).text, new RegExp(`${invitee} is now operator\\.`));
  // Above the admin's own role: the receiver refuses, the page says why.
  await admin.post(`/members/${userId}/role`, { csrf: Client.csrfOf(members.text), role: 'owner' });
  assert.match((await admin.get('/members')).text, /role="alert"><p>Not allowed: [^<]*owner/);
  assert.match((await anon.get('/')).text, /<span class="role">operator<\/span>/, 'the new role applies at once');
});

test('a user in two projects picks one; pages and sign-out work with the choice', async () => {
  const email = await addUser(r, owner.token, 'owner');
  const c = await signedIn('owner', email);
  const token = c.jar.get('strathon_session') as string;
  const created = await fetch(`${r.url}/v1/projects`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-project-id': '00000000-0000-0000-0000-000000000001', 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Second project', slug: `second-${randomBytes(3).toString('hex')}` }),
  });
  assert.equal(created.status, 201);
  const second = ((await created.json()) as { id: string; api_key: string }).id;
  const home = await c.get('/');
  assert.equal(home.status, 302);
  assert.equal(home.location, '/projects');
  const picker = await c.get('/projects');
  assert.match(picker.text, /Default project/);
  assert.match(picker.text, /Second project/);
  const chosen = await c.post('/projects', { csrf: Client.csrfOf(picker.text), project_id: second });
  assert.equal(chosen.location, '/');
  const page = await c.get('/keys');
  assert.match(page.text, /Project <strong>Second project<\/strong> \(<a href="\/projects">switch<\/a>\)/);
  assert.match(page.text, /<table id="keys">/);
  assert.doesNotMatch(page.text, /<th scope="row">test<\/th>/, 'the default project\'s key is not listed in the second project');
  assert.equal((await c.post('/projects', { csrf: Client.csrfOf(picker.text), project_id: '00000000-0000-0000-0000-0000000000ff' })).location, '/projects', 'only the user\'s own projects');
  // Sign-out works although the receiver needs a project for it.
  c.jar.delete('strathon_project');
  const out = await c.post('/logout', { csrf: Client.csrfOf(page.text) });
  assert.equal(out.location, '/login?signed_out=1');
  const me = await fetch(`${r.url}/v1/me`, { headers: { authorization: `Bearer ${token}`, 'x-project-id': second } });
  assert.equal(me.status, 401, 'the session was revoked at the receiver');
});

test('password change and key rotation', async () => {
  const email = await addUser(r, owner.token, 'admin');
  const c = await signedIn('admin', email);
  const form = await c.get('/account/password');
  const mismatch = await c.post('/account/password', { csrf: Client.csrfOf(form.text), current_password: GOOD_PASSWORD, new_password: 'another-long-passphrase-77', confirm_password: 'different-long-passphrase-77' });
  assert.equal(mismatch.status, 400);
  assert.match(mismatch.text, /The two new passwords differ\./);
  const ok = await c.post('/account/password', { csrf: Client.csrfOf(form.text), current_password: GOOD_PASSWORD, new_password: 'another-long-passphrase-77', confirm_password: 'another-long-passphrase-77' });
  assert.equal(ok.location, '/account');
  assert.match((await c.get('/account')).text, /Password changed/);
  assert.equal((await new Client(d.url).login(email)).status, 401, 'the old password no longer works');

  await c.post('/keys', { csrf: await csrfOn(c, '/keys'), name: 'to-rotate', scopes: ['traces:read'] });
  const first = secretOf((await c.get('/keys')).text) as string;
  const keys = await c.get('/keys');
  const keyId = /data-key-id="([0-9a-f-]{36})"><th scope="row">to-rotate</.exec(keys.text)?.[1] as string;
  await c.post(`/keys/${keyId}/rotate`, { csrf: Client.csrfOf(keys.text), grace_seconds: '0' });
  const rotated = secretOf((await c.get('/keys')).text) as string;
  assert.match(rotated, /^stra_/);
  assert.notEqual(rotated, first);
  assert.equal((await fetch(`${r.url}/v1/me`, { headers: { authorization: `Bearer ${rotated}` } })).status, 200);
  assert.equal((await fetch(`${r.url}/v1/me`, { headers: { authorization: `Bearer ${first}` } })).status, 401, 'grace 0: the old key is retired at once');
});

test('budgets: spend vs limit as a chart and a table, also on the overview', async () => {
  const res = await fetch(`${r.url}/v1/budgets`, {
    method: 'POST', headers: { authorization: `Bearer ${r.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'daily cap', scope: 'project', max_spend_usd: 5, budget_duration: '1d' }),
  });
  if (res.status === 404) return; // this receiver has no budgets API (the unit tests cover that state)
  assert.equal(res.status, 201, await res.text());
  const c = await signedIn('viewer');
  const page = await c.get('/budgets');
  assert.match(page.text, /<svg class="chart"[^>]*role="img"/);
  assert.match(page.text, /<title id="budget-chart-t">Spend vs limit in the current window<\/title>/);
  assert.match(page.text, /<th scope="row">daily cap<\/th><td>project<\/td><td>cost<\/td>/);
  assert.match(page.text, /\$5/);
  assert.match((await c.get('/')).text, /<desc id="budgets-d">daily cap: \$0\.0000 \/ \$5\.00<\/desc>/);
});
