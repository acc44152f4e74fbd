// The governance fields of GET /v1/agents (SPEC §7.3) come from the project's real policies,
// budgets and halts; intervention_state of spans and traces follows Strathon: the SDK's
// `strathon.agent.intervention.state`, or "halted" where a halt policy of the receiver acted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { av, freshProject, postSpans, span, toolSpan, traceId, waitFor } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { workers: { intervals: { budget_monitor_task: 3600 } } });

const project = () => freshProject(r);

test('agents: policies covering, approval policy, budget and halt per agent, from the real tables', async () => {
  const { key, api } = await project();
  await postSpans(r.url, key, 'svc', [
    toolSpan('mailer', 'send_email'), toolSpan('mailer', 'search'),
    toolSpan('spender', 'search'), toolSpan('stopped', 'search'), toolSpan('bare', 'search'),
  ]);
  const agents = async () => Object.fromEntries((await api('GET', '/v1/agents')).agents.map((a: any) => [a.agent_name, a]));
  const governance = (a: any) => [a.policies_covering, a.has_approval_policy, a.has_budget, a.is_halted];

  let by = await agents();
  for (const name of ['mailer', 'spender', 'stopped', 'bare']) assert.deepEqual(governance(by[name]), [0, false, false, false], name);
  assert.ok(by.mailer.risk_factors.some((f: string) => f.includes('send_email') && f.includes('no block/throttle/halt/approval policy')));

  // Covering: applies_to is empty (every agent) or names the agent, or the expression names it as
  // a literal. Not covering: a disabled policy, a shadow policy, another agent's policy, a name
  // that is only a substring of a literal.
  await api('POST', '/v1/policies', { name: 'mail needs approval', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'require_approval', applies_to: ['mailer'] });
  await api('POST', '/v1/policies', { name: 'stop the stopped', match_expression: 'attrs["gen_ai.agent.name"] == \'stopped\' && attrs["gen_ai.tool.name"] == "rm"', action: 'block', applies_to: ['ops'] });
  await api('POST', '/v1/policies', { name: 'off', match_expression: 'true', action: 'log', enabled: false });
  await api('POST', '/v1/policies', { name: 'watching', match_expression: 'true', action: 'block', shadow: true });
  await api('POST', '/v1/policies', { name: 'substring only', match_expression: 'attrs["gen_ai.agent.name"] == "barely"', action: 'log', applies_to: ['ops'] });
  await api('POST', '/v1/budgets', { name: 'spender cap', scope: 'agent', scope_value: 'spender', max_spend_usd: '10' });
  await api('POST', '/v1/budgets', { name: 'another agent', scope: 'agent', scope_value: 'nobody', max_spend_usd: '10' });
  await api('POST', '/v1/budgets', { name: 'model cap', scope: 'model', scope_value: 'gpt-4o', max_spend_usd: '10' });
  const halt = (await api('POST', '/v1/halts', { scope: 'agent', agent_name: 'stopped', reason: 'test' })).halt;

  by = await agents();
  assert.deepEqual(governance(by.mailer), [1, true, false, false]);
  assert.deepEqual(governance(by.stopped), [1, false, false, true]);
  assert.deepEqual(governance(by.spender), [0, false, true, false]);
  assert.deepEqual(governance(by.bare), [0, false, false, false]);
  assert.ok(by.mailer.risk_factors.some((f: string) => f.includes('send_email') && f.includes('under a blocking policy')), by.mailer.risk_factors.join(' | '));
  assert.ok(by.stopped.risk_factors.includes('Agent is halted'));
  assert.ok(!by.spender.risk_factors.includes('No cost budget configured'));
  assert.ok(by.bare.risk_factors.includes('No cost budget configured'));

  // Project-wide: a policy for every agent, a project budget, a project halt; a cleared halt no longer counts.
  await api('POST', '/v1/policies', { name: 'everyone', match_expression: 'attrs["gen_ai.tool.name"] == "shell_exec"', action: 'alert' });
  await api('POST', '/v1/budgets', { name: 'project cap', max_spend_usd: '100' });
  await api('POST', `/v1/halts/${halt.id}/resolve`, {});
  const projectHalt = (await api('POST', '/v1/halts', { scope: 'project', reason: 'freeze' })).halt;
  by = await agents();
  assert.deepEqual(governance(by.mailer), [2, true, true, true]);
  assert.deepEqual(governance(by.stopped), [2, false, true, true]);
  assert.deepEqual(governance(by.bare), [1, false, true, true]);
  await api('DELETE', `/v1/halts/${projectHalt.id}`);
  by = await agents();
  assert.deepEqual(Object.values(by).map((a: any) => a.is_halted), [false, false, false, false]);
});

test('intervention_state: the SDK state on the span, "halted" where a halt policy acted; a trace is halted when one of its spans was', async () => {
  const { key, api } = await project();
  const blocked = traceId();
  const granted = traceId();
  const plain = traceId();
  const policyHalted = traceId();
  const state = (s: string) => ({ 'strathon.agent.intervention.state': av.s(s) });
  const halting = await api('POST', '/v1/policies', { name: 'halt on drop', match_expression: 'attrs["gen_ai.tool.name"] == "drop_table"', action: 'halt' });
  await postSpans(r.url, key, 'svc', [
    { ...span('sdk-bot', state('blocked')), traceId: blocked, name: 'blocked-call' },
    { ...span('sdk-bot'), traceId: blocked, name: 'fine-call' },
    { ...span('sdk-bot', state('approval_granted')), traceId: granted, name: 'granted-call' },
    { ...span('sdk-bot'), traceId: plain, name: 'plain-call' },
    { ...toolSpan('dba-bot', 'drop_table'), traceId: policyHalted },
  ]);
  await waitFor('the halt policy acted', async () =>
    (await r.pool.query('SELECT 1 FROM core.policy_evaluations WHERE policy_id = $1 AND acted', [halting.id])).rowCount === 1);

  const traces = Object.fromEntries((await api('GET', '/v1/traces')).data.map((t: any) => [t.trace_id, t.intervention_state]));
  assert.deepEqual(traces, { [blocked]: 'halted', [granted]: null, [plain]: null, [policyHalted]: 'halted' });

  const spans = Object.fromEntries((await api('GET', '/v1/spans')).data.map((s: any) => [s.name, s.intervention_state]));
  assert.deepEqual(spans, { 'blocked-call': 'blocked', 'fine-call': null, 'granted-call': 'approval_granted', 'plain-call': null, 'tool.drop_table': 'halted' });

  const detail = await api('GET', `/v1/traces/${blocked}`);
  assert.equal(detail.trace.intervention_state, 'halted');
  assert.deepEqual(detail.spans.map((s: any) => [s.name, s.intervention_state]).sort(), [['blocked-call', 'blocked'], ['fine-call', null]]);
  const tree = await api('GET', `/v1/traces/${policyHalted}/tree`);
  assert.deepEqual([tree.trace.intervention_state, tree.root.intervention_state], ['halted', 'halted']);
  assert.equal((await api('GET', `/v1/traces/${plain}/tree`)).root.intervention_state, null);
});
