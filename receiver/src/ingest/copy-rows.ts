// Normalized rows → COPY text (tab-separated, \N for null, backslash escapes), in the column order of
// batch-sql.ts. Encoded once per request when it is queued: the queue then holds these compact bytes
// instead of the row objects, and its byte bound counts exactly what it holds.
import type { EventRow, LinkRow, SpanRow, TypedAttributes } from './normalize.js';

/**
 * One request's rows, ready for the writer's COPY statements (events/links null when there are none);
 * `traceParts` holds one row per trace of the request, its part of the trace summary.
 */
export interface CopyRows { spans: Buffer; traceParts: Buffer; events: Buffer | null; links: Buffer | null; spanCount: number; bytes: number }

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_G = /[\\\n\r\t]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeChar = (c: string) => ESCAPES[c] as string;

/** Free text: the four characters COPY treats specially are escaped, everything else goes as is. */
function text(s: string | null): string {
  if (s === null) return '\\N';
  return SPECIAL.test(s) ? s.replace(SPECIAL_G, escapeChar) : s;
}

/** A hex id as a bytea literal (\x…, its backslash doubled for COPY). */
function bytea(hex: string | null): string {
  return hex === null ? '\\N' : `\\\\x${hex}`;
}

function num(n: number | bigint | string | null): string {
  return n === null ? '\\N' : `${n}`;
}

/** JSON text escapes every control character itself: only its backslashes need doubling. */
function json(v: TypedAttributes | null): string {
  if (v === null) return '\\N';
  const t = JSON.stringify(v);
  return t.includes('\\') ? t.replaceAll('\\', '\\\\') : t;
}

/** A decimal nanosecond count (no leading zeros) → milliseconds and the nanoseconds within. */
function msOf(ns: string): number {
  return ns.length > 6 ? Number(ns.slice(0, -6)) : 0;
}
function subOf(ns: string): number {
  return ns.length > 6 ? Number(ns.slice(-6)) : Number(ns);
}

/** Canonical decimals (no leading zeros) compare by length, then text. */
function decimalLess(a: string, b: string): boolean {
  return a.length < b.length || (a.length === b.length && a < b);
}

/** Exact sum of integers: doubles while safe, BigInt beyond. */
function add(acc: number | bigint | null, n: number | bigint): number | bigint {
  if (acc === null) return n;
  if (typeof acc === 'number' && typeof n === 'number') {
    const r = acc + n;
    if (Math.abs(r) <= Number.MAX_SAFE_INTEGER) return r;
  }
  return BigInt(acc) + BigInt(n);
}

const COST_FIXED = /^\d{1,5}\.\d{10}$/;
const COST_DECIMAL = /^([-+]?)(\d*)(?:\.(\d*))?$/;

/**
 * A cost_usd → count of 1e-10 USD, rounded as the numeric(20, 10) column stores it (half away from
 * zero). genai.ts writes digits '.' 10 digits; any other decimal is handled too.
 */
function costUnits(cost: string): number | bigint {
  if (COST_FIXED.test(cost)) return Number(cost.slice(0, -11) + cost.slice(-10));
  const m = COST_DECIMAL.exec(cost);
  if (!m || (m[2] === '' && !m[3])) throw new Error(`cost_usd is not a decimal: ${cost}`);
  const frac = (m[3] ?? '').padEnd(11, '0');
  let units = BigInt(`${m[2]}${frac.slice(0, 10)}`);
  if (frac.charCodeAt(10) >= 53) units++; // '5'
  return m[1] === '-' ? -units : units;
}

function costText(units: number | bigint): string {
  const negative = units < 0;
  const s = `${negative ? -units : units}`.padStart(11, '0');
  return `${negative ? '-' : ''}${s.slice(0, -10)}.${s.slice(-10)}`;
}

/** COPY text of a text[] literal: each element quoted, its quotes and backslashes escaped. */
function textArray(values: string[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as string;
    out += `${i ? ',' : ''}"${v.includes('"') || v.includes('\\') ? v.replace(/["\\]/g, '\\$&') : v}"`;
  }
  return text(`${out}}`);
}

