// A closure compiler for the common subset of match expressions, from cel-js's parse tree. It reads
// the span as stored (no activation) and gives cel-js's outcome: each closure returns a value or a
// sentinel, NO_KEY (absent key or field: cel-js's no_such_key) or FALLBACK (anything it does not
// decide: an unhandled type combination, an overflow, a failing regex, a thrown exception). At the
// top, true/false decide; NO_KEY is a non-match (as evaluateProgram maps no_such_key); FALLBACK
// means "evaluate with cel-js". && and || absorb errors both ways, as cel-js does (false && err).
// An expression with any node outside the subset compiles to null (always cel-js).
//
// readKeys() tells which attribute and resource keys an expression can read, so the caller can send
// the evaluation thread only those.
import type { ASTNode } from '@marcbachmann/cel-js';
import type { TypedValue } from '../ingest/normalize.js';
import { nativeValue, re2ToRegExp, type SpanInput } from './cel.js';

export const NO_KEY: unique symbol = Symbol('no_key');
export const FALLBACK: unique symbol = Symbol('fallback');

/** One span's evaluation context: the stored span and the evaluation time. */
export interface FastContext { s: SpanInput; now: Date }

/** true = match, false = no match, FALLBACK = evaluate with cel-js. */
export type FastProgram = (c: FastContext) => boolean | typeof FALLBACK;

type Fn = (c: FastContext) => unknown;

const SPAN_KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS_CODES = ['UNSET', 'OK', 'ERROR'];
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const nullable = (v: unknown): unknown => (v === null || v === undefined ? NO_KEY : v);

/** span.<field> as activationFor builds it; absent (null) facts are NO_KEY. Values cel-js keeps as objects fall back. */
const SPAN_FIELDS: Record<string, (s: SpanInput) => unknown> = {
  name: (s) => nullable(s.name),
  kind: (s) => SPAN_KINDS[s.kind] ?? 'UNSPECIFIED',
  status: (s) => STATUS_CODES[s.status_code] ?? 'UNSET',
  status_message: (s) => nullable(s.status_message),
  duration_ms: (s) => Number(BigInt(s.end_ns) - BigInt(s.start_ns)) / 1e6,
  start_time: () => FALLBACK,
  service: (s) => nullable(s.service_name),
  agent: (s) => nullable(s.agent_name),
  model: (s) => nullable(s.model),
  tool: (s) => nullable(s.tool_name),
  operation: (s) => nullable(s.operation_name),
  input_tokens: (s) => (s.input_tokens === null ? NO_KEY : BigInt(s.input_tokens)),
  output_tokens: (s) => (s.output_tokens === null ? NO_KEY : BigInt(s.output_tokens)),
  cost_usd: (s) => (s.cost_usd === null ? NO_KEY : Number(s.cost_usd)),
  trace_id: (s) => nullable(s.trace_id),
  span_id: (s) => nullable(s.span_id),
  is_llm: (s) => nullable(s.is_llm),
  is_tool: (s) => nullable(s.is_tool),
  resource: () => FALLBACK,
};

const NOW_GETTERS: Record<string, (d: Date) => number> = {
  getHours: (d) => d.getUTCHours(),
  getMinutes: (d) => d.getUTCMinutes(),
  getSeconds: (d) => d.getUTCSeconds(),
  getDayOfWeek: (d) => d.getUTCDay(),
  getFullYear: (d) => d.getUTCFullYear(),
  getMonth: (d) => d.getUTCMonth(),
  getDayOfMonth: (d) => d.getUTCDate() - 1,
  getDate: (d) => d.getUTCDate(),
};

const isSentinel = (v: unknown): v is typeof NO_KEY | typeof FALLBACK => v === NO_KEY || v === FALLBACK;
/** Two operands, either a sentinel: FALLBACK wins over NO_KEY. */
const either = (a: unknown, b: unknown): typeof NO_KEY | typeof FALLBACK => (a === FALLBACK || b === FALLBACK ? FALLBACK : NO_KEY);

function lookup(map: Record<string, TypedValue>, key: string): unknown {
  return Object.hasOwn(map, key) ? nativeValue(map[key]) : NO_KEY;
}

