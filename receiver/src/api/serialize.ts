// Stored rows → the JSON shapes of SPEC §7.3 (Strathon's field names).
// - ids: lowercase hex; times: RFC 3339 UTC with nanoseconds plus `*_unix_nano`.
// - `*_unix_nano` and token counts are JSON numbers when they fit in 2^53 - 1, else decimal
//   strings (real nanosecond timestamps, ~1.7e18, are always strings: JSON numbers would be
//   rounded by every JavaScript client).
// - intervention_state: computed by the queries (query/spans.ts, query/traces.ts) from the SDK's
//   `strathon.agent.intervention.state` attribute and from this receiver's halt policies that acted.
// - money: decimal strings without trailing zeros ("0.006", "0"); a span's cost_usd is "0" when
//   it is no LLM call and null only for an LLM call whose model has no price.
// - attribute maps: plain JSON (int64 beyond ±2^53 as a decimal string, bytes as base64,
//   arrays as arrays, kvlists as objects, non-finite doubles as "NaN"/"Infinity").
import type { SpanDetailRow, SpanSummaryRow, EventRow, LinkRow } from '../query/spans.js';
import type { TraceRow } from '../query/traces.js';

export const SPAN_KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;
export const STATUS_CODES = ['UNSET', 'OK', 'ERROR'] as const;

/** An id as bytea (Buffer) or as the lowercase hex Postgres built (query/traces.ts traceWithSpans). */
type Id = Buffer | string;
const hexOf = (b: Id): string => (typeof b === 'string' ? b : b.toString('hex'));
const hex = (b: Id | null | undefined): string | null => (b === null || b === undefined ? null : hexOf(b));
/** A row whose ids may be hex already. */
type HexIds<T> = Omit<T, 'trace_id' | 'span_id' | 'parent_span_id'> & { trace_id: Id; span_id: Id; parent_span_id: Id | null };

/** An integer from Postgres (int8 text or number) as a JSON number when exact, else a string. */
export function jsonInt(v: string | number | bigint | null | undefined): number | string | null {
  if (v === null || v === undefined) return null;
  const b = BigInt(v);
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b.toString();
}

/** A numeric from Postgres as a decimal string without trailing zeros. */
export function money(v: string | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  if (!v.includes('.')) return v;
  const t = v.replace(/0+$/, '').replace(/\.$/, '');
  return t === '' || t === '-0' ? '0' : t;
}

