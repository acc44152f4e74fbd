// GenAI extraction (SPEC §5.3), pricing lookup and exact decimal cost; sampling by trace id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractGenAi, priceLookupFrom, computeCost, type Price } from '../../src/ingest/genai.js';
import { keepTrace } from '../../src/ingest/sampling.js';
import { nsToTimestamp } from '../../src/ingest/normalize.js';

const table = new Map<string, Price>([
  ['gpt-4o', { inputMicros: 2_500_000n, outputMicros: 10_000_000n }],
  ['gpt-4o-mini', { inputMicros: 150_000n, outputMicros: 600_000n }],
  ['claude-3-5-sonnet', { inputMicros: 3_000_000n, outputMicros: 15_000_000n }],
]);
const prices = priceLookupFrom(table);
const s = (v: string) => ({ stringValue: v });
const i = (v: string) => ({ intValue: v });

test('model, provider, tokens and agent: first matching attribute wins', () => {
  const g = extractGenAi({ 'gen_ai.response.model': s('gpt-4o'), 'llm.model_name': s('other'), 'gen_ai.system': s('openai'),
    'gen_ai.usage.prompt_tokens': s('1000'), 'llm.token_count.completion': { doubleValue: 250.4 }, 'strathon.agent': s('writer') }, 'svc', prices);
  assert.equal(g.model, 'gpt-4o');
  assert.equal(g.provider, 'openai');
  assert.equal(g.input_tokens, 1000);
  assert.equal(g.output_tokens, 250);
  assert.equal(g.agent_name, 'writer');
  assert.equal(g.cost_usd, '0.0050000000');
  assert.equal(g.is_llm, true);
  assert.equal(g.is_tool, false);
});

test('agent falls back to service.name; tool calls detected by operation or tool name', () => {
  const a = extractGenAi({ 'gen_ai.operation.name': s('execute_tool') }, 'svc', prices);
  assert.equal(a.agent_name, 'svc');
  assert.equal(a.is_tool, true);
  assert.equal(a.is_llm, false);
  const b = extractGenAi({ 'gen_ai.tool.name': s('search'), 'gen_ai.agent.name': s('planner') }, null, prices);
  assert.equal(b.tool_name, 'search');
  assert.equal(b.is_tool, true);
  assert.equal(b.agent_name, 'planner');
});

test('price lookup: exact, provider prefix, longest dated variant; unknown → no cost', () => {
  assert.equal(prices('gpt-4o-mini-2024-07-18'), table.get('gpt-4o-mini'));
  assert.equal(prices('gpt-4o-2024-08-06'), table.get('gpt-4o'));
  assert.equal(prices('openai/gpt-4o'), table.get('gpt-4o'));
  assert.equal(prices('claude-3-5-sonnet-20241022'), table.get('claude-3-5-sonnet'));
  assert.equal(prices('gpt-4oxyz'), undefined);
  const g = extractGenAi({ 'gen_ai.request.model': s('mystery'), 'gen_ai.usage.input_tokens': i('10') }, null, prices);
  assert.equal(g.cost_usd, null);
});

test('gen_ai.usage.cost wins over the price table; costs are exact decimals', () => {
  const g = extractGenAi({ 'gen_ai.request.model': s('gpt-4o'), 'gen_ai.usage.input_tokens': i('1000'), 'gen_ai.usage.cost': { doubleValue: 0.25 } }, null, prices);
  assert.equal(g.cost_usd, '0.2500000000');
  assert.equal(computeCost(1, 0, { inputMicros: 150_000n, outputMicros: 0n }), '0.0000001500');
  assert.equal(computeCost(3, 7, { inputMicros: 1n, outputMicros: 1n }), '0.0000000000');
  assert.equal(computeCost(123_456_789, 0, { inputMicros: 2_500_000n, outputMicros: 0n }), '308.6419725000');
});

test('bad token values (negative, non-numeric, bool) are ignored', () => {
  const g = extractGenAi({ 'gen_ai.usage.input_tokens': i('-5'), 'gen_ai.usage.prompt_tokens': s('abc'), 'llm.token_count.prompt': { boolValue: true } }, null, prices);
  assert.equal(g.input_tokens, null);
});

test('sampling is a pure function of the trace id and keeps about the configured share', () => {
  let kept = 0;
  for (let n = 0; n < 20000; n++) {
    const id = (BigInt(n) * 0x9e3779b97f4a7c15n).toString(16).padStart(32, '0').slice(-32);
    const k = keepTrace(id, 0.25);
    assert.equal(keepTrace(id, 0.25), k);
    if (k) kept++;
  }
  assert.ok(kept > 4500 && kept < 5500, `kept ${kept} of 20000`);
  assert.equal(keepTrace('0'.repeat(32), 0), false);
  assert.equal(keepTrace('f'.repeat(32), 1), true);
});

test('nanosecond timestamps map to microsecond timestamptz text', () => {
  assert.equal(nsToTimestamp(1700000000123456789n), '2023-11-14T22:13:20.123456Z');
  assert.equal(nsToTimestamp(1n), '1970-01-01T00:00:00.000000Z');
});

test('an absurd token count yields no cost instead of overflowing the cost column', () => {
  assert.equal(computeCost(9e15, 0, { inputMicros: 2_500_000n, outputMicros: 0n }), null);
  const g = extractGenAi({ 'gen_ai.request.model': s('gpt-4o'), 'gen_ai.usage.input_tokens': i('9000000000000000') }, null, prices);
  assert.equal(g.cost_usd, null);
  assert.equal(g.input_tokens, 9e15);
});