class Unsupported extends Error {}

function isNode(v: unknown): v is ASTNode {
  return typeof v === 'object' && v !== null && 'op' in v;
}

function node(v: unknown): ASTNode {
  if (!isNode(v)) throw new Unsupported();
  return v;
}

/** The literal string of a `value` node, else undefined. */
function literalString(n: unknown): string | undefined {
  return isNode(n) && n.op === 'value' && typeof n.args === 'string' ? n.args : undefined;
}

const isId = (n: unknown, name: string): boolean => isNode(n) && n.op === 'id' && n.args === name;

/** `span.resource` or `span["resource"]`. */
function isResource(n: unknown): boolean {
  if (!isNode(n) || (n.op !== '.' && n.op !== '[]')) return false;
  const [obj, key] = n.args as [unknown, unknown];
  return isId(obj, 'span') && (n.op === '.' ? key === 'resource' : literalString(key) === 'resource');
}

/** The key of a `.field` or `["literal"]` access, else undefined. */
function accessKey(n: ASTNode): string | undefined {
  const key = (n.args as unknown[])[1];
  return n.op === '.' ? (typeof key === 'string' ? key : undefined) : literalString(key);
}

type Container = 'attrs' | 'span' | 'resource';

function containerOf(n: unknown): Container | undefined {
  if (isId(n, 'attrs')) return 'attrs';
  if (isId(n, 'span')) return 'span';
  if (isResource(n)) return 'resource';
  return undefined;
}

/** container[key] of one span: its value, NO_KEY when absent. */
function read(container: Container, key: string, s: SpanInput): unknown {
  if (container === 'attrs') return lookup(s.attributes, key);
  if (container === 'resource') return lookup(s.resource_attributes, key);
  const get = Object.hasOwn(SPAN_FIELDS, key) ? SPAN_FIELDS[key] as (s: SpanInput) => unknown : undefined;
  return get ? get(s) : NO_KEY;
}

/** container[key] for a key known when compiling: a span field is resolved once. */
function reader(container: Container, key: string): Fn {
  if (container !== 'span') return (c) => read(container, key, c.s);
  const get = Object.hasOwn(SPAN_FIELDS, key) ? SPAN_FIELDS[key] as (s: SpanInput) => unknown : undefined;
  return get ? (c) => get(c.s) : () => NO_KEY;
}

/** `key in container` of one span. */
function has(container: Container, key: string, s: SpanInput): boolean {
  if (container === 'attrs') return Object.hasOwn(s.attributes, key);
  if (container === 'resource') return Object.hasOwn(s.resource_attributes, key);
  if (key === 'resource') return true;
  const v = read('span', key, s);
  return v === FALLBACK ? true : v !== NO_KEY;
}

function equal(a: unknown, b: unknown): unknown {
  if (isSentinel(a) || isSentinel(b)) return either(a, b);
  const t = typeof a;
  if (t !== typeof b) return FALLBACK;
  if (t === 'string' || t === 'bigint' || t === 'number' || t === 'boolean') return a === b;
  if (a === null && b === null) return true;
  return FALLBACK;
}

type Cmp = (a: never, b: never) => boolean;
const COMPARE: Record<string, Cmp> = {
  '<': (a: string, b: string) => a < b,
  '<=': (a: string, b: string) => a <= b,
  '>': (a: string, b: string) => a > b,
  '>=': (a: string, b: string) => a >= b,
};

function compare(cmp: Cmp, a: unknown, b: unknown): unknown {
  if (isSentinel(a) || isSentinel(b)) return either(a, b);
  const t = typeof a;
  if (t !== typeof b || (t !== 'string' && t !== 'bigint' && t !== 'number' && t !== 'boolean')) return FALLBACK;
  return cmp(a as never, b as never);
}

const int64 = (v: bigint): unknown => (v > INT64_MAX || v < INT64_MIN ? FALLBACK : v);

function arith(op: '+' | '-', a: unknown, b: unknown): unknown {
  if (isSentinel(a) || isSentinel(b)) return either(a, b);
  if (typeof a === 'bigint' && typeof b === 'bigint') return int64(op === '+' ? a + b : a - b);
  if (typeof a === 'number' && typeof b === 'number') return op === '+' ? a + b : a - b;
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  return FALLBACK;
}

