// Decoded OTLP → rows for Postgres. Validates each span (rejects individually, partial_success),
// keeps every OTLP value type (int64 as exact decimal strings), and extracts GenAI columns.
import type Long from 'long';
import type { AnyValueShape, ExportRequestShape, Int64Like, KeyValueShape, SpanShape } from './otlp-wire.js';
import { extractGenAi, type PriceLookup } from './genai.js';
import { keepTrace } from './sampling.js';

/** OTLP JSON-shaped typed value, the storage form of every attribute value. */
export type TypedValue =
  | { stringValue: string } | { boolValue: boolean } | { intValue: string } | { doubleValue: number | string }
  | { bytesValue: string } | { arrayValue: { values: TypedValue[] } } | { kvlistValue: { values: { key: string; value: TypedValue }[] } }
  | Record<string, never>;
export type TypedAttributes = Record<string, TypedValue>;

export interface SpanRow {
  project_id: string; trace_id: string; span_id: string; parent_span_id: string | null; trace_state: string | null;
  name: string; kind: number; start_time: string; start_ns: string; end_ns: string;
  status_code: number; status_message: string | null; flags: string | null;
  resource_attributes: TypedAttributes; resource_dropped: number; resource_schema_url: string | null;
  scope_name: string | null; scope_version: string | null; scope_attributes: TypedAttributes | null; scope_dropped: number; scope_schema_url: string | null;
  attributes: TypedAttributes; dropped_attributes: number; dropped_events: number; dropped_links: number;
  event_count: number; link_count: number;
  service_name: string | null; agent_name: string | null; model: string | null; provider: string | null;
  operation_name: string | null; tool_name: string | null;
  input_tokens: number | null; output_tokens: number | null; cost_usd: string | null; is_llm: boolean; is_tool: boolean;
}
export interface EventRow { project_id: string; trace_id: string; span_id: string; span_start_time: string; idx: number; time_ns: string; name: string; attributes: TypedAttributes; dropped: number }
export interface LinkRow { project_id: string; trace_id: string; span_id: string; span_start_time: string; idx: number; linked_trace_id: string; linked_span_id: string; trace_state: string | null; attributes: TypedAttributes; dropped: number; flags: string | null }

export interface NormalizedBatch {
  spans: SpanRow[]; events: EventRow[]; links: LinkRow[];
  rejected: number; rejectReasons: Map<string, number>; firstErrors: string[]; sampledOut: number;
}

const INT64_MAX = (1n << 63n) - 1n;
const INT32_MAX = 2 ** 31 - 1;
const MAX_ERRORS_REPORTED = 5;

/** OTLP counts are uint32, the columns are integer: saturate rather than fail the whole batch. */
function count32(n: number | undefined | null): number {
  return typeof n === 'number' && Number.isFinite(n) ? Math.min(Math.max(Math.trunc(n), 0), INT32_MAX) : 0;
}

function isLong(v: unknown): v is Long {
  return typeof v === 'object' && v !== null && 'low' in v && 'high' in v;
}

/** Any int64 representation → exact decimal string (or null when absent). */
export function int64String(v: Int64Like | undefined | null): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  // BigInt, not toString: a large double (1e300 in JSON) must not become "1e+300".
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)).toString() : null;
  if (typeof v === 'bigint') return v.toString();
  if (isLong(v)) return v.toString();
  return null;
}

