// Policies end to end (SPEC §7.3, §8.1): CRUD with Strathon's shapes and 422s with the compiler's
// message; evaluation of ingested spans after commit (match counts, evaluation records, shadow
// policies that never act, halt and alert policies, failing and stalling expressions recorded while
// the spans are stored); simulate, templates, suggest, conflicts, generate; 404 across projects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { addChannel, auditActions, av, call, events, postSpans, span, spanId, toolSpan, waitFor } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });
const P = DEFAULT_PROJECT_ID;
await addChannel(r.pool, P);
const api = (method: string, path: string, body?: unknown, key = r.key) => call(r.url, method, path, key, body);

async function createPolicy(body: Record<string, unknown>) {
  const res = await api('POST', '/v1/policies', body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

const policyRow = async (id: string) => (await r.pool.query('SELECT match_count::int, error_count::int, last_error, last_matched_at FROM core.policies WHERE id = $1', [id])).rows[0];
const evaluationRows = async (policyId: string) =>
  (await r.pool.query('SELECT outcome, shadow, acted, encode(span_id, \'hex\') AS span_id, agent_name, error FROM core.policy_evaluations WHERE policy_id = $1 ORDER BY id', [policyId])).rows;
const storedSpans = async (name: string) => Number((await r.pool.query('SELECT count(*) FROM telemetry.spans WHERE name = $1', [name])).rows[0].count);

test('CRUD with the bare policy shape; list envelope; PATCH any subset; DELETE 204', async () => {
  const p = await createPolicy({ name: 'no email', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'block', priority: 5 });
  for (const k of ['id', 'project_id', 'name', 'description', 'match_expression', 'action', 'action_config', 'applies_to', 'enabled', 'priority', 'shadow', 'match_count', 'last_matched_at', 'created_at', 'updated_at']) {
    assert.ok(k in p, `policy has ${k}`);
  }
  assert.equal(p.project_id, P);
  assert.deepEqual([p.enabled, p.shadow, p.priority, p.match_count, p.last_matched_at, p.applies_to], [true, false, 5, 0, null, []]);

  const list = await api('GET', '/v1/policies');
  assert.equal(list.status, 200);
  assert.equal(list.body.intervention_default_action, 'allow');
  assert.ok(list.body.policies.some((x: any) => x.id === p.id));

  const got = await api('GET', `/v1/policies/${p.id}`);
  assert.equal(got.body.match_expression, p.match_expression);

  const patched = await api('PATCH', `/v1/policies/${p.id}`, { enabled: false, shadow: true });
  assert.equal(patched.status, 200, patched.text);
  assert.deepEqual([patched.body.enabled, patched.body.shadow, patched.body.name, patched.body.action], [false, true, 'no email', 'block']);
  const throttled = await api('PATCH', `/v1/policies/${p.id}`, { action: 'throttle' });
  assert.deepEqual(throttled.body.action_config, { max_calls: 10, window_seconds: 60 }, 'the CLI creates throttles without a config');

  assert.equal((await api('DELETE', `/v1/policies/${p.id}`)).status, 204);
  assert.equal((await api('GET', `/v1/policies/${p.id}`)).status, 404);
  assert.equal((await api('DELETE', `/v1/policies/${p.id}`)).status, 404);
  assert.deepEqual((await auditActions(r.pool, P, 'policy.')).slice(-4), ['policy.create', 'policy.update', 'policy.update', 'policy.delete']);
});

test("a match expression that does not compile is a 422 with the compiler's message at body.match_expression", async () => {
  const bad = await api('POST', '/v1/policies', { name: 'broken', match_expression: 'attrs["gen_ai.tool.name"] == ', action: 'block' });
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.detail[0].loc, ['body', 'match_expression']);
  assert.match(bad.body.detail[0].msg, /^invalid CEL expression: Unexpected token/);
  const unknown = await api('POST', '/v1/policies', { name: 'broken', match_expression: 'tool == "x"', action: 'block' });
  assert.match(unknown.body.detail[0].msg, /Unknown variable: tool/);
  const p = await createPolicy({ name: 'ok', match_expression: 'attrs["a"] == "b"', action: 'log' });
  const patch = await api('PATCH', `/v1/policies/${p.id}`, { match_expression: 'attrs[' });
  assert.equal(patch.status, 422);
  assert.deepEqual(patch.body.detail[0].loc, ['body', 'match_expression']);
  assert.equal((await api('POST', '/v1/policies', { name: 'x', match_expression: 'true', action: 'explode' })).body.detail[0].loc.join('.'), 'body.action');
  assert.equal((await api('POST', '/v1/policies', { match_expression: 'true', action: 'log' })).body.detail[0].loc.join('.'), 'body.name');
  await api('DELETE', `/v1/policies/${p.id}`);
});

test('ingested spans are evaluated after commit: match counts, evaluation records, policy.matched for alert', async () => {
  const alert = await createPolicy({ name: 'email alert', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'alert' });
  const scoped = await createPolicy({ name: 'only beta', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'log', applies_to: ['beta'] });
  const spans = [toolSpan('alpha', 'send_email'), toolSpan('alpha', 'search'), toolSpan('beta', 'send_email')].map((x) => ({ ...x, spanId: spanId() }));
  await postSpans(r.url, r.key, 'svc', spans);
  await waitFor('alert matches', async () => (await policyRow(alert.id)).match_count === 2);
  await waitFor('scoped match', async () => (await policyRow(scoped.id)).match_count === 1);
  const rows = await evaluationRows(alert.id);
  assert.deepEqual(rows.map((x: any) => [x.outcome, x.shadow, x.acted]), [['matched', false, true], ['matched', false, true]]);
  assert.deepEqual((await evaluationRows(scoped.id)).map((x: any) => x.agent_name), ['beta'], 'applies_to limits the agents');
  assert.ok((await policyRow(alert.id)).last_matched_at);

  const ev = await waitFor('policy.matched event', async () => (await events(r.pool, P, 'policy.matched')).find((e) => e.policy?.id === alert.id));
  assert.equal(ev.matches, 2);
  assert.equal(ev.spans.length, 2);

  // A client retry of the same spans is stored once and counted once.
  await postSpans(r.url, r.key, 'svc', spans);
  const marker = await createPolicy({ name: 'marker', match_expression: 'attrs["marker"] == true', action: 'log' });
  await postSpans(r.url, r.key, 'svc', [span('alpha', { marker: av.b(true) })]);
  await waitFor('marker evaluated', async () => (await policyRow(marker.id)).match_count === 1);
  assert.equal((await policyRow(alert.id)).match_count, 2, 're-sent spans are not counted twice');

  const mine = (await api('GET', `/v1/policies/evaluations?policy_id=${alert.id}&limit=1`)).body;
  assert.equal(mine.evaluations.length, 1);
  assert.equal(mine.evaluations[0].policy_name, 'email alert');
  assert.equal(mine.evaluations[0].outcome, 'matched');
  assert.ok(mine.next_cursor);
  const next = (await api('GET', `/v1/policies/evaluations?policy_id=${alert.id}&limit=1&cursor=${mine.next_cursor}`)).body;
  assert.equal(next.evaluations.length, 1);
  assert.notEqual(next.evaluations[0].id, mine.evaluations[0].id);
  assert.equal(next.next_cursor, null);
  for (const p of [alert, scoped, marker]) await api('DELETE', `/v1/policies/${p.id}`);
});

test('a shadow policy records what it would have done and never acts; a halt policy halts the agent', async () => {
  const shadow = await createPolicy({ name: 'shadow halt', match_expression: 'attrs["gen_ai.tool.name"] == "rm_rf"', action: 'halt', shadow: true });
  await postSpans(r.url, r.key, 'svc', [toolSpan('shadowed-agent', 'rm_rf')]);
  await waitFor('shadow match', async () => (await policyRow(shadow.id)).match_count === 1);
  const [rec] = await evaluationRows(shadow.id);
  assert.deepEqual([rec.outcome, rec.shadow, rec.acted], ['matched', true, false]);
  const ev = (await api('GET', `/v1/policies/evaluations?policy_id=${shadow.id}&shadow=true`)).body.evaluations[0];
  assert.equal(ev.would_have_acted, 'halt');
  assert.equal((await r.pool.query(`SELECT count(*)::int AS n FROM core.halts WHERE scope_value = 'shadowed-agent'`)).rows[0].n, 0, 'shadow never halts');

  const halting = await createPolicy({ name: 'halt on drop', match_expression: 'attrs["gen_ai.tool.name"] == "drop_table"', action: 'halt' });
  await postSpans(r.url, r.key, 'svc', [toolSpan('dba-bot', 'drop_table'), toolSpan('dba-bot', 'drop_table'), toolSpan('other-bot', 'search')]);
  await waitFor('halt policy match', async () => (await policyRow(halting.id)).match_count === 2);
  const halts = (await api('GET', '/v1/halts')).body.halts.filter((h: any) => h.policy_id === halting.id);
  assert.equal(halts.length, 1, 'one halt per agent, however many spans match');
  assert.deepEqual([halts[0].scope, halts[0].scope_value, halts[0].agent_name, halts[0].state], ['agent', 'dba-bot', 'dba-bot', 'active']);
  assert.deepEqual(halts[0].actor, { type: 'policy', id: halting.id, display: 'halt on drop' });
  assert.ok((await events(r.pool, P, 'halt.created')).some((e) => e.halt?.id === halts[0].id));
  const sync = await api('POST', '/v1/intervention/sync', { agents: ['dba-bot'] });
  assert.ok(sync.body.halts.some((h: any) => h.id === halts[0].id));
  // The halted agent's spans are still stored.
  await postSpans(r.url, r.key, 'svc', [toolSpan('dba-bot', 'drop_table', {}), { ...toolSpan('dba-bot', 'after-halt'), name: 'after-halt' }]);
  assert.equal(await storedSpans('after-halt'), 1);
  await waitFor('second match round', async () => (await policyRow(halting.id)).match_count === 3);
  assert.equal((await api('GET', '/v1/halts')).body.halts.filter((h: any) => h.policy_id === halting.id).length, 1);
  for (const p of [shadow, halting]) await api('DELETE', `/v1/policies/${p.id}`);
});

test('a throwing and a stalling expression are recorded as errors; the spans are stored and other policies still match', async () => {
  const throwing = await createPolicy({ name: 'throws', match_expression: 'int(attrs["gen_ai.tool.name"]) > 0', action: 'alert' });
  // Catastrophic backtracking: minutes of regex work on this input, unless stopped.
  const slow = await createPolicy({ name: 'slow', match_expression: 'attrs["payload"].matches("^(a+)+$")', action: 'alert' });
  const healthy = await createPolicy({ name: 'healthy', match_expression: 'attrs["payload"].startsWith("aaa")', action: 'log' });
  const payload = `${'a'.repeat(40)}!`;
  const t0 = Date.now();
  await postSpans(r.url, r.key, 'svc', [{ ...toolSpan('victim', 'lookup', { payload: av.s(payload) }), name: 'evil-span' }]);
  assert.ok(Date.now() - t0 < 5000, 'the 200 does not wait for evaluation');
  assert.equal(await storedSpans('evil-span'), 1);

  const t = await waitFor('throwing expression recorded', async () => { const x = await policyRow(throwing.id); return x.error_count >= 1 ? x : undefined; });
  assert.match(t.last_error, /int\(\) type error/);
  const s = await waitFor('stalling expression recorded', async () => { const x = await policyRow(slow.id); return x.error_count >= 1 ? x : undefined; }, 30_000);
  assert.match(s.last_error, /time limit/);
  await waitFor('healthy policy still matched', async () => (await policyRow(healthy.id)).match_count === 1);
  const errs = await evaluationRows(slow.id);
  assert.deepEqual(errs.map((x: any) => x.outcome), ['error']);
  assert.deepEqual((await api('GET', `/v1/policies/evaluations?outcome=error&policy_id=${throwing.id}`)).body.evaluations.map((e: any) => e.error.slice(0, 15)), ['int() type erro']);

  // The receiver keeps evaluating (a new thread replaced the stalled one).
  await postSpans(r.url, r.key, 'svc', [toolSpan('victim', 'lookup', { payload: av.s('aaab') })]);
  await waitFor('evaluation continues', async () => (await policyRow(healthy.id)).match_count === 2);
  for (const p of [throwing, slow, healthy]) await api('DELETE', `/v1/policies/${p.id}`);
});

test('simulate over stored spans; templates list and apply; suggest; conflicts; generate is not configured', async () => {
  await postSpans(r.url, r.key, 'svc', [toolSpan('sim-agent', 'wire_money'), toolSpan('sim-agent', 'wire_money'), toolSpan('sim-agent', 'shell_exec')]);
  const sim = await api('POST', '/v1/policies/simulate', { match_expression: 'attrs["gen_ai.tool.name"] == "wire_money"', hours: 24 });
  assert.equal(sim.status, 200, sim.text);
  assert.equal(sim.body.matches.length, 2);
  assert.deepEqual(Object.keys(sim.body.matches[0]).sort(), ['agent_name', 'span_id', 'span_name', 'timestamp', 'tool_name', 'trace_id']);
  assert.equal(sim.body.matches[0].tool_name, 'wire_money');
  assert.ok(sim.body.spans_tested >= 3 && sim.body.traces_tested >= 3);
  const simBad = await api('POST', '/v1/policies/simulate', { match_expression: 'attrs[' });
  assert.equal(simBad.status, 422);
  assert.deepEqual(simBad.body.detail[0].loc, ['body', 'match_expression']);

  const templates = await api('GET', '/v1/policy-templates');
  assert.ok(templates.body.data.length >= 10);
  const tpl = templates.body.data.find((x: any) => x.id === 'destructive-tools-need-approval');
  assert.deepEqual(Object.keys(tpl).sort(), ['action', 'action_config', 'applies_to', 'description', 'id', 'match_expression', 'name', 'owasp_risks', 'slug', 'tags']);
  const applied = await api('POST', '/v1/policy-templates/destructive-tools-need-approval/apply', {});
  assert.equal(applied.status, 201, applied.text);
  assert.equal(applied.body.template_id, 'destructive-tools-need-approval');
  assert.equal(applied.body.policy.action, 'require_approval');
  const overridden = await api('POST', '/v1/policy-templates/block-prompt-injection/apply', { shadow: true, name: 'pi (shadow)' });
  assert.deepEqual([overridden.body.policy.shadow, overridden.body.policy.name], [true, 'pi (shadow)']);
  assert.equal((await api('POST', '/v1/policy-templates/no-such-template/apply', {})).status, 404);

  const suggest = await api('GET', '/v1/policies/suggest');
  assert.equal(suggest.status, 200);
  assert.equal(suggest.body.count, suggest.body.suggestions.length);
  const exec = suggest.body.suggestions.find((x: any) => x.reason.includes('shell_exec'));
  assert.ok(exec, JSON.stringify(suggest.body));
  assert.equal(exec.policy.action, 'block');
  assert.ok(suggest.body.suggestions.some((x: any) => x.reason.includes('wire_money')), 'a destructive tool without a policy');
  assert.ok(suggest.body.agents_analyzed >= 1);
  for (const s of suggest.body.suggestions) {
    assert.equal((await api('POST', '/v1/policies/simulate', { match_expression: s.policy.match_expression, hours: 1 })).status, 200, s.policy.match_expression);
  }

  const dup = await createPolicy({ name: 'dup', match_expression: 'attrs["gen_ai.tool.name"] in ["delete_file", "drop_table", "send_email", "deploy", "shutdown", "transfer_funds", "refund_payment", "rm", "delete_record"]', action: 'require_approval' });
  const conflicts = await api('GET', '/v1/policies/conflicts');
  assert.equal(conflicts.status, 200);
  assert.ok(conflicts.body.conflicts.some((c: any) => c.type === 'duplicate' && [c.policy_a.id, c.policy_b.id].includes(dup.id)), JSON.stringify(conflicts.body));
  assert.ok(conflicts.body.policies_analyzed >= 2);

  const gen = await api('POST', '/v1/policies/generate', { description: 'block emails' });
  assert.equal(gen.status, 400);
  assert.deepEqual(gen.body, { detail: 'policy generation is not configured' });
  for (const id of [applied.body.policy.id, overridden.body.policy.id, dup.id]) await api('DELETE', `/v1/policies/${id}`);
});

test("another project's policy is a 404; its lists never show this project's policies", async () => {
  const p = await createPolicy({ name: 'mine', match_expression: 'true', action: 'log' });
  const other = await makeKey(r.pool, ['*'], await makeProject(r.pool));
  for (const [m, path, body] of [['GET', `/v1/policies/${p.id}`], ['PATCH', `/v1/policies/${p.id}`, { enabled: false }], ['DELETE', `/v1/policies/${p.id}`]] as const) {
    assert.equal((await call(r.url, m, path, other, body)).status, 404, `${m} ${path}`);
  }
  const theirs = await call(r.url, 'GET', '/v1/policies', other);
  assert.ok(!theirs.text.includes(p.id));
  assert.equal((await api('GET', `/v1/policies/${p.id}`)).body.enabled, true, 'unchanged');
  const readOnly = await makeKey(r.pool, ['policies:read']);
  assert.equal((await call(r.url, 'POST', '/v1/policies', readOnly, { name: 'x', match_expression: 'true', action: 'log' })).status, 403);
  await api('DELETE', `/v1/policies/${p.id}`);
});
