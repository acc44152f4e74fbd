// The real Strathon CLI (cli/ of the public strathon/strathon repository) against a real receiver:
// the policies, templates, halts, budgets and approvals commands (SPEC §7, §15). Skips (with the
// reason) when the CLI source or its Python packages are absent. CLI source: $STRATHON_CLI_DIR, else
// exported from the bare mirror $STRATHON_MIRROR (default /work/.mirror/strathon+strathon/repo).
// Python: $STRATHON_CLI_PYTHON, else Debian's /usr/bin/python3 (python3-click/httpx/rich/yaml).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROJECT_ID, startTestReceiver, type TestReceiver } from '../helpers.js';
import { call, costSpan, postSpans } from './support.js';
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
  ok(await strathon('policies', 'suggest'), 'policies suggest');
  ok(await strathon('policies', 'test', '--name', 'no-shell'), 'policies test');

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
