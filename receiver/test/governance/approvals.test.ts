// Approvals (SPEC §7.3, §8.2): an SDK asks with its ingest key, polls by id; a person approves or
// denies (409 once decided); several approvers; expiry shown at once and recorded by the budget
// monitor's tick with its approval.decided event; 404 across projects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { makeUser } from '../access/fixtures.js';
import { addChannel, auditActions, call, events, waitFor } from './support.js';

// The monitor only ticks when the test says so.
const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { workers: { intervals: { budget_monitor_task: 3600 } } });
const P = DEFAULT_PROJECT_ID;
await addChannel(r.pool, P);
const sdk = await makeKey(r.pool, ['traces:write', 'policies:read']);
const operator = await makeUser(r.pool, P, 'operator');
const POLICY = 'a0a0a0a0-1111-4222-8333-444444444444';
const ask = (body: Record<string, unknown> = {}) => call(r.url, 'POST', '/v1/approvals', sdk, { policy_id: POLICY, tool_name: 'send_email', agent_name: 'mailer', ...body });

const APPROVAL_KEYS = [
  'agent_name', 'approval_decisions', 'approvers_required', 'current_approvals', 'expires_at', 'id', 'policy_id', 'policy_name', 'project_id', 'requested_at',
  'resolved_at', 'resolved_by', 'span_id', 'span_name', 'status', 'timeout_seconds', 'tool_args', 'tool_name', 'trace_id',
];

test('the SDK asks, polls by id; an operator approves; a second decision is a 409', async () => {
  const policy = await call(r.url, 'POST', '/v1/policies', r.key, { name: 'emails need approval', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'require_approval' });
  const asked = await call(r.url, 'POST', '/v1/approvals', sdk, {
    policy_id: policy.body.id, tool_name: 'send_email', agent_name: 'mailer', tool_args: { to: 'ceo@example.com' },
    trace_id: 'AB'.repeat(16), span_id: 'cd'.repeat(8), span_name: 'tool.send_email', timeout_seconds: 600,
  });
  assert.equal(asked.status, 201, asked.text);
  const a = asked.body.approval;
  assert.deepEqual(Object.keys(a).sort(), APPROVAL_KEYS);
  assert.deepEqual([a.status, a.policy_name, a.trace_id, a.timeout_seconds, a.approvers_required, a.current_approvals], ['pending', 'emails need approval', 'ab'.repeat(16), 600, 1, 0]);
  assert.deepEqual(a.tool_args, { to: 'ceo@example.com' });
  assert.equal(Date.parse(a.expires_at) - Date.parse(a.requested_at), 600_000);
  const requested = await events(r.pool, P, 'approval.requested');
  assert.equal(requested.at(-1).approval.id, a.id);

  assert.equal((await call(r.url, 'GET', `/v1/approvals/${a.id}`, sdk)).body.approval.status, 'pending', 'the SDK polls with its default key');
  const pending = await call(r.url, 'GET', '/v1/approvals', operator.token);
  assert.ok(pending.body.approvals.some((x: any) => x.id === a.id));

  const approved = await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, operator.token, { comment: 'ok' });
  assert.equal(approved.status, 200, approved.text);
  assert.equal(approved.body.approval.status, 'approved');
  assert.equal(approved.body.approval.resolved_by, operator.email);
  assert.equal(approved.body.approval.current_approvals, 1);
  assert.deepEqual(approved.body.approval.approval_decisions.map((d: any) => [d.decision, d.comment, d.actor.type]), [['approve', 'ok', 'user']]);
  const decided = await events(r.pool, P, 'approval.decided');
  assert.deepEqual([decided.at(-1).approval.id, decided.at(-1).decision], [a.id, 'approved']);
  assert.equal((await call(r.url, 'GET', `/v1/approvals/${a.id}`, sdk)).body.approval.status, 'approved');

  const twice = await call(r.url, 'POST', `/v1/approvals/${a.id}/deny`, operator.token, {});
  assert.equal(twice.status, 409);
  assert.match(twice.body.detail, /no longer pending \(status: approved\)/);
  assert.deepEqual((await call(r.url, 'GET', '/v1/approvals?status=approved', r.key)).body.approvals.map((x: any) => x.id), [a.id]);
  assert.deepEqual((await call(r.url, 'GET', '/v1/approvals?status_filter=approved', r.key)).body.approvals.map((x: any) => x.id), [a.id]);

  const denied = (await ask()).body.approval;
  const d = await call(r.url, 'POST', `/v1/approvals/${denied.id}/deny`, r.key, {});
  assert.equal(d.body.approval.status, 'denied');
  assert.deepEqual(await auditActions(r.pool, P, 'approval.'), ['approval.request', 'approval.approve', 'approval.request', 'approval.deny']);
});

