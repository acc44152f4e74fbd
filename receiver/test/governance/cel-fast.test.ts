// The closure evaluator (cel-fast.ts) gives cel-js's outcome: a differential test over random
// expressions of the supported subset (plus unsupported constructs) and random spans, the bench's
// 20 expressions on matching and non-matching spans, the keys readKeys() reports, and the thread
// (CelRunner) answering as cel-js does, malformed spans included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { activationFor, compileExpression, evaluateProgram, type Outcome, type SpanInput } from '../../src/governance/cel.js';
import { compileFast, FALLBACK, readKeys } from '../../src/governance/cel-fast.js';
import { CelRunner } from '../../src/governance/cel-thread.js';
import { batchKeys, threadInput } from '../../src/governance/evaluator.js';
import type { TypedValue } from '../../src/ingest/normalize.js';
import { POLICY_EXPRESSIONS } from '../../../bench/lib/policy-expressions.mjs';

function reference(src: string, span: SpanInput, now: Date): Outcome {
  let act;
  try {
    act = activationFor(span, now);
  } catch (err) {
    return { kind: 'error', message: `span could not be prepared: ${(err as Error).message}` };
  }
  return evaluateProgram(compileExpression(src), act);
}

/** The fast outcome, or 'fallback' when the closures leave the span to cel-js. */
function fast(src: string, span: SpanInput, now: Date): Outcome | 'fallback' | 'unsupported' {
  const f = compileFast(compileExpression(src).ast);
  if (!f) return 'unsupported';
  const r = f({ s: span, now });
  if (r === FALLBACK) return 'fallback';
  return { kind: r ? 'match' : 'no_match' };
}

function baseSpan(attrs: Record<string, TypedValue>, extra: Partial<SpanInput> = {}): SpanInput {
  return {
    trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), name: 'chat gpt-4o', kind: 3, start_ns: '1700000000000000000', end_ns: '1700000000500000000',
    status_code: 0, status_message: null, attributes: attrs, resource_attributes: { 'service.name': { stringValue: 'svc' } },
    service_name: 'svc', agent_name: 'coding-agent', model: 'gpt-4o', tool_name: null, operation_name: 'chat',
    input_tokens: 1000, output_tokens: 100, cost_usd: '0.0035', is_llm: true, is_tool: false, ...extra,
  };
}

// ---- random spans -------------------------------------------------------------------------------

const KEYS = ['a', 's', 'i', 'd', 'b', 'constructor', '__proto__', 'toString', 'x.y', 'gen_ai.tool.name'];
const IDENT_KEYS = KEYS.filter((k) => /^[a-z_][a-z_]*$/i.test(k));
const STRINGS = ['', 'a', 'abc', 'ABC', 'str', 'admin.x', 'x admin.', 'ümlaut', '😀', 'a"b', 'back\\slash', 'new\nline', '5', 'null', 'true', 'DROP table', 'https://10.0.0.1/'];
const INTS = ['0', '1', '-1', '5', '100000', '9223372036854775807', '-9223372036854775808', '4611686018427387904', '-4611686018427387905', 'abc'];
const DOUBLES: (number | string)[] = [0, -0, 0.5, 5, 1e300, -2.5, 'NaN', 'Infinity', 600000.5];

const typedValue: fc.Arbitrary<TypedValue> = fc.oneof(
  fc.constantFrom(...STRINGS).map((v) => ({ stringValue: v })),
  fc.constantFrom(...INTS).map((v) => ({ intValue: v })),
  fc.constantFrom(...DOUBLES).map((v) => ({ doubleValue: v }) as TypedValue),
  fc.boolean().map((v) => ({ boolValue: v })),
  fc.constant({ bytesValue: 'YWJj' } as TypedValue),
  fc.constant({ arrayValue: { values: [{ stringValue: 'a' }, { intValue: '1' }] } } as TypedValue),
  fc.constant({ kvlistValue: { values: [{ key: 'k', value: { stringValue: 'v' } }] } } as TypedValue),
  fc.constant({} as TypedValue),
);

const attrMap = fc.array(fc.tuple(fc.constantFrom(...KEYS), typedValue), { maxLength: 6 }).map((kv) => Object.fromEntries(kv) as Record<string, TypedValue>);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null, freq: 3 });

