// The real Strathon CLI (cli/ of the public strathon/strathon repository) against a real receiver:
// `traces list`, `traces tree`, `spans search`, `agents list` show the data the OpenTelemetry
// exporter sent. Skips (with the reason) when the CLI source or its Python packages are absent.
// CLI source: $STRATHON_CLI_DIR (the cli/ folder or the repository root), else exported from the
// bare mirror $STRATHON_MIRROR (default /work/.mirror/strathon+strathon/repo). Python:
// $STRATHON_CLI_PYTHON, else Debian's /usr/bin/python3 (python3-click/httpx/rich/yaml).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { startTestReceiver, type TestReceiver } from '../helpers.js';
import { withExporter } from '../otel.js';
import { locateStrathonCli, runStrathon } from './strathon-cli.js';

const located = await locateStrathonCli();
const skip = 'reason' in located ? located.reason : undefined;
const cliDir = 'dir' in located ? located.dir : '';

let r: TestReceiver | undefined;
const ids = { trace: '', root: '', llm: '', tool: '' };
if (!skip) {
  r = await startTestReceiver();
  const { results } = await withExporter(r.url, r.key, 'protobuf', true, { 'service.name': 'cli-e2e-svc' }, (tracer) => {
    const agent = { 'gen_ai.agent.name': 'cli-e2e-agent' };
    const root = tracer.startSpan('invoke_agent cli-e2e-agent', { kind: SpanKind.SERVER, attributes: agent });
    ids.trace = root.spanContext().traceId;
    ids.root = root.spanContext().spanId;
    const ctx = trace.setSpan(context.active(), root);
    const llm = tracer.startSpan('chat gpt-4o', {
      kind: SpanKind.CLIENT, attributes: { ...agent, 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.output_tokens': 300 },
    }, ctx);
    ids.llm = llm.spanContext().spanId;
    llm.end();
    const tool = tracer.startSpan('execute_tool send_email', { attributes: { ...agent, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'send_email' } }, ctx);
    ids.tool = tool.spanContext().spanId;
    tool.end();
    root.end();
  });
  assert.deepEqual(results.map((x) => x.code), [0, 0, 0], 'the exporter delivered the trace');
}

/** Run `strathon <args>` with the receiver as endpoint; resolves with exit code and output. */
async function strathon(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runStrathon(cliDir, r?.url ?? '', r?.key ?? '', args);
}

function ok(res: { code: number; stdout: string; stderr: string }, what: string) {
  assert.equal(res.code, 0, `${what} exited ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
}

test('strathon traces list shows the trace, its agent, span count and cost', { skip }, async () => {
  const res = await strathon('traces', 'list');
  ok(res, 'traces list');
  assert.match(res.stdout, /Traces/);
  assert.ok(res.stdout.includes(ids.trace.slice(0, 16)), res.stdout);
  assert.ok(res.stdout.includes('cli-e2e-agent'), res.stdout);
  assert.match(res.stdout, new RegExp(`${ids.trace.slice(0, 16)}.*cli-e2e-agent.*\\b3\\b.*0\\.006`), res.stdout);

  const filtered = await strathon('traces', 'list', '--agent', 'cli-e2e-agent', '--limit', '5');
  ok(filtered, 'traces list --agent');
  assert.ok(filtered.stdout.includes(ids.trace.slice(0, 16)), filtered.stdout);
  const none = await strathon('traces', 'list', '--agent', 'no-such-agent');
  ok(none, 'traces list --agent (no match)');
  assert.match(none.stdout, /No traces found/);

  const json = await strathon('traces', 'list', '--json');
  ok(json, 'traces list --json');
  const body = JSON.parse(json.stdout);
  assert.equal(body.data[0].trace_id, ids.trace);
  assert.equal(body.data[0].root_name, 'invoke_agent cli-e2e-agent');
});

test('strathon traces tree prints the span hierarchy', { skip }, async () => {
  const res = await strathon('traces', 'tree', ids.trace);
  ok(res, 'traces tree');
  const lines = res.stdout.trimEnd().split('\n');
  assert.equal(lines[0], `Trace: ${ids.trace}`);
  assert.equal(lines[1], 'Spans: 3');
  assert.equal(lines[2], 'invoke_agent cli-e2e-agent');
  assert.deepEqual(lines.slice(3).sort(), ['  ├─ chat gpt-4o', '  ├─ execute_tool send_email → send_email'].sort());

  const missing = await strathon('traces', 'tree', 'ab'.repeat(16));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Error 404: trace abab.* not found/);
});

test('strathon spans search finds spans by agent, tool, model and text', { skip }, async () => {
  const byAgent = await strathon('spans', 'search', '--agent', 'cli-e2e-agent');
  ok(byAgent, 'spans search --agent');
  for (const id of [ids.root, ids.llm, ids.tool]) assert.ok(byAgent.stdout.includes(id.slice(0, 12)), byAgent.stdout);
  for (const name of ['invoke_agent cli-e2e-agent', 'chat gpt-4o', 'execute_tool send_email']) assert.ok(byAgent.stdout.includes(name), byAgent.stdout);

  const byTool = await strathon('spans', 'search', '--tool', 'send_email');
  ok(byTool, 'spans search --tool');
  assert.ok(byTool.stdout.includes(ids.tool.slice(0, 12)), byTool.stdout);
  assert.ok(!byTool.stdout.includes(ids.llm.slice(0, 12)), byTool.stdout);

  const byModel = await strathon('spans', 'search', '--model', 'gpt-4o');
  ok(byModel, 'spans search --model');
  assert.match(byModel.stdout, new RegExp(`${ids.llm.slice(0, 12)}.*chat gpt-4o.*cli-e2e-agent.*gpt-4o.*0\\.006`), byModel.stdout);

  const byText = await strathon('spans', 'search', '--q', 'send_email', '--json');
  ok(byText, 'spans search --q --json');
  assert.deepEqual(JSON.parse(byText.stdout).map((s: { span_id: string }) => s.span_id), [ids.tool]);
});

test('strathon agents list shows the agent with its risk', { skip }, async () => {
  const res = await strathon('agents', 'list');
  ok(res, 'agents list');
  assert.match(res.stdout, /Agent Inventory/);
  // send_email is a sensitive tool with no policy: high risk; 1 tool call; cost of the gpt-4o call.
  assert.match(res.stdout, /cli-e2e-agent.*HIGH.*\b1\b.*\b0\b.*0\.006/, res.stdout);
  const json = JSON.parse((await strathon('agents', 'list', '--json')).stdout);
  assert.equal(json[0].agent_name, 'cli-e2e-agent');
  assert.deepEqual(json[0].tools_used, ['send_email']);
});
