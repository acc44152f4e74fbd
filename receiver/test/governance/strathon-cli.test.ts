// The real Strathon CLI (cli/ of the public strathon/strathon repository) against a real receiver:
// every command of its policies, templates, halts, budgets, approvals and agents groups (SPEC §7,
// §15), each asserting its output:
//   policies list|create (--expr, --template, --from-english)|import (--dry-run, --json)|test|get|
//            delete|enable|disable|suggest|conflicts · templates list|apply · halts list|create|delete
//   budgets list|create|delete|forecast · approvals list|approve|deny · agents list
// (traces, spans and `agents list` risk: e2e/strathon-cli.test.ts.) Skips (with the reason) when the
// CLI source or its Python packages are absent. CLI source: $STRATHON_CLI_DIR, else exported from
// the bare mirror $STRATHON_MIRROR (default /work/.mirror/strathon+strathon/repo).
// Python: $STRATHON_CLI_PYTHON, else Debian's /usr/bin/python3 (python3-click/httpx/rich/yaml).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, startTestReceiver, type TestReceiver } from '../helpers.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { call, costSpan, postSpans, toolSpan } from './support.js';
import { locateStrathonCli, runStrathon } from '../e2e/strathon-cli.js';

const located = await locateStrathonCli();
const skip = 'reason' in located ? located.reason : undefined;
const cliDir = 'dir' in located ? located.dir : '';
const r: TestReceiver | undefined = skip ? undefined : await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });

interface Out { code: number; stdout: string; stderr: string }

async function strathon(...args: string[]): Promise<Out> {
  return runStrathon(cliDir, r?.url ?? '', r?.key ?? '', args);
}