/** One request's part of a trace summary (TRACE_PART_COLUMNS). */
interface TracePart {
  projectId: string; traceId: string; key: string; startTime: string; startNs: string; endNs: string;
  // The span with the latest end (start_time + whole µs of duration): that end as ms + µs within.
  endMs: number; endUs: number; endSpan: SpanRow;
  rootName: string | null; rootSpanId: string | null; rootService: string | null; rootAgent: string | null;
  anyService: string | null; anyAgent: string | null;
  spans: number; errors: number; llm: number; tool: number;
  inputTokens: number | bigint | null; outputTokens: number | bigint | null; cost: number | bigint | null; models: string[] | null;
}

/** Whole µs between a span's start_time (µs-truncated start) and end, exactly (the SQL's duration / 1000). */
function durationUs(r: SpanRow): string {
  const msDiff = msOf(r.end_ns) - msOf(r.start_ns);
  const subUs = Math.floor((subOf(r.end_ns) - subOf(r.start_ns)) / 1000);
  return msDiff < 9e12 ? `${msDiff * 1000 + subUs}` : `${BigInt(msDiff) * 1000n + BigInt(subUs)}`;
}

function addToPart(p: TracePart, r: SpanRow): void {
  if (decimalLess(r.start_ns, p.startNs)) {
    p.startNs = r.start_ns;
    p.startTime = r.start_time;
  }
  if (decimalLess(p.endNs, r.end_ns)) p.endNs = r.end_ns;
  // end_time = start_time + floor((end - start) / 1000) µs = end ms + floor(start sub / 1000) + floor((end sub - start sub) / 1000) µs.
  const startSub = subOf(r.start_ns);
  const us = Math.floor(startSub / 1000) + Math.floor((subOf(r.end_ns) - startSub) / 1000);
  const carry = Math.floor(us / 1000);
  const endMs = msOf(r.end_ns) + carry;
  const endUs = us - carry * 1000;
  if (endMs > p.endMs || (endMs === p.endMs && endUs > p.endUs)) {
    p.endMs = endMs;
    p.endUs = endUs;
    p.endSpan = r;
  }
  if (r.parent_span_id === null) {
    if (p.rootSpanId === null) {
      p.rootSpanId = r.span_id;
      p.rootName = r.name;
    }
    p.rootService ??= r.service_name;
    p.rootAgent ??= r.agent_name;
  }
  p.anyService ??= r.service_name;
  p.anyAgent ??= r.agent_name;
  p.spans++;
  if (r.status_code === 2) p.errors++;
  if (r.is_llm) p.llm++;
  if (r.is_tool) p.tool++;
  if (r.input_tokens !== null) p.inputTokens = add(p.inputTokens, r.input_tokens);
  if (r.output_tokens !== null) p.outputTokens = add(p.outputTokens, r.output_tokens);
  if (r.cost_usd !== null) p.cost = add(p.cost, costUnits(r.cost_usd));
  if (r.model !== null) {
    if (p.models === null) p.models = [r.model];
    else if (!p.models.includes(r.model)) p.models.push(r.model);
  }
}

function newPart(key: string, r: SpanRow): TracePart {
  return {
    projectId: r.project_id, traceId: r.trace_id, key, startTime: r.start_time, startNs: r.start_ns, endNs: r.end_ns, endMs: -Infinity, endUs: 0, endSpan: r,
    rootName: null, rootSpanId: null, rootService: null, rootAgent: null, anyService: null, anyAgent: null,
    spans: 0, errors: 0, llm: 0, tool: 0, inputTokens: null, outputTokens: null, cost: null, models: null,
  };
}

function encodePart(p: TracePart): string {
  return `${p.key}\t${p.startTime}\t${p.startNs}\t${p.endNs}\t${p.endSpan.start_time}\t${durationUs(p.endSpan)}\t`
    + `${text(p.rootName)}\t${bytea(p.rootSpanId)}\t${text(p.rootService)}\t${text(p.rootAgent)}\t${text(p.anyService)}\t${text(p.anyAgent)}\t`
    + `${p.spans}\t${p.errors}\t${p.llm}\t${p.tool}\t${num(p.inputTokens)}\t${num(p.outputTokens)}\t${p.cost === null ? '\\N' : costText(p.cost)}\t`
    + `${p.models === null ? '\\N' : textArray(p.models)}\n`;
}

