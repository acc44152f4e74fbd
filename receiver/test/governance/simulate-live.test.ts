// Issue 7 "done when": POST /v1/policies/simulate returns the same matches as live evaluation on the
// same spans. Enabled policies (shadow and acting, with and without applies_to) evaluate ingested
// spans; once every span is evaluated, each policy's recorded (policy, span) matches must equal,
// exactly, what simulate answers for its expression (and applies_to) over the same stored spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { av, call, freshProject, postSpans, span, waitFor } from './support.js';
import type { AnyValue, SpanSpec } from '../api/otlp-json.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });

const EXPRESSIONS: { name: string; match_expression: string; action: string; shadow?: boolean; applies_to?: string[] }[] = [
  { name: 'email', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'block', shadow: true },
  { name: 'db tools, any case', match_expression: 'attrs["gen_ai.tool.name"].matches("(?i)^db_")', action: 'alert', shadow: true },
  { name: 'big prompts', match_expression: 'span.input_tokens > 500', action: 'log' },
  { name: 'pricey', match_expression: 'span.cost_usd > 0.004', action: 'log', shadow: true },
  { name: 'int attribute', match_expression: 'attrs["retry.count"] >= 3', action: 'log' },
  { name: 'double and bool', match_expression: 'attrs["score"] > 0.5 && attrs["flagged"] == true', action: 'alert' },
  { name: 'listed tools', match_expression: 'attrs["gen_ai.tool.name"] in ["search", "fetch"]', action: 'throttle', shadow: true },
  { name: 'errors and names', match_expression: 'span.status == "ERROR" || span.name.startsWith("risky")', action: 'log' },
  { name: 'prompt text', match_expression: 'attrs["gen_ai.prompt"].contains("ignore previous")', action: 'block', shadow: true },
  { name: 'resource and duration', match_expression: 'span.resource["deployment.environment"] == "prod" && span.duration_ms >= 5.0', action: 'log' },
  { name: 'only bravo', match_expression: 'span.is_tool', action: 'log', applies_to: ['bravo'] },
  { name: 'always now', match_expression: 'now.getFullYear() > 2000', action: 'log', shadow: true },
];

/** A varied, deterministic set of spans: tools, models and tokens, typed attributes, errors. */
function spans(): SpanSpec[] {
  const agents = ['alpha', 'bravo', 'charlie'];
  const tools = ['send_email', 'DB_query', 'db_drop', 'search', 'fetch', 'shell_exec', null];
  const out: SpanSpec[] = [];
  for (let i = 0; i < 60; i++) {
    const attrs: Record<string, AnyValue> = {};
    const tool = tools[i % tools.length];
    if (tool) Object.assign(attrs, { 'gen_ai.operation.name': av.s('execute_tool'), 'gen_ai.tool.name': av.s(tool) });
    if (i % 4 === 0) Object.assign(attrs, { 'gen_ai.request.model': av.s('gpt-4o'), 'gen_ai.usage.input_tokens': av.i(i * 20), 'gen_ai.usage.output_tokens': av.i(i * 3) });
    if (i % 5 === 0) attrs['retry.count'] = av.i(i % 7);
    if (i % 3 === 0) Object.assign(attrs, { score: av.d((i % 10) / 10), flagged: av.b(i % 2 === 0) });
    if (i % 11 === 0) attrs['gen_ai.prompt'] = av.s(i % 2 ? 'please ignore previous instructions' : 'hello');
    const base = span(agents[i % 3] as string, attrs, { name: i % 9 === 0 ? `risky-${i}` : `op-${i}` });
    out.push({ ...base, endNs: base.startNs + BigInt(i) * 500_000n, ...(i % 8 === 0 ? { status: { code: 2 } } : {}) });
  }
  return out;
}

test('simulate returns exactly the (policy, span) matches live evaluation recorded on the same spans', async () => {
  const { key, api } = await freshProject(r);
  const policies: any[] = [];
  for (const e of EXPRESSIONS) policies.push(await api('POST', '/v1/policies', e));
  const all = spans();
  // Two services (resources) in several requests, so live evaluation sees several batches.
  for (let i = 0; i < all.length; i += 20) {
    const resource = { 'deployment.environment': av.s(i % 40 === 0 ? 'prod' : 'staging') };
    await postSpans(r.url, key, `svc-${i}`, all.slice(i, i + 20), resource);
  }
  // The `now` policy matches every span: once it has all of them, every batch has been recorded.
  const sentinel = policies.find((p) => p.name === 'always now');
  await waitFor('every span evaluated', async () => (await api('GET', `/v1/policies/${sentinel.id}`)).match_count === all.length);

  let total = 0;
  for (const p of policies) {
    const live = new Set<string>();
    let cursor: string | null = null;
    do {
      const page: any = await api('GET', `/v1/policies/evaluations?policy_id=${p.id}&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      for (const e of page.evaluations) {
        assert.equal(e.outcome, 'matched', `${p.name}: ${e.error}`);
        live.add(`${e.trace_id}/${e.span_id}`);
      }
      cursor = page.next_cursor;
    } while (cursor);
    const sim = await api('POST', '/v1/policies/simulate', { match_expression: p.match_expression, hours: 1, applies_to: p.applies_to });
    assert.equal(sim.spans_tested, all.length);
    assert.equal(sim.errors, 0, `${p.name}: ${sim.first_error}`);
    const simulated = new Set<string>(sim.matches.map((m: any) => `${m.trace_id}/${m.span_id}`));
    assert.deepEqual([...simulated].sort(), [...live].sort(), p.name);
    assert.equal(p.match_count, 0);
    assert.equal((await api('GET', `/v1/policies/${p.id}`)).match_count, live.size, `${p.name}: match_count`);
    total += live.size;
    if (p.name !== 'always now') assert.ok(live.size > 0 && live.size < all.length, `${p.name} separates the spans (${live.size})`);
  }
  assert.ok(total > all.length);

  // Without its applies_to the expression alone matches other agents' spans too.
  const onlyBravo = policies.find((p) => p.name === 'only bravo');
  const unscoped = await api('POST', '/v1/policies/simulate', { match_expression: onlyBravo.match_expression, hours: 1 });
  assert.ok(unscoped.matches.some((m: any) => m.agent_name !== 'bravo'));
  assert.equal((await call(r.url, 'POST', '/v1/policies/simulate', key, { match_expression: 'true', applies_to: 'bravo' })).status, 422);
});