/** Postgres rejects NUL in text/jsonb and lone surrogates in jsonb: replace them, keep the rest. */
export function cleanText(s: string): string {
  if (s.includes('\u0000')) s = s.replaceAll('\u0000', '\uFFFD');
  return s.isWellFormed() ? s : s.toWellFormed();
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

export function typedValue(v: AnyValueShape | null | undefined): TypedValue {
  if (!v) return {};
  if (hasOwn(v, 'stringValue')) return { stringValue: cleanText(v.stringValue ?? '') };
  if (hasOwn(v, 'boolValue')) return { boolValue: !!v.boolValue };
  if (hasOwn(v, 'intValue')) return { intValue: int64String(v.intValue) ?? '0' };
  if (hasOwn(v, 'doubleValue')) {
    const d = typeof v.doubleValue === 'number' ? v.doubleValue : Number(v.doubleValue);
    return { doubleValue: Number.isFinite(d) ? d : String(d) };
  }
  if (hasOwn(v, 'bytesValue')) return { bytesValue: Buffer.from(v.bytesValue ?? []).toString('base64') };
  if (hasOwn(v, 'arrayValue')) return { arrayValue: { values: (v.arrayValue?.values ?? []).map(typedValue) } };
  if (hasOwn(v, 'kvlistValue')) return { kvlistValue: { values: (v.kvlistValue?.values ?? []).map((kv) => ({ key: cleanText(kv.key ?? ''), value: typedValue(kv.value) })) } };
  return {};
}

export function typedAttributes(list: KeyValueShape[] | undefined): TypedAttributes {
  const out: TypedAttributes = {};
  if (!list) return out;
  for (const kv of list) out[cleanText(kv.key ?? '')] = typedValue(kv.value);
  return out;
}

function idHex(v: Uint8Array | string | undefined): string | null {
  if (v === undefined || typeof v === 'string') return null;
  return v.length === 0 ? '' : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
}

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Nanoseconds since the epoch → RFC 3339 with microseconds (timestamptz precision). */
export function nsToTimestamp(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const micros = (((ns / 1000n) % 1000n) + 1000n) % 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 23)}${micros.toString().padStart(3, '0')}Z`;
}

function validateSpan(s: SpanShape): string | { traceId: string; spanId: string; parent: string | null; start: bigint; end: bigint } {
  if (s.invalid) return s.invalid;
  const traceId = idHex(s.traceId);
  if (traceId === null || traceId.length !== 32) return `trace_id must be 16 bytes (got ${traceId === null || traceId === '' ? 'none' : `${traceId.length / 2}`})`;
  if (traceId === ZERO_TRACE) return 'trace_id must not be all zeros';
  const spanId = idHex(s.spanId);
  if (spanId === null || spanId.length !== 16) return `span_id must be 8 bytes (got ${spanId === null || spanId === '' ? 'none' : `${spanId.length / 2}`})`;
  if (spanId === ZERO_SPAN) return 'span_id must not be all zeros';
  let parent = idHex(s.parentSpanId);
  if (parent === '' || parent === ZERO_SPAN) parent = null;
  if (parent !== null && parent.length !== 16) return `parent_span_id must be empty or 8 bytes (got ${parent.length / 2})`;
  const startS = int64String(s.startTimeUnixNano);
  const endS = int64String(s.endTimeUnixNano);
  if (startS === null || startS === '0') return 'start_time_unix_nano is required';
  const start = BigInt(startS);
  const end = endS === null || endS === '0' ? start : BigInt(endS);
  if (start < 0n || start > INT64_MAX || end > INT64_MAX || end < 0n) return 'timestamps must fit in a signed 64-bit nanosecond count';
  if (end < start) return 'end_time_unix_nano is before start_time_unix_nano';
  const events = s.events ?? [];
  for (let e = 0; e < events.length; e++) {
    const t = BigInt(int64String(events[e]?.timeUnixNano) ?? '0');
    if (t < 0n || t > INT64_MAX) return `events[${e}].time_unix_nano must fit in a signed 64-bit nanosecond count`;
  }
  if (s.kind !== undefined && (s.kind < 0 || s.kind > 5)) return `kind must be a SpanKind (got ${s.kind})`;
  const code = s.status?.code ?? 0;
  if (code < 0 || code > 2) return `status.code must be a StatusCode (got ${code})`;
  return { traceId, spanId, parent, start, end };
}

function stringAttr(attrs: TypedAttributes, key: string): string | null {
  const v = attrs[key];
  return v && 'stringValue' in v ? v.stringValue : null;
}

export interface NormalizeContext { projectId: string; samplingRate: number; prices: PriceLookup }

export function normalizeRequest(req: ExportRequestShape, ctx: NormalizeContext): NormalizedBatch {
  const out: NormalizedBatch = { spans: [], events: [], links: [], rejected: 0, rejectReasons: new Map(), firstErrors: [], sampledOut: 0 };
  const reject = (reason: string, where: string, label?: string) => {
    out.rejected++;
    // The metric label drops values and indexes, so no client input can mint a new label value.
    const key = label ?? reason.replace(/\(got [^)]*\)|"[^"]*"|\[\d+\]/g, '').trim();
    out.rejectReasons.set(key, (out.rejectReasons.get(key) ?? 0) + 1);
    if (out.firstErrors.length < MAX_ERRORS_REPORTED) out.firstErrors.push(reason.startsWith(where) ? reason : `${where}: ${reason}`);
  };
  const rsList = req.resourceSpans ?? [];
  for (let i = 0; i < rsList.length; i++) {
    const rs = rsList[i] as (typeof rsList)[number];
    const resourceAttributes = typedAttributes(rs.resource?.attributes);
    const serviceName = stringAttr(resourceAttributes, 'service.name');
    const resourceDropped = count32(rs.resource?.droppedAttributesCount);
    const resourceSchema = rs.schemaUrl ? cleanText(rs.schemaUrl) : null;
    const ssList = rs.scopeSpans ?? [];
    for (let j = 0; j < ssList.length; j++) {
      const ss = ssList[j] as (typeof ssList)[number];
      const scopeAttributes = ss.scope?.attributes?.length ? typedAttributes(ss.scope.attributes) : null;
      const spans = ss.spans ?? [];
      for (let k = 0; k < spans.length; k++) {
        const s = spans[k] as SpanShape;
        const v = validateSpan(s);
        if (typeof v === 'string') {
          // JSON type errors name any path and value; they share one label.
          reject(v, `resourceSpans[${i}].scopeSpans[${j}].spans[${k}]`, s.invalid ? 'invalid OTLP JSON field' : undefined);
          continue;
        }
        if (!keepTrace(v.traceId, ctx.samplingRate)) {
          out.sampledOut++;
          continue;
        }
        const attributes = typedAttributes(s.attributes);
        const startTime = nsToTimestamp(v.start);
        const g = extractGenAi(attributes, serviceName, ctx.prices);
        const events = s.events ?? [];
        const links = s.links ?? [];
        let linkCount = 0;
        for (let e = 0; e < events.length; e++) {
          const ev = events[e] as (typeof events)[number];
          out.events.push({
            project_id: ctx.projectId, trace_id: v.traceId, span_id: v.spanId, span_start_time: startTime, idx: e,
            time_ns: int64String(ev.timeUnixNano) ?? '0', name: cleanText(ev.name ?? ''), attributes: typedAttributes(ev.attributes), dropped: count32(ev.droppedAttributesCount),
          });
        }
        for (let l = 0; l < links.length; l++) {
          const ln = links[l] as (typeof links)[number];
          const lt = idHex(ln.traceId);
          const ls = idHex(ln.spanId);
          if (!lt || lt.length !== 32 || !ls || ls.length !== 16) continue; // an unusable link is dropped, counted below
          linkCount++;
          out.links.push({
            project_id: ctx.projectId, trace_id: v.traceId, span_id: v.spanId, span_start_time: startTime, idx: l,
            linked_trace_id: lt, linked_span_id: ls, trace_state: ln.traceState ? cleanText(ln.traceState) : null,
            attributes: typedAttributes(ln.attributes), dropped: count32(ln.droppedAttributesCount), flags: ln.flags ? String(ln.flags) : null,
          });
        }
        out.spans.push({
          project_id: ctx.projectId, trace_id: v.traceId, span_id: v.spanId, parent_span_id: v.parent,
          trace_state: s.traceState ? cleanText(s.traceState) : null,
          name: cleanText(s.name ?? ''), kind: s.kind ?? 0, start_time: startTime, start_ns: v.start.toString(), end_ns: v.end.toString(),
          status_code: s.status?.code ?? 0, status_message: s.status?.message ? cleanText(s.status.message) : null,
          flags: s.flags ? String(s.flags) : null,
          resource_attributes: resourceAttributes, resource_dropped: resourceDropped, resource_schema_url: resourceSchema,
          scope_name: ss.scope?.name ? cleanText(ss.scope.name) : null, scope_version: ss.scope?.version ? cleanText(ss.scope.version) : null,
          scope_attributes: scopeAttributes, scope_dropped: count32(ss.scope?.droppedAttributesCount), scope_schema_url: ss.schemaUrl ? cleanText(ss.schemaUrl) : null,
          attributes, dropped_attributes: count32(s.droppedAttributesCount),
          dropped_events: count32(s.droppedEventsCount), dropped_links: count32((s.droppedLinksCount ?? 0) + (links.length - linkCount)),
          event_count: events.length, link_count: linkCount,
          ...g,
        });
      }
    }
  }
  return out;
}