/** Spans → [rows of SPAN_COLUMNS, rows of TRACE_PART_COLUMNS: one per trace] (batch-sql.ts). */
export function encodeSpans(rows: SpanRow[]): [string, string] {
  let out = '';
  const parts = new Map<string, TracePart>();
  let part: TracePart | undefined;
  // Spans of one resource (and scope) share its attributes object: serialize it once.
  let resource: TypedAttributes | undefined;
  let resourceText = '';
  let scope: TypedAttributes | null | undefined;
  let scopeText = '';
  for (const r of rows) {
    if (r.resource_attributes !== resource) {
      resource = r.resource_attributes;
      resourceText = json(resource);
    }
    if (r.scope_attributes !== scope) {
      scope = r.scope_attributes;
      scopeText = json(scope);
    }
    // Spans of a trace mostly come one after another: look the part up only when the trace changes.
    if (part === undefined || r.trace_id !== part.traceId || r.project_id !== part.projectId) {
      const key = `${r.project_id}\t\\\\x${r.trace_id}`;
      part = parts.get(key);
      if (!part) parts.set(key, (part = newPart(key, r)));
    }
    addToPart(part, r);
    const name = text(r.name);
    const service = text(r.service_name);
    const agent = text(r.agent_name);
    const model = text(r.model);
    out += `${part.key}\t\\\\x${r.span_id}\t${r.start_time}\t${bytea(r.parent_span_id)}\t${text(r.trace_state)}\t${name}\t${r.kind}\t${r.start_ns}\t${r.end_ns}\t`
      + `${r.status_code}\t${text(r.status_message)}\t${num(r.flags)}\t${resourceText}\t${r.resource_dropped}\t${text(r.resource_schema_url)}\t${text(r.scope_name)}\t${text(r.scope_version)}\t`
      + `${scopeText}\t${r.scope_dropped}\t${text(r.scope_schema_url)}\t${json(r.attributes)}\t${r.dropped_attributes}\t${r.dropped_events}\t${r.dropped_links}\t${r.event_count}\t${r.link_count}\t`
      + `${service}\t${agent}\t${model}\t${text(r.provider)}\t${text(r.operation_name)}\t${text(r.tool_name)}\t`
      + `${num(r.input_tokens)}\t${num(r.output_tokens)}\t${num(r.cost_usd)}\t${r.is_llm ? 't' : 'f'}\t${r.is_tool ? 't' : 'f'}\n`;
  }
  let partsText = '';
  for (const p of parts.values()) partsText += encodePart(p);
  return [out, partsText];
}

export function encodeEvents(rows: EventRow[]): string {
  let out = '';
  for (const e of rows) {
    out += `${e.project_id}\t\\\\x${e.trace_id}\t\\\\x${e.span_id}\t${e.span_start_time}\t${e.idx}\t${e.time_ns}\t${text(e.name)}\t${json(e.attributes)}\t${e.dropped}\n`;
  }
  return out;
}

export function encodeLinks(rows: LinkRow[]): string {
  let out = '';
  for (const l of rows) {
    out += `${l.project_id}\t\\\\x${l.trace_id}\t\\\\x${l.span_id}\t${l.span_start_time}\t${l.idx}\t\\\\x${l.linked_trace_id}\t\\\\x${l.linked_span_id}\t`
      + `${text(l.trace_state)}\t${json(l.attributes)}\t${l.dropped}\t${num(l.flags)}\n`;
  }
  return out;
}

export function encodeRows(spans: SpanRow[], events: EventRow[], links: LinkRow[]): CopyRows {
  const [spanText, partsText] = encodeSpans(spans);
  const s = Buffer.from(spanText);
  const m = Buffer.from(partsText);
  const e = events.length ? Buffer.from(encodeEvents(events)) : null;
  const l = links.length ? Buffer.from(encodeLinks(links)) : null;
  return { spans: s, traceParts: m, events: e, links: l, spanCount: spans.length, bytes: s.byteLength + m.byteLength + (e?.byteLength ?? 0) + (l?.byteLength ?? 0) };
}
