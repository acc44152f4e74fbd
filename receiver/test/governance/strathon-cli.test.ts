// The real Strathon CLI (cli/ of the public strathon/strathon repository) against a real receiver:
// the policies, templates, halts, budgets and approvals commands (SPEC §7, §15). Skips (with the
// reason) when the CLI source or its Python packages are absent. CLI source: $STRATHON_CLI_DIR, else
// exported from the bare mirror $STRATHON_MIRROR (default /work/.mirror/strathon+strathon/repo).
// Python: $STRATHON_CLI_PYTHON, else Debian's /usr/bin/python3 (python3-click/httpx/rich/yaml).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_PROJECT_ID, startTestReceiver, type TestReceiver } from '../helpers.js';
import { call, costSpan, postSpans } from './support.js';

const run = promisify(execFile);
const MIRROR = process.env.STRATHON_MIRROR ?? '/work/.mirror/strathon+strathon/repo';
const PYTHON = process.env.STRATHON_CLI_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

async function locateCli(): Promise<{ dir: string } | { reason: string }> {
  const given = process.env.STRATHON_CLI_DIR;
  if (given) {
    for (const d of [given, path.join(given, 'cli')]) if (existsSync(path.join(d, 'strathon_cli', 'main.py'))) return { dir: d };
    return { reason: `STRATHON_CLI_DIR=${given} holds no strathon_cli/main.py` };
  }
  if (!existsSync(MIRROR)) return { reason: `Strathon mirror not found at ${MIRROR} (set STRATHON_CLI_DIR or STRATHON_MIRROR)` };
  const tmp = mkdtempSync(path.join(tmpdir(), 'strathon-cli-governance-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  try {
    await run('git', ['-C', MIRROR, 'archive', '--format=tar', '-o', path.join(tmp, 'cli.tar'), 'HEAD', 'cli']);
    await run('tar', ['-xf', path.join(tmp, 'cli.tar'), '-C', tmp]);
  } catch (err) {
    return { reason: `could not export cli/ from ${MIRROR}: ${(err as Error).message.split('\n')[0]}` };
  }
  const dir = path.join(tmp, 'cli');
  return existsSync(path.join(dir, 'strathon_cli', 'main.py')) ? { dir } : { reason: `${MIRROR} has no cli/strathon_cli/main.py at HEAD` };
}

async function pythonReady(): Promise<string | undefined> {
  try {
    await run(PYTHON, ['-c', 'import click, httpx, rich, yaml'], { timeout: 30_000 });
    return undefined;
  } catch {
    return `${PYTHON} lacks click/httpx/rich/yaml (apt-get install python3-click python3-httpx python3-rich python3-yaml)`;
  }
}

const located = await locateCli();
const skip = 'reason' in located ? located.reason : await pythonReady();
const cliDir = 'dir' in located ? located.dir : '';
const r: TestReceiver | undefined = skip ? undefined : await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });

interface Out { code: number; stdout: string; stderr: string }

async function strathon(...args: string[]): Promise<Out> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', PYTHONPATH: cliDir, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1',
    STRATHON_ENDPOINT: r?.url, STRATHON_API_KEY: r?.key, COLUMNS: '240', NO_COLOR: '1', TERM: 'dumb', NO_PROXY: '*',
  };
  try {
    const out = await run(PYTHON, ['-c', 'from strathon_cli.main import cli; cli()', ...args], { env, timeout: 60_000 });
    return { code: 0, stdout: out.stdout, stderr: out.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
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