const spanArb: fc.Arbitrary<SpanInput> = fc.record({
  attributes: attrMap, resource_attributes: attrMap,
  name: fc.constantFrom(...STRINGS), kind: fc.integer({ min: 0, max: 7 }), status_code: fc.integer({ min: 0, max: 3 }),
  status_message: maybe(fc.constantFrom(...STRINGS)), service_name: maybe(fc.constantFrom(...STRINGS)), agent_name: maybe(fc.constantFrom(...STRINGS)),
  model: maybe(fc.constantFrom('gpt-4o', 'o1-pro', 'gpt-3.5')), tool_name: maybe(fc.constantFrom(...STRINGS)), operation_name: maybe(fc.constantFrom('chat')),
  input_tokens: maybe(fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom('9223372036854775807', '300000'))),
  output_tokens: maybe(fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom('9223372036854775807'))),
  cost_usd: maybe(fc.constantFrom('0.0035', '5.5', '0')), is_llm: fc.boolean(), is_tool: fc.boolean(),
  end_offset: fc.constantFrom('0', '500000000', '700000000000'),
}).map(({ end_offset, ...r }) => ({
  ...r, trace_id: 'ab'.repeat(16), span_id: 'cd'.repeat(8), start_ns: '1700000000000000000', end_ns: (1700000000000000000n + BigInt(end_offset)).toString(),
}));

// ---- random expressions -------------------------------------------------------------------------

const lit = fc.oneof(
  fc.constantFrom(...STRINGS).map((v) => JSON.stringify(v)),
  fc.constantFrom('0', '1', '5', '-1', '100000', '9223372036854775807', '-9223372036854775807'),
  fc.integer({ min: 0, max: 60 }).map(String),
  fc.constantFrom('0.0', '5.0', '0.5', '-2.5', '1e300', '600000.0'),
  fc.constantFrom('true', 'false', 'null'),
  fc.constantFrom('1u', 'b"abc"'),
);
const FIELDS = ['name', 'kind', 'status', 'status_message', 'duration_ms', 'start_time', 'service', 'agent', 'model', 'tool', 'operation', 'input_tokens', 'output_tokens', 'cost_usd', 'trace_id', 'span_id', 'is_llm', 'is_tool', 'resource', 'foo'];
const NOW = ['getHours', 'getMinutes', 'getSeconds', 'getDayOfWeek', 'getFullYear', 'getMonth', 'getDayOfMonth', 'getDate'];
const access = fc.oneof(
  fc.constantFrom(...KEYS).map((k) => `attrs[${JSON.stringify(k)}]`),
  fc.constantFrom(...IDENT_KEYS).map((k) => `attrs.${k}`),
  fc.constantFrom(...FIELDS).map((f) => `span.${f}`),
  fc.constantFrom(...FIELDS).map((f) => `span[${JSON.stringify(f)}]`),
  fc.constantFrom(...KEYS).map((k) => `span.resource[${JSON.stringify(k)}]`),
  fc.constantFrom(...IDENT_KEYS).map((k) => `span.resource.${k}`),
  fc.constantFrom(...NOW).map((m) => `now.${m}()`),
  fc.constant('name'),
);
const PATTERNS = ['^a', '(?i)ABC', 'admin\\\\.', '(', '^https?://(10|192\\\\.168)\\\\.', '😀'];

const { expr } = fc.letrec<{ expr: string; term: string }>((tie) => ({
  term: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    access, access, lit,
    fc.tuple(tie('term'), fc.constantFrom('+', '-'), tie('term')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('term').map((a) => `-${a}`),
    fc.tuple(fc.constantFrom(...KEYS), tie('term')).map(([k, a]) => `attrs[${JSON.stringify(k)} + ${a}]`),
    tie('term').map((a) => `(${a} * 2)`),
  ),
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.tuple(tie('term'), fc.constantFrom('==', '!=', '<', '<=', '>', '>='), tie('term')).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.tuple(tie('term'), fc.constantFrom('==', '!=', '>'), lit).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.tuple(tie('term'), fc.constantFrom('+', '-'), tie('term')).map(([a, op, b]) => `${a} ${op} ${b} > 0`),
    fc.tuple(fc.constantFrom(...KEYS, 'name', 'resource', 'foo'), fc.constantFrom('attrs', 'span', 'span.resource')).map(([k, m]) => `${JSON.stringify(k)} in ${m}`),
    fc.tuple(tie('term'), fc.array(lit, { maxLength: 4 })).map(([a, l]) => `${a} in [${l.join(', ')}]`),
    fc.tuple(tie('term'), fc.constantFrom('contains', 'startsWith', 'endsWith'), tie('term')).map(([a, m, b]) => `${a}.${m}(${b})`),
    fc.tuple(tie('term'), fc.constantFrom(...PATTERNS)).map(([a, p]) => `${a}.matches("${p}")`),
    fc.constantFrom(...IDENT_KEYS).map((k) => `has(attrs.${k})`),
    fc.constantFrom(...FIELDS).map((f) => `has(span.${f})`),
    fc.constantFrom(...IDENT_KEYS).map((k) => `has(span.resource.${k})`),
    tie('expr').map((a) => `!(${a})`),
    fc.tuple(tie('expr'), fc.constantFrom('&&', '||'), tie('expr')).map(([a, op, b]) => `(${a}) ${op} (${b})`),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([a, b, c]) => `(${a}) ? (${b}) : (${c})`),
    access,
    tie('term').map((a) => `size(${a}) > 1`),
    tie('term').map((a) => `[1, 2].exists(x, x == ${a})`),
  ),
}));