function ok(res: Out, what: string): string {
  assert.equal(res.code, 0, `${what} exited ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
  assert.doesNotMatch(res.stderr, /Traceback|Error \d{3}/, `${what} stderr:\n${res.stderr}`);
  return res.stdout;
}
const json = (res: Out, what: string) => JSON.parse(ok(res, what));

test('policies and templates commands', { skip }, async () => {
  const created = ok(await strathon('policies', 'create', '--name', 'no-shell', '--expr', 'attrs["gen_ai.tool.name"] == "shell_exec"', '--action', 'block', '--priority', '10'), 'policies create');
  const id = /Created policy ([0-9a-f-]{36})/.exec(created)?.[1];
  assert.ok(id, created);
  assert.ok(json(await strathon('policies', 'list', '--json'), 'policies list --json').some((p: any) => p.id === id && p.priority === 10));
  assert.match(ok(await strathon('policies', 'list'), 'policies list'), /no-shell/);
  assert.match(ok(await strathon('policies', 'get', id), 'policies get'), /match_expression: attrs\["gen_ai.tool.name"\] == "shell_exec"/);
  ok(await strathon('policies', 'disable', id), 'policies disable');
  assert.equal(json(await strathon('policies', 'get', id, '--json'), 'policies get --json').enabled, false);
  ok(await strathon('policies', 'enable', id), 'policies enable');
  ok(await strathon('policies', 'create', '--template', 'block-prompt-injection', '--shadow'), 'policies create --template');
  ok(await strathon('policies', 'create', '--name', 'dup', '--expr', 'attrs["gen_ai.tool.name"] == "shell_exec"', '--action', 'block'), 'create duplicate');
  assert.match(ok(await strathon('policies', 'conflicts'), 'policies conflicts'), /duplicate/);
  const conflicts = json(await strathon('policies', 'conflicts', '--json'), 'policies conflicts --json');
  assert.ok(conflicts.conflicts.some((c: any) => c.type === 'duplicate' && [c.policy_a.name, c.policy_b.name].sort().join() === 'dup,no-shell'));
  ok(await strathon('policies', 'suggest'), 'policies suggest');
  // `policies test` reads the trace list under `traces` (Strathon answers `data` only, so there it never tests).
  await postSpans(r?.url ?? '', r?.key ?? '', 'svc', [toolSpan('shell-bot', 'shell_exec'), toolSpan('shell-bot', 'search')]);
  const tested = ok(await strathon('policies', 'test', '--name', 'no-shell'), 'policies test');
  assert.match(tested, /Policy: no-shell \(block\)\nTested against: 2 traces, 2 spans\nMatches: 1/);
  assert.match(tested, /tool\.shell_exec/);
  const testedJson = json(await strathon('policies', 'test', '--name', 'no-shell', '--json'), 'policies test --json');
  assert.deepEqual(testedJson.matches.map((m: any) => [m.span_name, m.tool_name, m.agent_name]), [['tool.shell_exec', 'shell_exec', 'shell-bot']]);
  const missing = await strathon('policies', 'test', '--name', 'no-such-policy');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Policy 'no-such-policy' not found/);
  assert.ok(json(await strathon('policies', 'suggest', '--json'), 'policies suggest --json').suggestions.some((x: any) => /shell_exec|search/.test(JSON.stringify(x))));

  const bad = await strathon('policies', 'create', '--name', 'bad', '--expr', 'attrs[', '--action', 'block');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Error 422/);
  const english = await strathon('policies', 'create', '--from-english', 'block emails');
  assert.equal(english.code, 1, 'no AI backend: the CLI reports the failure');
  assert.match(english.stderr, /policy generation is not configured/);

  const templates = json(await strathon('templates', 'list', '--json'), 'templates list --json');
  assert.ok(templates.length >= 10);
  assert.match(ok(await strathon('templates', 'list'), 'templates list'), /LLM01:2025/);
  assert.match(ok(await strathon('templates', 'apply', 'block-secret-leakage'), 'templates apply'), /Policy created: [0-9a-f-]{36} \(Block secret leakage\)/);
  ok(await strathon('policies', 'delete', id, '--yes'), 'policies delete');
  assert.equal((await call(r?.url ?? '', 'GET', `/v1/policies/${id}`, r?.key)).status, 404);
});

test('halts commands (CLI form of agent halts)', { skip }, async () => {
  assert.match(ok(await strathon('halts', 'list'), 'halts list (empty)'), /No active halts/);
  const agent = ok(await strathon('halts', 'create', '--scope', 'agent', '--agent', 'cli-bot', '--reason', 'runaway'), 'halts create agent');
  const id = /Halt created: (\d+)/.exec(agent)?.[1];
  assert.ok(id, agent);
  ok(await strathon('halts', 'create', '--scope', 'project'), 'halts create project');
  const listed = json(await strathon('halts', 'list', '--json'), 'halts list --json');
  assert.deepEqual(listed.map((h: any) => h.agent_name), [null, 'cli-bot']);
  assert.match(ok(await strathon('halts', 'list'), 'halts list'), /cli-bot/);
  ok(await strathon('halts', 'delete', id, '--yes'), 'halts delete');
  const again = await strathon('halts', 'delete', id, '--yes');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Error 409/);
  for (const h of listed) if (String(h.id) !== id) ok(await strathon('halts', 'delete', String(h.id), '--yes'), 'halts delete project');
});

test('budgets commands (CLI form) and the forecast', { skip }, async () => {
  const created = ok(await strathon('budgets', 'create', '--name', 'cli-cost', '--type', 'cost', '--limit', '2.5', '--window', 'rolling'), 'budgets create cost');
  const id = /Budget created: ([0-9a-f-]{36})/.exec(created)?.[1];
  assert.ok(id, created);
  ok(await strathon('budgets', 'create', '--name', 'cli-loops', '--type', 'iteration', '--limit', '4'), 'budgets create iteration');
  const list = json(await strathon('budgets', 'list', '--json'), 'budgets list --json');
  assert.deepEqual(list.map((b: any) => [b.name, b.limit_usd ?? b.limit_count]), [['cli-cost', '2.5'], ['cli-loops', 4]]);
  assert.match(ok(await strathon('budgets', 'list'), 'budgets list'), /cli-cost/);
  await postSpans(r?.url ?? '', r?.key ?? '', 'svc', [costSpan('spender', 2.4)]);
  const forecast = ok(await strathon('budgets', 'forecast'), 'budgets forecast');
  assert.match(forecast, /Budget Alerts:[\s\S]*cli-cost: exhausted by \d{4}-/);
  assert.equal(json(await strathon('budgets', 'forecast', '--json'), 'forecast --json').budget_forecasts.length, 1);
  ok(await strathon('budgets', 'delete', id, '--yes'), 'budgets delete');
  assert.equal((await call(r?.url ?? '', 'GET', `/v1/budgets/${id}`, r?.key)).status, 404);
});

test('approvals commands', { skip }, async () => {
  const ask = async (tool: string) => (await call(r?.url ?? '', 'POST', '/v1/approvals', r?.key, { policy_id: '0f0f0f0f-1111-4222-8333-444444444444', tool_name: tool, agent_name: 'cli-agent' })).body.approval.id as string;
  const a = await ask('deploy');
  const b = await ask('send_email');
  assert.deepEqual(json(await strathon('approvals', 'list', '--json'), 'approvals list --json').map((x: any) => x.id).sort(), [a, b].sort());
  ok(await strathon('approvals', 'list'), 'approvals list');
  assert.match(ok(await strathon('approvals', 'approve', a), 'approvals approve'), /Approved/);
  assert.match(ok(await strathon('approvals', 'deny', b), 'approvals deny'), /Denied/);
  assert.deepEqual(json(await strathon('approvals', 'list', '--status', 'approved', '--json'), 'approvals list approved').map((x: any) => x.id), [a]);
  const twice = await strathon('approvals', 'approve', a);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /Error 409/);
  assert.equal((await call(r?.url ?? '', 'GET', `/v1/approvals/${a}`, r?.key)).body.approval.project_id, DEFAULT_PROJECT_ID);
});

test('policies import from YAML and JSON files, with --dry-run and --json', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-import-'));
  try {
    const yamlFile = path.join(dir, 'policies.yaml');
    writeFileSync(yamlFile, [
      'policies:',
      '  - name: import-block-email',
      `    match_expression: 'attrs["gen_ai.tool.name"] == "send_email"'`,
      '    action: block',
      '  - name: import-log-shell',
      `    match_expression: 'attrs["gen_ai.tool.name"] == "run_shell"'`,
      '    action: log',
      '    shadow: true',
      '    priority: 7',
      '  - name: import-no-expression',
      '',
    ].join('\n'));
    const dry = await strathon('policies', 'import', yamlFile, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /validated 2 policies from/);
    assert.match(dry.stderr, /Skipping 'import-no-expression': no match_expression/);
    const names = async () => (await call(r?.url ?? '', 'GET', '/v1/policies', r?.key)).body.policies.map((p: any) => p.name);
    assert.ok(!(await names()).some((n: string) => n.startsWith('import-')), 'a dry run creates nothing');

    const imported = await strathon('policies', 'import', yamlFile);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /imported 2 policies from/);
    const byName = new Map<string, any>((await call(r?.url ?? '', 'GET', '/v1/policies', r?.key)).body.policies.map((p: any) => [p.name, p]));
    assert.deepEqual(['import-block-email', 'import-log-shell'].map((n) => [byName.get(n)?.action, byName.get(n)?.shadow, byName.get(n)?.priority]), [['block', false, 0], ['log', true, 7]]);

    const jsonFile = path.join(dir, 'policies.json');
    writeFileSync(jsonFile, JSON.stringify({ policies: [{ name: 'import-json', match_expression: 'span.input_tokens > 1000', action: 'alert' }] }));
    const created = json(await strathon('policies', 'import', jsonFile, '--json'), 'policies import --json');
    assert.deepEqual(created.map((p: any) => [p.name, p.action, p.enabled]), [['import-json', 'alert', true]]);

    const badFile = path.join(dir, 'bad.json');
    writeFileSync(badFile, JSON.stringify({ policies: [{ name: 'import-bad', match_expression: 'attrs[', action: 'block' }] }));
    const bad = await strathon('policies', 'import', badFile);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Error 422/);
    const empty = path.join(dir, 'empty.yaml');
    writeFileSync(empty, 'policies: []\n');
    const none = await strathon('policies', 'import', empty);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /No policies found in file/);
    for (const n of ['import-block-email', 'import-log-shell', 'import-json']) {
      const p = (await call(r?.url ?? '', 'GET', '/v1/policies', r?.key)).body.policies.find((x: any) => x.name === n);
      ok(await strathon('policies', 'delete', p.id, '--yes'), `policies delete ${n}`);
    }
    assert.ok(!(await names()).includes('import-bad'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('agents list shows the governance covering each agent', { skip }, async () => {
  await postSpans(r?.url ?? '', r?.key ?? '', 'svc', [toolSpan('governed-bot', 'send_email'), toolSpan('loose-bot', 'search')]);
  const policy = (await call(r?.url ?? '', 'POST', '/v1/policies', r?.key, {
    name: 'governed approvals', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'require_approval', applies_to: ['governed-bot'],
  })).body;
  const budget = (await call(r?.url ?? '', 'POST', '/v1/budgets', r?.key, { name: 'governed cap', scope: 'agent', scope_value: 'governed-bot', max_spend_usd: '5' })).body.budget;
  const halt = (await call(r?.url ?? '', 'POST', '/v1/halts', r?.key, { scope: 'agent', agent_name: 'governed-bot', reason: 'cli test' })).body.halt;
  try {
    const agents = new Map<string, any>(json(await strathon('agents', 'list', '--json'), 'agents list --json').map((a: any) => [a.agent_name, a]));
    const governed = agents.get('governed-bot');
    const loose = agents.get('loose-bot');
    const baseline = loose.policies_covering;
    assert.deepEqual([governed.policies_covering, governed.has_approval_policy, governed.has_budget, governed.is_halted], [baseline + 1, true, true, true]);
    // (loose-bot may have a budget: earlier tests leave project budgets in this project.)
    assert.deepEqual([loose.has_approval_policy, loose.is_halted], [false, false]);
    const table = ok(await strathon('agents', 'list'), 'agents list');
    const row = table.split('\n').find((l) => l.includes('governed-bot')) ?? '';
    assert.match(row, new RegExp(`│\\s*${baseline + 1}\\s*│`), `the Policies column counts the covering policies:\n${table}`);
  } finally {
    await call(r?.url ?? '', 'DELETE', `/v1/halts/${halt.id}`, r?.key);
    await call(r?.url ?? '', 'DELETE', `/v1/budgets/${budget.id}`, r?.key);
    await call(r?.url ?? '', 'DELETE', `/v1/policies/${policy.id}`, r?.key);
  }
});