test('scopes: asking needs traces:write, deciding approvals:write; a viewer cannot decide', async () => {
  const a = (await ask()).body.approval;
  assert.equal((await call(r.url, 'POST', '/v1/approvals', await makeKey(r.pool, ['policies:read']), { policy_id: POLICY })).status, 403);
  assert.equal((await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, sdk, {})).status, 403);
  const viewer = await makeUser(r.pool, P, 'viewer');
  assert.equal((await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, viewer.token, {})).status, 403);
  assert.equal((await call(r.url, 'GET', '/v1/approvals', viewer.token)).status, 200);
  for (const [body, loc] of [[{}, 'body.policy_id'], [{ policy_id: 'nope' }, 'body.policy_id'], [{ policy_id: POLICY, timeout_seconds: 0 }, 'body.timeout_seconds'], [{ policy_id: POLICY, trace_id: 'xyz' }, 'body.trace_id']] as const) {
    const res = await call(r.url, 'POST', '/v1/approvals', sdk, body);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(res.body.detail[0].loc.join('.'), loc);
  }
  assert.equal((await call(r.url, 'GET', '/v1/approvals?status=bogus', r.key)).status, 422);
  await call(r.url, 'POST', `/v1/approvals/${a.id}/deny`, r.key, {});
});

test('several approvers: pending until enough different callers approved; the same caller twice is a 409', async () => {
  const a = (await ask({ approvers_required: 2 })).body.approval;
  const first = await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, operator.token, {});
  assert.deepEqual([first.body.approval.status, first.body.approval.current_approvals], ['pending', 1]);
  assert.equal((await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, operator.token, {})).status, 409);
  const second = await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, r.key, {});
  assert.deepEqual([second.body.approval.status, second.body.approval.current_approvals], ['approved', 2]);
});

test('unanswered approvals expire: shown at once, recorded by the monitor tick with approval.decided, then 409', async () => {
  const soon = (await ask({ timeout_seconds: 1, tool_name: 'expiring' })).body.approval;
  const decideLate = (await ask({ timeout_seconds: 1, tool_name: 'decided-late' })).body.approval;
  await waitFor('deadline', async () => Date.now() > Date.parse(soon.expires_at) + 50);
  const shown = (await call(r.url, 'GET', `/v1/approvals/${soon.id}`, sdk)).body.approval;
  assert.equal(shown.status, 'expired');
  assert.equal(shown.resolved_at, shown.expires_at);
  assert.ok((await call(r.url, 'GET', '/v1/approvals?status=expired', r.key)).body.approvals.some((x: any) => x.id === soon.id));
  assert.ok(!(await call(r.url, 'GET', '/v1/approvals', r.key)).body.approvals.some((x: any) => x.id === soon.id), 'not pending any more');

  // A decision that arrives too late records the expiry itself and is refused.
  const late = await call(r.url, 'POST', `/v1/approvals/${decideLate.id}/approve`, operator.token, {});
  assert.equal(late.status, 409);
  assert.match(late.body.detail, /expired/);

  assert.equal(await r.workers.runOnce('budget_monitor_task'), 'succeeded');
  const rows = (await r.pool.query(`SELECT id, status, resolved_by FROM core.approvals WHERE id = ANY ($1::uuid[])`, [[soon.id, decideLate.id]])).rows;
  assert.deepEqual(rows.map((x: any) => x.status), ['expired', 'expired']);
  const expiredEvents = (await events(r.pool, P, 'approval.decided')).filter((e) => e.decision === 'expired').map((e) => e.approval.id).sort();
  assert.deepEqual(expiredEvents, [soon.id, decideLate.id].sort(), 'one event per expiry');
  assert.equal(await r.workers.runOnce('budget_monitor_task'), 'succeeded');
  assert.equal((await events(r.pool, P, 'approval.decided')).filter((e) => e.decision === 'expired').length, 2, 'a second tick records nothing again');
  assert.equal((await call(r.url, 'POST', `/v1/approvals/${soon.id}/deny`, operator.token, {})).status, 409);
});

test("another project's approval is a 404", async () => {
  const a = (await ask()).body.approval;
  const other = await makeKey(r.pool, ['*'], await makeProject(r.pool));
  assert.equal((await call(r.url, 'GET', `/v1/approvals/${a.id}`, other)).status, 404);
  assert.equal((await call(r.url, 'POST', `/v1/approvals/${a.id}/approve`, other, {})).status, 404);
  assert.ok(!(await call(r.url, 'GET', '/v1/approvals?status=all', other)).text.includes(a.id));
  assert.equal((await call(r.url, 'GET', `/v1/approvals/${a.id}`, sdk)).body.approval.status, 'pending');
});