function compiles(src: string): boolean {
  try {
    compileExpression(src);
    return true;
  } catch {
    return false;
  }
}

test('differential: the closures decide exactly as cel-js on random expressions and spans', () => {
  let decided = 0;
  let ran = 0;
  const nowArb = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Date(ms));
  fc.assert(fc.property(expr.filter(compiles), fc.array(spanArb, { minLength: 1, maxLength: 4 }), nowArb, (src, spans, now) => {
    for (const span of spans) {
      ran++;
      const want = reference(src, span, now);
      const got = fast(src, span, now);
      if (got === 'fallback' || got === 'unsupported') continue;
      decided++;
      assert.deepEqual(got, want, `${src} on ${JSON.stringify(span)}`);
    }
  }), { seed: 20261123, numRuns: 4000, interruptAfterTimeLimit: 60_000 });
  // The subset is most of what is generated: the closures must decide a good part of it.
  assert.ok(ran > 4000, `ran ${ran}`);
  assert.ok(decided > ran * 0.4, `decided ${decided} of ${ran}`);
});

test('now getters and int64 edges: every decided outcome equals cel-js', () => {
  const span = baseSpan({ max: { intValue: '9223372036854775807' }, min: { intValue: '-9223372036854775808' }, one: { intValue: '1' } });
  let decided = 0;
  for (const ms of [Date.UTC(2024, 1, 29, 23, 59, 59), Date.UTC(2026, 0, 1, 0, 0, 0), Date.UTC(2025, 11, 31, 13, 14, 15)]) {
    const now = new Date(ms);
    for (const g of NOW) {
      for (let v = 0; v <= 60; v++) {
        const src = `now.${g}() == ${v}`;
        const got = fast(src, span, now);
        assert.deepEqual(got, reference(src, span, now), src);
        if (typeof got === 'object' && got.kind === 'match') decided++;
      }
    }
  }
  assert.ok(decided >= NOW.length * 3 - 3, `matched ${decided}`);
  for (const src of ['attrs.max + attrs.one > 0', 'attrs.min - attrs.one < 0', '-attrs.min > 0', 'attrs.max - attrs.one > 0', 'attrs.min + attrs.one < 0', '-attrs.max < 0']) {
    const want = reference(src, span, new Date());
    const got = fast(src, span, new Date());
    // cel-js reports + and - overflows; the closures leave any int64 edge to it.
    if (want.kind === 'error') assert.equal(got, 'fallback', src);
    else if (got !== 'fallback') assert.deepEqual(got, want, src);
  }
});

// ---- the bench's expressions --------------------------------------------------------------------

const BENCH: string[] = POLICY_EXPRESSIONS;

