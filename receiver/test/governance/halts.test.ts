// Halts and intervention sync (SPEC §7.3, §8.2): create (Strathon and CLI forms), list active or
// all, get, clear by DELETE or resolve (409 once cleared), events and audit rows, 404 across
// projects, and what intervention sync shows to the agents that poll it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { addChannel, auditActions, call, events } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });
const P = DEFAULT_PROJECT_ID;
await addChannel(r.pool, P);
const api = (method: string, path: string, body?: unknown, key = r.key) => call(r.url, method, path, key, body);

const HALT_KEYS = ['actor', 'agent_name', 'budget_id', 'cleared_at', 'created_at', 'id', 'policy_id', 'project_id', 'reason', 'scope', 'scope_value', 'set_at', 'state'];

test('create a project halt and an agent halt (CLI form), list, get, clear; 409 when already cleared', async () => {
  const project = await api('POST', '/v1/halts', { scope: 'project', reason: 'incident 42' });
  assert.equal(project.status, 201, project.text);
  assert.equal(typeof project.body.id, 'number');
  assert.equal(project.body.id, project.body.halt.id);
  const h = project.body.halt;
  assert.deepEqual(Object.keys(h).sort(), HALT_KEYS);
  assert.deepEqual([h.scope, h.scope_value, h.agent_name, h.state, h.reason, h.cleared_at, h.budget_id, h.policy_id], ['project', null, null, 'active', 'incident 42', null, null, null]);
  assert.equal(h.created_at, h.set_at);
  assert.equal(h.actor.type, 'api_key');
  assert.equal(h.actor.display, r.key.slice(0, 12));

  // The CLI sends agent_name; Strathon's form is scope_value.
  const cli = await api('POST', '/v1/halts', { scope: 'agent', agent_name: 'support-bot', reason: 'CLI halt' });
  assert.equal(cli.status, 201, cli.text);
  assert.deepEqual([cli.body.halt.scope, cli.body.halt.scope_value, cli.body.halt.agent_name], ['agent', 'support-bot', 'support-bot']);
  const strathon = await api('POST', '/v1/halts', { scope: 'agent', scope_value: 'billing-bot', reason: 'r' });
  assert.equal(strathon.body.halt.scope_value, 'billing-bot');

  const active = await api('GET', '/v1/halts');
  assert.deepEqual(active.body.halts.map((x: any) => x.id), [strathon.body.id, cli.body.id, project.body.id], 'newest first');
  assert.deepEqual((await api('GET', `/v1/halts/${cli.body.id}`)).body.halt, cli.body.halt);

  const cleared = await api('DELETE', `/v1/halts/${cli.body.id}`);
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal(cleared.body.halt.state, 'cleared');
  assert.ok(cleared.body.halt.cleared_at);
  const again = await api('DELETE', `/v1/halts/${cli.body.id}`);
  assert.equal(again.status, 409);
  assert.match(again.body.detail, /already cleared/);
  const resolved = await api('POST', `/v1/halts/${project.body.id}/resolve`, {});
  assert.equal(resolved.status, 200);
  assert.equal(resolved.body.halt.state, 'cleared');
  assert.equal((await api('POST', `/v1/halts/${project.body.id}/resolve`, {})).status, 409);

  assert.deepEqual((await api('GET', '/v1/halts')).body.halts.map((x: any) => x.id), [strathon.body.id], 'only active halts by default');
  const all = await api('GET', '/v1/halts?state=all');
  assert.deepEqual(all.body.halts.map((x: any) => x.state), ['active', 'cleared', 'cleared']);
  const page = await api('GET', '/v1/halts?state=all&limit=2');
  assert.equal(page.body.halts.length, 2);
  const rest = await api('GET', `/v1/halts?state=all&limit=2&cursor=${page.body.next_cursor}`);
  assert.deepEqual(rest.body.halts.map((x: any) => x.id), [project.body.id]);

  const created = await events(r.pool, P, 'halt.created');
  assert.deepEqual(created.map((e) => e.halt.id), [project.body.id, cli.body.id, strathon.body.id]);
  assert.deepEqual((await events(r.pool, P, 'halt.cleared')).map((e) => e.halt.id), [cli.body.id, project.body.id]);
  assert.deepEqual(await auditActions(r.pool, P, 'halt.'), ['halt.create', 'halt.create', 'halt.create', 'halt.clear', 'halt.clear']);
  await api('DELETE', `/v1/halts/${strathon.body.id}`);
});

test('halt requests are validated', async () => {
  const cases: [unknown, string][] = [
    [{}, 'body.scope'], [{ scope: 'galaxy' }, 'body.scope'], [{ scope: 'agent' }, 'body.scope_value'],
    [{ scope: 'project', scope_value: 'x' }, 'body.scope_value'], [{ scope: 'agent', agent_name: 5 }, 'body.agent_name'],
  ];
  for (const [body, loc] of cases) {
    const res = await api('POST', '/v1/halts', body);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(res.body.detail[0].loc.join('.'), loc, JSON.stringify(body));
  }
  for (const id of ['abc', '0', '99999999', '00000000-0000-0000-0000-000000000000']) assert.equal((await api('GET', `/v1/halts/${id}`)).status, 404, id);
});