const STRING_METHODS: Record<string, (s: string, arg: string) => boolean> = {
  contains: (s, a) => s.includes(a),
  startsWith: (s, a) => s.startsWith(a),
  endsWith: (s, a) => s.endsWith(a),
  matchesRe2: (s, a) => re2ToRegExp(a).test(s),
};

function literal(v: unknown): Fn {
  if (v === null || typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return () => v;
  throw new Unsupported();
}

function compileIn(leftNode: unknown, rightNode: unknown): Fn {
  const left = compileNode(leftNode);
  const right = node(rightNode);
  const container = containerOf(right);
  if (container) {
    const key = literalString(leftNode);
    if (key !== undefined) return (c) => has(container, key, c.s);
    return (c) => {
      const k = left(c);
      if (isSentinel(k)) return k;
      if (typeof k !== 'string') return FALLBACK;
      return has(container, k, c.s);
    };
  }
  if (right.op !== 'list') throw new Unsupported();
  const items = (right.args as unknown[]).map((e) => {
    const n = node(e);
    if (n.op !== 'value') throw new Unsupported();
    literal(n.args);
    return n.args;
  });
  // Membership is == per element: decided here only when every element has the left side's type.
  const types = new Set(items.map((v) => (v === null ? 'null' : typeof v)));
  const only = types.size === 1 ? [...types][0] : undefined;
  const set = new Set<unknown>(items);
  return (c) => {
    const v = left(c);
    if (isSentinel(v)) return v;
    if (items.length === 0) return FALLBACK;
    const t = v === null ? 'null' : typeof v;
    if (t !== only || t === 'null') return FALLBACK;
    return t === 'number' ? items.some((x) => x === v) : set.has(v);
  };
}

function compileNode(raw: unknown): Fn {
  const n = node(raw);
  const args = n.args as unknown;
  switch (n.op) {
    case 'value':
      return literal(args);
    case 'id':
      if (args === 'name') return (c) => c.s.name;
      throw new Unsupported();
    case '.':
    case '[]': {
      const [obj, keyNode] = args as [unknown, unknown];
      const container = containerOf(obj);
      if (!container) throw new Unsupported();
      const key = accessKey(n);
      if (key !== undefined) return reader(container, key);
      if (n.op !== '[]') throw new Unsupported();
      const dyn = compileNode(keyNode);
      return (c) => {
        const k = dyn(c);
        if (isSentinel(k)) return k;
        if (typeof k !== 'string') return FALLBACK;
        return read(container, k, c.s);
      };
    }
    case '==':
    case '!=': {
      const [a, b] = (args as unknown[]).map(compileNode) as [Fn, Fn];
      if (n.op === '==') return (c) => equal(a(c), b(c));
      return (c) => {
        const r = equal(a(c), b(c));
        return typeof r === 'boolean' ? !r : r;
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const cmp = COMPARE[n.op] as Cmp;
      const [a, b] = (args as unknown[]).map(compileNode) as [Fn, Fn];
      return (c) => compare(cmp, a(c), b(c));
    }
    case '+':
    case '-': {
      const op = n.op;
      const [a, b] = (args as unknown[]).map(compileNode) as [Fn, Fn];
      return (c) => arith(op, a(c), b(c));
    }
    case '-_': {
      const a = compileNode(args);
      return (c) => {
        const v = a(c);
        if (isSentinel(v)) return v;
        if (typeof v === 'bigint') return int64(-v);
        if (typeof v === 'number') return -v;
        return FALLBACK;
      };
    }
    case '!_': {
      const a = compileNode(args);
      return (c) => {
        const v = a(c);
        if (typeof v === 'boolean') return !v;
        return v === NO_KEY ? NO_KEY : FALLBACK;
      };
    }
    case '&&':
    case '||': {
      const [a, b] = (args as unknown[]).map(compileNode) as [Fn, Fn];
      const decisive = n.op === '||';
      return (c) => {
        const x = a(c);
        if (x === decisive) return decisive;
        const y = b(c);
        if (y === decisive) return decisive;
        if (typeof x === 'boolean' && typeof y === 'boolean') return !decisive;
        // Neither side decided: NO_KEY when every non-bool side is NO_KEY; any other value is an error (FALLBACK).
        return (x === NO_KEY || typeof x === 'boolean') && (y === NO_KEY || typeof y === 'boolean') ? NO_KEY : FALLBACK;
      };
    }
    case '?:': {
      const [cond, yes, no] = (args as unknown[]).map(compileNode) as [Fn, Fn, Fn];
      return (c) => {
        const v = cond(c);
        if (v === true) return yes(c);
        if (v === false) return no(c);
        return v === NO_KEY ? NO_KEY : FALLBACK;
      };
    }
    case 'in': {
      const [a, b] = args as [unknown, unknown];
      return compileIn(a, b);
    }
    case 'call': {
      const [fn, fnArgs] = args as [unknown, unknown[]];
      const target = fnArgs[0];
      if (fn !== 'has' || fnArgs.length !== 1 || !isNode(target) || target.op !== '.') throw new Unsupported();
      const container = containerOf((target.args as unknown[])[0]);
      const key = accessKey(target);
      if (!container || key === undefined) throw new Unsupported();
      return (c) => has(container, key, c.s);
    }
    case 'rcall': {
      const [method, receiver, callArgs] = args as [unknown, unknown, unknown[]];
      if (typeof method !== 'string') throw new Unsupported();
      if (isId(receiver, 'now')) {
        const get = Object.hasOwn(NOW_GETTERS, method) ? NOW_GETTERS[method] : undefined;
        if (!get || callArgs.length !== 0) throw new Unsupported();
        return (c) => BigInt(get(c.now));
      }
      const fn = Object.hasOwn(STRING_METHODS, method) ? STRING_METHODS[method] : undefined;
      if (!fn || callArgs.length !== 1) throw new Unsupported();
      const recv = compileNode(receiver);
      const arg = compileNode(callArgs[0]);
      return (c) => {
        const s = recv(c);
        const a = arg(c);
        if (isSentinel(s) || isSentinel(a)) return either(s, a);
        if (typeof s !== 'string' || typeof a !== 'string') return FALLBACK;
        return fn(s, a);
      };
    }
    default:
      throw new Unsupported();
  }
}

/** The closure program for a parsed (and RE2-rewritten) expression, or null when it must run on cel-js. */
export function compileFast(ast: ASTNode): FastProgram | null {
  let fn: Fn;
  try {
    fn = compileNode(ast);
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
  return (c) => {
    try {
      const v = fn(c);
      if (v === true || v === false) return v;
      return v === NO_KEY ? false : FALLBACK;
    } catch {
      return FALLBACK;
    }
  };
}

// ---- which keys an expression reads -------------------------------------------------------------

/** Attribute and resource keys an expression can read; 'all' when it reads a map other than by literal key. */
export interface ReadKeys { attrs: Set<string> | 'all'; resource: Set<string> | 'all' }

export function readKeys(ast: ASTNode): ReadKeys {
  const out: ReadKeys = { attrs: new Set(), resource: new Set() };
  const add = (container: Container, key: string) => {
    const set = container === 'attrs' ? out.attrs : container === 'resource' ? out.resource : undefined;
    if (set && set !== 'all') set.add(key);
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (!isNode(v)) return;
    if (v.op === '.' || v.op === '[]') {
      const obj = (v.args as unknown[])[0];
      const container = containerOf(obj);
      const key = accessKey(v);
      if (container && key !== undefined) {
        // span.resource itself is a map value: all of it.
        if (container === 'span' && key === 'resource') out.resource = 'all';
        add(container, key);
        return;
      }
    }
    if (v.op === 'in') {
      const [left, right] = v.args as [unknown, unknown];
      const key = literalString(left);
      const container = containerOf(right);
      if (key !== undefined && container) {
        add(container, key);
        return;
      }
    }
    if (isId(v, 'attrs')) out.attrs = 'all';
    if (isId(v, 'span')) out.resource = 'all';
    walk(v.args);
  };
  walk(ast);
  return out;
}
