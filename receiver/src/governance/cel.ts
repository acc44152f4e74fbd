// CEL match expressions (SPEC §8.1) with @marcbachmann/cel-js, in Strathon's environment:
//   attrs  the span's attributes, a map with native values (int64 → int, double → double, …)
//   now    the evaluation time (timestamp; getHours() etc. are UTC unless given a zone)
//   span   {name, kind, status, status_message, duration_ms, service, agent, model, tool, operation,
//          input_tokens, output_tokens, cost_usd, resource, trace_id, span_id, is_llm, is_tool}
//   name   the span name (Strathon's SDK binds it too)
// A key the span does not carry is absent, so `attrs["x"] == 1` on a span without x does not match
// (CEL's "no such key" is a non-match, as in Strathon's receiver); any other failure is an error.
import { Environment, type ASTNode, type ParseResult } from '@marcbachmann/cel-js';
import type { TypedValue } from '../ingest/normalize.js';

export const MAX_EXPRESSION_LENGTH = 10_000;

export class CelCompileError extends Error {}

/** The parts of a stored span a policy sees (a subset of ingest's SpanRow, so both fit). */
export interface SpanInput {
  trace_id: string; span_id: string; name: string; kind: number; start_ns: string; end_ns: string;
  status_code: number; status_message: string | null;
  attributes: Record<string, TypedValue>; resource_attributes: Record<string, TypedValue>;
  service_name: string | null; agent_name: string | null; model: string | null; tool_name: string | null; operation_name: string | null;
  input_tokens: number | string | null; output_tokens: number | string | null; cost_usd: string | null; is_llm: boolean; is_tool: boolean;
}

export type Outcome = { kind: 'match' } | { kind: 'no_match' } | { kind: 'error'; message: string };

const SPAN_KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_CODES = ['UNSET', 'OK', 'ERROR'];

// ---- RE2-style regular expressions --------------------------------------------------------------
// CEL's matches() is RE2; Strathon's documented patterns start with inline flags ("(?i)ignore …"),
// which JavaScript rejects. Leading flag groups become RegExp flags; (?P<name> becomes (?<name>.

const regexCache = new Map<string, RegExp>();

export function re2ToRegExp(pattern: string): RegExp {
  const cached = regexCache.get(pattern);
  if (cached) return cached;
  let source = pattern;
  const flags = new Set<string>();
  for (let m = /^\(\?([imsU]+)\)/.exec(source); m; m = /^\(\?([imsU]+)\)/.exec(source)) {
    for (const f of m[1] ?? '') {
      if (f === 'U') throw new Error('the RE2 flag U (ungreedy) is not supported');
      flags.add(f);
    }
    source = source.slice(m[0].length);
  }
  source = source.replaceAll('(?P<', '(?<');
  const re = new RegExp(source, [...flags].join(''));
  if (regexCache.size >= 1000) regexCache.clear();
  regexCache.set(pattern, re);
  return re;
}