/** Nanoseconds since the epoch → RFC 3339 UTC with all nine fractional digits. */
export function rfc3339(ns: string | bigint | null | undefined): string | null {
  if (ns === null || ns === undefined) return null;
  const n = BigInt(ns);
  const secs = n / 1_000_000_000n;
  const frac = (n % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(Number(secs) * 1000).toISOString().slice(0, 19)}.${frac}Z`;
}

/** (end - start) in milliseconds, with microsecond resolution. */
export function durationMs(startNs: string, endNs: string): number {
  return Number((BigInt(endNs) - BigInt(startNs)) / 1000n) / 1000;
}

/** One stored OTLP AnyValue (`{"intValue": "5"}` …) → a plain JSON value. */
export function plainValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if ('stringValue' in o) return o.stringValue;
  if ('boolValue' in o) return o.boolValue;
  if ('intValue' in o) return jsonInt(String(o.intValue));
  if ('doubleValue' in o) return o.doubleValue;
  if ('bytesValue' in o) return o.bytesValue;
  if ('arrayValue' in o) {
    const values = (o.arrayValue as { values?: unknown[] } | null)?.values ?? [];
    return values.map(plainValue);
  }
  if ('kvlistValue' in o) {
    const values = (o.kvlistValue as { values?: { key: string; value: unknown }[] } | null)?.values ?? [];
    const out: Record<string, unknown> = {};
    for (const kv of values) out[kv.key] = plainValue(kv.value);
    return out;
  }
  return null;
}

export function plainAttributes(attrs: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof attrs !== 'object' || attrs === null) return out;
  for (const [k, v] of Object.entries(attrs)) out[k] = plainValue(v);
  return out;
}

export function traceJson(t: TraceRow, projectId: string) {
  return {
    trace_id: t.trace_id.toString('hex'),
    project_id: projectId,
    start_time: rfc3339(t.start_time_unix_nano),
    end_time: rfc3339(t.end_time_unix_nano),
    start_time_unix_nano: jsonInt(t.start_time_unix_nano),
    end_time_unix_nano: jsonInt(t.end_time_unix_nano),
    duration_ms: durationMs(t.start_time_unix_nano, t.end_time_unix_nano),
    agent_name: t.agent_name,
    // Strathon's workflow name comes from its own SDK attribute, which this receiver does not extract.
    workflow_name: null,
    root_name: t.root_name,
    root_span_id: hex(t.root_span_id),
    service_name: t.service_name,
    span_count: t.span_count,
    error_count: t.error_count,
    status: t.error_count > 0 ? 'error' : 'ok',
    llm_span_count: t.llm_span_count,
    tool_span_count: t.tool_span_count,
    input_tokens: jsonInt(t.input_tokens),
    output_tokens: jsonInt(t.output_tokens),
    total_cost_usd: money(t.cost_usd),
    models: t.models,
    intervention_state: t.intervention_state,
  };
}

function spanCore(s: HexIds<SpanSummaryRow>) {
  // A span that is no LLM call costs nothing; null is kept for an LLM call that could not be priced.
  const cost = money(s.cost_usd) ?? (s.is_llm ? null : '0');
  return {
    span_id: hexOf(s.span_id),
    parent_span_id: hex(s.parent_span_id),
    name: s.name,
    kind: SPAN_KINDS[s.kind] ?? 'UNSPECIFIED',
    start_time: rfc3339(s.start_time_unix_nano),
    end_time: rfc3339(s.end_time_unix_nano),
    start_time_unix_nano: jsonInt(s.start_time_unix_nano),
    end_time_unix_nano: jsonInt(s.end_time_unix_nano),
    duration_ms: durationMs(s.start_time_unix_nano, s.end_time_unix_nano),
    status_code: STATUS_CODES[s.status_code] ?? 'UNSET',
    service_name: s.service_name,
    agent_name: s.agent_name,
    tool_name: s.tool_name,
    request_model: s.model,
    provider_name: s.provider,
    operation_name: s.operation_name,
    is_llm: s.is_llm,
    is_tool: s.is_tool,
    input_tokens: jsonInt(s.input_tokens),
    output_tokens: jsonInt(s.output_tokens),
    cost_usd: cost,
    intervention_state: s.intervention_state,
  };
}

export type TreeNode = ReturnType<typeof spanCore> & { children: TreeNode[] };

export function treeNodeJson(s: SpanSummaryRow): TreeNode {
  return { ...spanCore(s), children: [] };
}

export function eventJson(e: Pick<EventRow, 'time_unix_nano' | 'name' | 'attributes' | 'dropped_attributes_count'>) {
  return {
    name: e.name,
    time: rfc3339(e.time_unix_nano),
    time_unix_nano: jsonInt(e.time_unix_nano),
    attributes: plainAttributes(e.attributes),
    dropped_attributes_count: e.dropped_attributes_count,
  };
}

export function linkJson(l: Omit<LinkRow, 'trace_id' | 'span_id' | 'st' | 'linked_trace_id' | 'linked_span_id'> & { linked_trace_id: Id; linked_span_id: Id }) {
  return {
    trace_id: hexOf(l.linked_trace_id),
    span_id: hexOf(l.linked_span_id),
    trace_state: l.trace_state,
    attributes: plainAttributes(l.attributes),
    dropped_attributes_count: l.dropped_attributes_count,
    flags: jsonInt(l.flags),
  };
}

/** The full span of SPEC §7.3 (`cost` as Strathon's object and `cost_usd` as the CLI's string). */
export function spanJson(s: HexIds<Omit<SpanDetailRow, 'cursor_time' | 'event_count' | 'link_count'>>, projectId: string, events: ReturnType<typeof eventJson>[], links: ReturnType<typeof linkJson>[]) {
  const core = spanCore(s);
  const input = core.input_tokens;
  const output = core.output_tokens;
  const total = input === null && output === null ? null : jsonInt(BigInt(s.input_tokens ?? 0) + BigInt(s.output_tokens ?? 0));
  return {
    trace_id: hexOf(s.trace_id),
    ...core,
    project_id: projectId,
    status_message: s.status_message,
    trace_state: s.trace_state,
    flags: jsonInt(s.flags),
    tokens: { input_tokens: input, output_tokens: output, total_tokens: total },
    cost: { cost_usd: core.cost_usd },
    attributes: plainAttributes(s.attributes),
    dropped_attributes_count: s.dropped_attributes_count,
    resource: {
      attributes: plainAttributes(s.resource_attributes),
      dropped_attributes_count: s.resource_dropped_attributes_count,
      schema_url: s.resource_schema_url,
    },
    scope: {
      name: s.scope_name,
      version: s.scope_version,
      attributes: plainAttributes(s.scope_attributes),
      dropped_attributes_count: s.scope_dropped_attributes_count,
      schema_url: s.scope_schema_url,
    },
    events,
    links,
    dropped_events_count: s.dropped_events_count,
    dropped_links_count: s.dropped_links_count,
  };
}