test("another project's halt is a 404 and never appears in its list or sync", async () => {
  const h = (await api('POST', '/v1/halts', { scope: 'agent', scope_value: 'secret-agent', reason: 'x' })).body;
  const other = await makeKey(r.pool, ['*'], await makeProject(r.pool));
  assert.equal((await call(r.url, 'GET', `/v1/halts/${h.id}`, other)).status, 404);
  assert.equal((await call(r.url, 'DELETE', `/v1/halts/${h.id}`, other)).status, 404);
  assert.equal((await call(r.url, 'POST', `/v1/halts/${h.id}/resolve`, other, {})).status, 404);
  assert.ok(!(await call(r.url, 'GET', '/v1/halts?state=all', other)).text.includes('secret-agent'));
  assert.ok(!(await call(r.url, 'POST', '/v1/intervention/sync', other, {})).text.includes('secret-agent'));
  assert.equal((await api('GET', `/v1/halts/${h.id}`)).body.halt.state, 'active');
  await api('DELETE', `/v1/halts/${h.id}`);
});

test('intervention sync: active halts, budgets and approvals of the polling agents', async () => {
  const syncKey = await makeKey(r.pool, ['halts:read']);
  const mine = (await api('POST', '/v1/halts', { scope: 'agent', scope_value: 'agent-a', reason: 'stop a' })).body;
  const theirs = (await api('POST', '/v1/halts', { scope: 'agent', scope_value: 'agent-b', reason: 'stop b' })).body;
  const everyone = (await api('POST', '/v1/halts', { scope: 'project', reason: 'stop all' })).body;
  const budgetA = (await api('POST', '/v1/budgets', { name: 'a budget', scope: 'agent', scope_value: 'agent-a', max_spend_usd: '5' })).body;
  const budgetB = (await api('POST', '/v1/budgets', { name: 'b budget', scope: 'agent', scope_value: 'agent-b', max_spend_usd: '5' })).body;
  const projectBudget = (await api('POST', '/v1/budgets', { name: 'project budget', max_spend_usd: '50' })).body;
  const policyId = '11111111-2222-4333-8444-555555555555';
  const pending = (await api('POST', '/v1/approvals', { policy_id: policyId, tool_name: 'send_email', agent_name: 'agent-a' })).body.approval;
  const decided = (await api('POST', '/v1/approvals', { policy_id: policyId, tool_name: 'deploy', agent_name: 'agent-a' })).body.approval;
  await api('POST', `/v1/approvals/${decided.id}/approve`, {});
  const otherAgent = (await api('POST', '/v1/approvals', { policy_id: policyId, tool_name: 'x', agent_name: 'agent-b' })).body.approval;

  const res = await call(r.url, 'POST', '/v1/intervention/sync', syncKey, { agents: ['agent-a'] });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.body).sort(), ['approvals', 'budgets', 'halts', 'synced_at_unix_nano']);
  assert.deepEqual(res.body.halts.map((h: any) => h.id), [everyone.id, mine.id]);
  assert.deepEqual(res.body.halts[1], { id: mine.id, scope: 'agent', scope_value: 'agent-a', state: 'active', reason: 'stop a' });
  assert.deepEqual(res.body.budgets.map((b: any) => b.id).sort(), [budgetA.id, projectBudget.id].sort());
  assert.deepEqual(res.body.budgets.find((b: any) => b.id === budgetA.id), { id: budgetA.id, scope: 'agent', scope_value: 'agent-a', exhausted: false });
  const approvals = Object.fromEntries(res.body.approvals.map((a: any) => [a.id, a]));
  assert.deepEqual(approvals[pending.id], { id: pending.id, status: 'pending', tool_name: 'send_email', agent_name: 'agent-a' });
  assert.equal(approvals[decided.id]?.status, 'approved', 'a decision since the last poll');
  assert.equal(approvals[otherAgent.id], undefined);
  assert.ok(BigInt(res.body.synced_at_unix_nano) > BigInt(Date.now() - 60_000) * 1_000_000n);

  // Without agents: everything active; since_unix_nano after the decision hides it.
  const all = await call(r.url, 'POST', '/v1/intervention/sync', syncKey, {});
  assert.ok([mine.id, theirs.id, everyone.id].every((id) => all.body.halts.some((h: any) => h.id === id)));
  assert.ok(all.body.budgets.some((b: any) => b.id === budgetB.id));
  const later = await call(r.url, 'POST', '/v1/intervention/sync', syncKey, { agents: ['agent-a'], since_unix_nano: res.body.synced_at_unix_nano });
  assert.equal(later.body.approvals.find((a: any) => a.id === decided.id), undefined);
  assert.ok(later.body.approvals.some((a: any) => a.id === pending.id), 'pending approvals are always reported');
  assert.equal((await call(r.url, 'POST', '/v1/intervention/sync', syncKey, { agents: 'agent-a' })).status, 422);
  assert.equal((await call(r.url, 'POST', '/v1/intervention/sync', await makeKey(r.pool, ['traces:write']), {})).status, 403);

  // Cleared halts leave the sync at once.
  await api('DELETE', `/v1/halts/${everyone.id}`);
  const after = await call(r.url, 'POST', '/v1/intervention/sync', syncKey, { agents: ['agent-a'] });
  assert.deepEqual(after.body.halts.map((h: any) => h.id), [mine.id]);

  // Latency, measured (not asserted): the SDKs poll once a second.
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await call(r.url, 'POST', '/v1/intervention/sync', syncKey, { agents: ['agent-a'] });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`intervention sync over HTTP: p50 ${times[99]?.toFixed(2)} ms, p95 ${times[189]?.toFixed(2)} ms (200 calls)`);
  for (const h of [mine, theirs]) await api('DELETE', `/v1/halts/${h.id}`);
});