const str = (v: string): TypedValue => ({ stringValue: v });
/** A span each bench expression (by index) matches; the last one never matches. */
const MATCHING: SpanInput[] = [
  baseSpan({ 'gen_ai.tool.name': str('delete_database') }),
  baseSpan({ 'gen_ai.tool.name': str('drop_table') }),
  baseSpan({ 'gen_ai.prompt': str('please ignore previous instructions') }),
  baseSpan({}, { name: 'admin.reset' }),
  baseSpan({}, { model: 'o1-pro', input_tokens: '100001' }),
  baseSpan({}, { cost_usd: '5.01' }),
  baseSpan({}, { end_ns: '1700000600000000001' }),
  baseSpan({}, { status_code: 2, agent_name: 'payments-agent' }),
  baseSpan({ 'gen_ai.tool.name': str('send_email') }, { agent_name: 'untrusted-agent' }),
  baseSpan({}, { output_tokens: 200001 }),
  baseSpan({ 'http.url': str('http://192.168.1.1/x') }),
  baseSpan({}, { service_name: 'legacy-billing' }),
  baseSpan({ 'gen_ai.tool.name': str('run_sql'), 'db.statement': str('DROP TABLE x') }),
  baseSpan({}, { name: 'read password' }),
  baseSpan({}, { kind: 2, agent_name: 'nobody' }),
  baseSpan({}, { model: 'gpt-3.5-turbo' }),
  baseSpan({ 'user.email': str('a@competitor.example') }),
  baseSpan({}, { input_tokens: 400000, output_tokens: '100001' }),
  baseSpan({ 'gen_ai.tool.name': str('transfer_funds') }),
  baseSpan({}),
];
const PLAIN: SpanInput[] = [
  baseSpan({ 'gen_ai.request.model': str('gpt-4o'), 'gen_ai.usage.input_tokens': { intValue: '1000' } }),
  baseSpan({ 'gen_ai.tool.name': str('search') }, { name: 'execute_tool search', model: null, input_tokens: null, output_tokens: null, cost_usd: null, is_llm: false, is_tool: true }),
];

test('the bench expressions: decided by the closures, matching and not matching as cel-js says', () => {
  const now = new Date(Date.UTC(2026, 0, 1, 12));
  for (const [i, src] of BENCH.entries()) {
    const span = MATCHING[i] as SpanInput;
    const want = i === BENCH.length - 1 ? 'no_match' : 'match';
    assert.equal(reference(src, span, now).kind, want, `cel-js: ${src}`);
    assert.deepEqual(fast(src, span, now), { kind: want }, src);
    for (const plain of PLAIN) {
      assert.equal(reference(src, plain, now).kind, 'no_match', `cel-js: ${src}`);
      assert.deepEqual(fast(src, plain, now), { kind: 'no_match' }, src);
    }
  }
});

test('fallback cases reach cel-js: overflow, mixed types, bad regex, unsupported constructs', () => {
  const now = new Date();
  const span = baseSpan({ i: { intValue: '9223372036854775807' }, s: str('x'), d: { doubleValue: 5 } });
  for (const src of ['attrs["i"] + 1 > 0', 'attrs["i"] == 5.0', 'attrs["s"] == 1', 'attrs["s"].matches("(")', 'attrs["s"] > 1 || attrs["m"] == "x"']) {
    assert.equal(fast(src, span, now), 'fallback', src);
  }
  for (const src of ['size(attrs["s"]) == 1', '[1].exists(x, x == 1)', 'attrs["s"] in attrs["arr"]', 'now.getHours("Europe/Paris") == 1', 'span.start_time < now']) {
    assert.equal(fast(src, span, now), 'unsupported', src);
  }
  // Absorbed on either side, as cel-js does.
  assert.deepEqual(fast('attrs["s"] > 1 || true', span, now), { kind: 'match' });
  assert.deepEqual(fast('attrs["s"] && false', span, now), { kind: 'no_match' });
  assert.deepEqual(fast('attrs["m"] == "x" || attrs["n"] == "y"', span, now), { kind: 'no_match' });
  assert.deepEqual(reference('attrs["s"] > 1 || true', span, now), { kind: 'match' });
});

test('map keys are own properties only: constructor and __proto__ are absent unless the span carries them', () => {
  const now = new Date();
  const plain = baseSpan({});
  const carrying = baseSpan(Object.fromEntries([['constructor', str('c')], ['__proto__', str('p')]]) as Record<string, TypedValue>);
  for (const [src, onPlain, onCarrying] of [
    ['"constructor" in attrs', 'no_match', 'match'], ['attrs["__proto__"] == "p"', 'no_match', 'match'],
    ['has(attrs.constructor)', 'no_match', 'match'], ['span.constructor == "c"', 'no_match', 'no_match'], ['"toString" in span.resource', 'no_match', 'no_match'],
  ] as const) {
    assert.equal(reference(src, plain, now).kind, onPlain, src);
    assert.deepEqual(fast(src, plain, now), { kind: onPlain }, src);
    assert.equal(reference(src, carrying, now).kind, onCarrying, src);
    assert.deepEqual(fast(src, carrying, now), { kind: onCarrying }, src);
  }
});