function matchesRe2(subject: string, pattern: string): boolean {
  let re: RegExp;
  try {
    re = re2ToRegExp(pattern);
  } catch (err) {
    throw new Error(`invalid regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  return re.test(subject);
}

// ---- the environment ----------------------------------------------------------------------------

export function createEnvironment(): Environment {
  return new Environment({
    homogeneousAggregateLiterals: false,
    limits: { maxAstNodes: 5000, maxDepth: 100, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 32 },
  })
    .registerVariable('attrs', 'map<string, dyn>')
    .registerVariable('span', 'map<string, dyn>')
    .registerVariable('name', 'string')
    .registerVariable('now', 'google.protobuf.Timestamp')
    .registerFunction('string.matchesRe2(string): bool', matchesRe2);
}

let shared: Environment | undefined;
/** One environment per thread: creating one is the expensive part. */
export function environment(): Environment {
  shared ??= createEnvironment();
  return shared;
}

function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.trimEnd() || 'unknown error';
}

export type Program = ParseResult;

function isNode(v: unknown): v is ASTNode {
  return typeof v === 'object' && v !== null && 'op' in v && 'range' in v;
}

/** Source offsets of every `matches` method name: receiver.matches(pattern). */
function matchesCalls(src: string, node: unknown, out: number[]): void {
  if (Array.isArray(node)) {
    for (const c of node) matchesCalls(src, c, out);
    return;
  }
  if (!isNode(node)) return;
  if (node.op === 'rcall') {
    const [method, receiver, args] = node.args;
    const first = args[0];
    if (method === 'matches' && args.length === 1 && isNode(receiver) && first && isNode(first)) {
      const at = src.indexOf('matches', receiver.range.end);
      if (at >= 0 && at < first.range.start) out.push(at);
    }
  }
  if (typeof node.args === 'object') matchesCalls(src, node.args, out);
}

/** The expression with every `.matches(` turned into the RE2-aware `.matchesRe2(`. */
export function withRe2Matches(src: string, ast: ASTNode): string {
  const at: number[] = [];
  matchesCalls(src, ast, at);
  let out = src;
  for (const i of [...new Set(at)].sort((a, b) => b - a)) out = `${out.slice(0, i)}matchesRe2${out.slice(i + 'matches'.length)}`;
  return out;
}

/**
 * Parse and type-check `src` as a match expression; throws CelCompileError with the compiler's
 * message. The returned program evaluates with RE2-style matches().
 */
export function compileExpression(src: unknown, env = environment()): Program {
  if (typeof src !== 'string') throw new CelCompileError('match_expression must be a string');
  if (!src.trim()) throw new CelCompileError('match_expression must not be empty');
  if (src.length > MAX_EXPRESSION_LENGTH) throw new CelCompileError(`match_expression must be at most ${MAX_EXPRESSION_LENGTH} characters`);
  let parsed: Program;
  try {
    parsed = env.parse(src);
  } catch (err) {
    throw new CelCompileError(errorText(err));
  }
  // Type-check the expression as written (its messages then quote the user's text).
  const checked = parsed.check();
  if (!checked.valid) throw new CelCompileError(errorText(checked.error));
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new CelCompileError(`match_expression must evaluate to a bool, not ${checked.type}`);
  }
  const rewritten = withRe2Matches(src, parsed.ast);
  if (rewritten === src) return parsed;
  try {
    return env.parse(rewritten);
  } catch (err) {
    throw new CelCompileError(errorText(err));
  }
}

// ---- activation ---------------------------------------------------------------------------------

/** A stored OTLP value as the native value CEL sees. Maps are Maps: keys are data, never prototypes. */
export function nativeValue(v: TypedValue | undefined): unknown {
  if (!v || typeof v !== 'object') return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) {
    try {
      return BigInt(v.intValue);
    } catch {
      return null;
    }
  }
  if ('doubleValue' in v) return typeof v.doubleValue === 'number' ? v.doubleValue : Number(v.doubleValue);
  if ('bytesValue' in v) return new Uint8Array(Buffer.from(v.bytesValue, 'base64'));
  if ('arrayValue' in v) return (v.arrayValue?.values ?? []).map(nativeValue);
  if ('kvlistValue' in v) return new Map((v.kvlistValue?.values ?? []).map((kv) => [kv.key, nativeValue(kv.value)]));
  return null;
}

function nativeMap(attrs: Record<string, TypedValue> | null | undefined): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (attrs) for (const [k, v] of Object.entries(attrs)) m.set(k, nativeValue(v));
  return m;
}

export interface Activation { attrs: Map<string, unknown>; span: Map<string, unknown>; name: string; now: Date }

/** The variables of one span's evaluation. Absent facts are absent keys (a non-match), not nulls. */
export function activationFor(s: SpanInput, now: Date): Activation {
  const span = new Map<string, unknown>();
  const put = (k: string, v: unknown) => { if (v !== null && v !== undefined) span.set(k, v); };
  put('name', s.name);
  put('kind', SPAN_KINDS[s.kind] ?? 'UNSPECIFIED');
  put('status', STATUS_CODES[s.status_code] ?? 'UNSET');
  put('status_message', s.status_message);
  put('duration_ms', Number(BigInt(s.end_ns) - BigInt(s.start_ns)) / 1e6);
  put('start_time', new Date(Number(BigInt(s.start_ns) / 1_000_000n)));
  put('service', s.service_name);
  put('agent', s.agent_name);
  put('model', s.model);
  put('tool', s.tool_name);
  put('operation', s.operation_name);
  put('input_tokens', s.input_tokens === null ? null : BigInt(s.input_tokens));
  put('output_tokens', s.output_tokens === null ? null : BigInt(s.output_tokens));
  put('cost_usd', s.cost_usd === null ? null : Number(s.cost_usd));
  put('trace_id', s.trace_id);
  put('span_id', s.span_id);
  put('is_llm', s.is_llm);
  put('is_tool', s.is_tool);
  span.set('resource', nativeMap(s.resource_attributes));
  return { attrs: nativeMap(s.attributes), span, name: s.name, now };
}

/** Evaluate a compiled expression; never throws. */
export function evaluateProgram(program: Program, activation: Activation): Outcome {
  try {
    const v: unknown = program(activation);
    if (v === true) return { kind: 'match' };
    if (v === false) return { kind: 'no_match' };
    return { kind: 'error', message: `match_expression evaluated to ${typeof v === 'bigint' ? 'an int' : typeof v}, not a bool` };
  } catch (err) {
    if ((err as { code?: unknown }).code === 'no_such_key') return { kind: 'no_match' };
    // The first line is the message; the rest is cel-js's source highlight.
    return { kind: 'error', message: errorText(err).split('\n')[0] ?? 'evaluation failed' };
  }
}
