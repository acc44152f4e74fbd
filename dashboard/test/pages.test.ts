// The dashboard's forms and pages against a real receiver over HTTP: webhooks (secret once, test
// delivery, re-queue a dead one), policy simulation and shadow results, the audit-log filter, the
// overview (active halts, worker health), invitations and roles, the project picker, password
// change, key rotation. Each asserts the page and what the receiver stored.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { withExporter } from '../../receiver/test/otel.js';
import { WORKER_NAMES } from '../../receiver/src/workers/workers.js';
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

/** The receiver's REST API with the test project's `*` key; returns status and parsed body. */
async function rest(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${r.url}${path}`, {
    method, headers: { authorization: `Bearer ${r.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The HTML of the table with this id on a page (fails when it is absent). */
function tableOf(page: string, id: string): string {
  const m = new RegExp(`<table id="${id}">[\\s\\S]*?</table>`).exec(page);
  assert.ok(m, `no table #${id} on the page`);
  return m[0];
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

test('policies: the shadow-results table shows what a shadow policy would have done, and only shadow policies', async () => {
  const tag = randomBytes(3).toString('hex');
  const agent = `shadowed-${tag}`;
  const expression = `attrs["gen_ai.tool.name"] == "rm_rf" && span.agent == "${agent}"`;
  const shadow = await rest('POST', '/v1/policies', { name: `shadow-halt-${tag}`, match_expression: expression, action: 'halt', shadow: true });
  assert.equal(shadow.status, 201, JSON.stringify(shadow.body));
  const live = await rest('POST', '/v1/policies', { name: `live-log-${tag}`, match_expression: expression, action: 'log' });
  assert.equal(live.status, 201, JSON.stringify(live.body));
  let traceId = '';
  let spanId = '';
  await withExporter(r.url, r.key, 'json', false, { 'service.name': agent }, (tracer) => {
    const sp = tracer.startSpan('execute_tool rm_rf', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'rm_rf', 'gen_ai.agent.name': agent } });
    traceId = sp.spanContext().traceId;
    spanId = sp.spanContext().spanId;
    sp.end();
  });
  const c = await signedIn('viewer');
  // Policies are evaluated after the spans commit: wait for both policies' evaluations.
  await until('both evaluations', async () => {
    const n = await r.pool.query('SELECT count(*)::int AS n FROM core.policy_evaluations WHERE policy_id = ANY($1::uuid[])', [[shadow.body.id, live.body.id]]);
    return n.rows[0].n === 2 ? true : undefined;
  });
  const page = await c.get('/policies');
  assert.equal(page.status, 200);
  assert.match(page.text, /<h2 id="h-shadow">Shadow results<\/h2>/);
  const table = tableOf(page.text, 'shadow-results');
  const rows = table.split('<tr>').filter((x) => x.includes(`shadow-halt-${tag}`));
  assert.equal(rows.length, 1, `one shadow row for the policy: ${table.slice(0, 2000)}`);
  assert.match(rows[0]!, new RegExp(`<td>shadow-halt-${tag}</td>\\s*<td>matched</td><td>halt</td><td>${agent}</td>`));
  assert.match(rows[0]!, new RegExp(`<a href="/traces/${traceId}#span-${spanId}">execute_tool rm_rf</a> <span class="muted">\\(rm_rf\\)</span>`));
  assert.equal(table.includes(`live-log-${tag}`), false, 'a live policy\'s evaluations are not shadow results');
  // The policy list marks the shadow policy and counts its match.
  const listed = tableOf(page.text, 'policies');
  assert.match(listed, new RegExp(`<th scope="row">shadow-halt-${tag}<span class="badge badge-shadow">shadow</span></th>`));
  assert.doesNotMatch(listed, new RegExp(`live-log-${tag}<span class="badge badge-shadow">`));
  for (const p of [shadow, live]) assert.equal((await rest('DELETE', `/v1/policies/${p.body.id}`)).status, 204);
});

test('audit log: filtering by action lists only that action\'s events', async () => {
  const c = await signedIn('admin');
  // Something audited of a rarer kind than the sign-ins: a key created and revoked from the dashboard.
  await c.post('/keys', { csrf: await csrfOn(c, '/keys'), name: 'audited-key', scopes: ['traces:read'] });
  const actions = (await r.pool.query<{ action: string; n: number }>(
    `SELECT action, count(*)::int AS n FROM audit.events WHERE project_id = '00000000-0000-0000-0000-000000000001' GROUP BY action ORDER BY n, action`)).rows;
  assert.ok(actions.length >= 2, `several kinds of audited actions: ${JSON.stringify(actions)}`);
  const actionCells = (html: string) => [...tableOf(html, 'audit-events').matchAll(/<td><code>([^<]+)<\/code><\/td>\n<td class="status-/g)].map((m) => m[1]);
  const all = actionCells((await c.get('/audit')).text);
  assert.ok(new Set(all).size >= 2, `unfiltered, the list mixes actions: ${[...new Set(all)].join(', ')}`);
  const rare = actions[0]!;
  const filtered = await c.get(`/audit?action=${encodeURIComponent(rare.action)}`);
  assert.equal(filtered.status, 200);
  assert.match(filtered.text, new RegExp(`<input id="action" name="action" value="${rare.action.replace(/\./g, '\\.')}"`), 'the filter form keeps the value');
  const shown = actionCells(filtered.text);
  assert.equal(shown.length, Math.min(rare.n, 50), `every ${rare.action} event listed (${shown.length} of ${rare.n})`);
  assert.deepEqual([...new Set(shown)], [rare.action], 'only the filtered action is listed');
  const none = await c.get('/audit?action=no.such.action');
  assert.deepEqual(actionCells(none.text), []);
  assert.match(none.text, /No audit events match these filters\./);
});

test('overview: active halts are counted and listed; worker health is the receiver\'s readiness', async () => {
  const agent = `ov-${randomBytes(3).toString('hex')}`;
  const created = await rest('POST', '/v1/halts', { scope: 'agent', scope_value: agent, reason: 'overview check' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const c = await signedIn('viewer');
  const activeCount = async () => ((await rest('GET', '/v1/halts')).body.halts as unknown[]).length;
  const before = await activeCount();
  assert.ok(before >= 1);
  const home = await c.get('/');
  assert.equal(home.status, 200);
  const haltsPanel = /<h2 id="h-halts">Active halts<\/h2>([\s\S]*?)<\/section>/.exec(home.text)?.[1] ?? '';
  assert.match(haltsPanel, new RegExp(`<p><strong>${before}</strong> active ${before === 1 ? 'halt' : 'halts'} — <a href="/halts">review and resolve</a>\\.</p>`));
  assert.match(haltsPanel, new RegExp(`<li>agent ${agent}: overview check</li>`));

  // Worker health: one row per /ready check, each worker among them, with the receiver's status.
  const ready = (await (await fetch(`${r.url}/ready`)).json()) as { status: string; checks: Record<string, { status: string }> };
  const workersPanel = /<h2 id="h-workers">Worker health<\/h2>([\s\S]*?)<\/section>/.exec(home.text)?.[1] ?? '';
  assert.match(workersPanel, new RegExp(`<caption>Receiver readiness: <span class="status-${ready.status}">${ready.status === 'ready' ? 'ready' : 'not ready'}</span></caption>`));
  const shown = Object.fromEntries([...workersPanel.matchAll(/<tr><th scope="row">([^<]+)<\/th><td class="status-(\w+)">\2<\/td>/g)].map((m) => [m[1], m[2]]));
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(ready.checks).sort());
  for (const w of [...WORKER_NAMES, 'db', 'migrations', 'partitions']) assert.equal(shown[w], ready.checks[w]?.status, `${w} on the overview`);

  // Resolved, the halt leaves the overview and the count drops by one.
  assert.equal((await rest('POST', `/v1/halts/${created.body.id}/resolve`, {})).status, 200);
  const after1 = (await c.get('/')).text;
  assert.doesNotMatch(after1, new RegExp(`agent ${agent}:`));
  if (before === 1) assert.match(after1, /No active halts: every agent may run\./);
  else assert.match(after1, new RegExp(`<p><strong>${before - 1}</strong> active`));
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
  assert.equal(res.status, 201, await res.text());
  const c = await signedIn('viewer');
  const page = await c.get('/budgets');
  assert.match(page.text, /<svg class="chart"[^>]*role="img"/);
  assert.match(page.text, /<title id="budget-chart-t">Spend vs limit in the current window<\/title>/);
  assert.match(page.text, /<th scope="row">daily cap<\/th><td>project<\/td><td>cost<\/td>/);
  assert.match(page.text, /\$5/);
  assert.match((await c.get('/')).text, /<desc id="budgets-d">daily cap: \$0\.0000 \/ \$5\.00<\/desc>/);
});