test('readKeys: literal keys are listed; any other use of a map reads all of it', () => {
  const keys = (src: string) => {
    const k = readKeys(compileExpression(src).ast);
    return { attrs: k.attrs === 'all' ? 'all' : [...k.attrs].sort(), resource: k.resource === 'all' ? 'all' : [...k.resource].sort() };
  };
  assert.deepEqual(keys('attrs["a"] == "x" && "b" in attrs && has(attrs.c) && span.resource["r"] == "y" && "q" in span.resource'), { attrs: ['a', 'b', 'c'], resource: ['q', 'r'] });
  assert.deepEqual(keys('span.resource.k == "v" && span.name == "n"'), { attrs: [], resource: ['k'] });
  assert.deepEqual(keys('attrs["a" + name] == "x"'), { attrs: 'all', resource: [] });
  assert.deepEqual(keys('size(attrs) > 1'), { attrs: 'all', resource: [] });
  assert.deepEqual(keys('size(span.resource) > 1'), { attrs: [], resource: 'all' });
  assert.deepEqual(keys('span[name] == "x"'), { attrs: [], resource: 'all' });
  const batch = batchKeys(['attrs["a"] == "x"', 'span.resource["r"] == "y"', 'not CEL (']);
  assert.deepEqual(batch, { attrs: 'all', resource: 'all' }, 'an expression that does not compile sends everything');
  const span = baseSpan({ a: str('1'), b: str('2') });
  const sent = threadInput(span, batchKeys(['attrs["a"] == "x"', '"zz" in attrs']));
  assert.deepEqual(sent.attributes, { a: str('1') });
  assert.deepEqual(sent.resource_attributes, {});
  assert.equal(sent.start_ns, span.start_ns);
});

test('the thread answers as cel-js for the bench expressions and random spans, malformed spans included', async () => {
  const runner = new CelRunner({ softLimitMs: 10_000, hardLimitMs: 20_000, idleMs: 1000 });
  try {
    const spans = [...MATCHING, ...PLAIN, ...fc.sample(spanArb, { seed: 7, numRuns: 200 }),
      baseSpan({}, { start_ns: 'x' }), baseSpan({}, { input_tokens: 1.5 }), baseSpan({}, { end_ns: ' 1700000000000000001 ' })];
    const exprs = [...BENCH, 'size(attrs) >= 0', 'attrs["i"] + 1 > 0'];
    const nowMs = Date.UTC(2026, 0, 1, 12);
    const keys = batchKeys(exprs);
    const { hits, stalled } = await runner.run(exprs.map((expression) => ({ expression, agents: null })), spans.map((s) => threadInput(s, keys)), nowMs);
    assert.deepEqual(stalled, []);
    const want: { p: number; s: number; kind: string; message?: string }[] = [];
    for (const [s, span] of spans.entries()) {
      for (const [p, src] of exprs.entries()) {
        const o = reference(src, span, new Date(nowMs));
        if (o.kind === 'match') want.push({ p, s, kind: 'match' });
        else if (o.kind === 'error') want.push({ p, s, kind: 'error', message: o.message });
      }
    }
    assert.deepEqual(hits, want);
    assert.ok(want.filter((h) => h.kind === 'match').length >= BENCH.length - 1);
    assert.ok(want.some((h) => h.kind === 'error' && h.message?.startsWith('span could not be prepared')));
  } finally {
    await runner.close();
  }
});

test('the soft limit still applies to a regex the closures run: an error, then the policy is skipped for the batch', async () => {
  // ^(a+)+$ on 24 a's and a b backtracks through ~2^24 paths: far over 1 ms.
  const runner = new CelRunner({ softLimitMs: 1, hardLimitMs: 60_000, idleMs: 1000 });
  try {
    const slow = baseSpan({ s: str(`${'a'.repeat(24)}b`) });
    const exprs = ['attrs["s"].matches("^(a+)+$")', 'attrs["s"].startsWith("a")'];
    const { hits, stalled } = await runner.run(exprs.map((expression) => ({ expression, agents: null })), [slow, slow], Date.now());
    assert.deepEqual(stalled, []);
    assert.equal(hits.length, 3, JSON.stringify(hits));
    assert.deepEqual(hits.filter((h) => h.p === 1).map((h) => [h.s, h.kind]), [[0, 'match'], [1, 'match']]);
    const first = hits.find((h) => h.p === 0);
    assert.equal(first?.kind, 'error');
    assert.match(first?.message ?? '', /over the 1 ms limit/);
  } finally {
    await runner.close();
  }
});
