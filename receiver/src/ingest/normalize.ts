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

const TWO_32 = 4294967296;

/** Long → decimal; arithmetic in doubles while exact (|v| < 2^53), Long's own division loop beyond. */
function longString(v: Long): string {
  const hi = v.unsigned ? v.high >>> 0 : v.high;
  return hi < 0x200000 && hi >= -0x200000 ? `${hi * TWO_32 + (v.low >>> 0)}` : v.toString();
}

/** Any int64 representation → exact decimal string (or null when absent). */
export function int64String(v: Int64Like | undefined | null): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return `${v}`;
    // BigInt, not toString: a large double (1e300 in JSON) must not become "1e+300".
    return Number.isFinite(v) ? BigInt(Math.trunc(v)).toString() : null;
  }
  if (typeof v === 'bigint') return v.toString();
  if (isLong(v)) return longString(v);
  return null;
}

/**
 * A nanosecond count in 0..2^63-1 split exactly into milliseconds since the epoch and the nanoseconds
 * within that millisecond: doubles instead of BigInt (the profile's Long → string → BigInt round trip).
 */
interface Nanos { ms: number; sub: number }

const ZERO_NANOS: Nanos = { ms: 0, sub: 0 };
const INT64_MAX_TEXT = '9223372036854775807';
const POSITIVE_DECIMAL = /^[1-9]\d{0,18}$/;

/**
 * Timestamp field → Nanos; null when absent or zero (the field is unset), 'range' when it does not fit
 * in a signed 64-bit count. JSON strings and numbers beyond the fast paths take the exact BigInt path.
 */
function toNanos(v: Int64Like | undefined | null): Nanos | null | 'range' {
  if (v === undefined || v === null) return null;
  if (isLong(v)) {
    const hi = v.unsigned ? v.high >>> 0 : v.high;
    const lo = v.low >>> 0;
    if (hi < 0 || hi >= 0x80000000) return 'range';
    if (hi === 0 && lo === 0) return null;
    // hi·2^32 = hi·4294·10^6 + hi·967296: both parts and their sum stay below 2^53.
    const below = hi * 967296 + lo;
    const subMs = below % 1_000_000;
    return { ms: hi * 4294 + (below - subMs) / 1_000_000, sub: subMs };
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) {
    const sub = v % 1_000_000;
    return { ms: (v - sub) / 1_000_000, sub };
  }
  if (typeof v === 'string' && POSITIVE_DECIMAL.test(v) && (v.length < 19 || v <= INT64_MAX_TEXT)) {
    return v.length <= 6 ? { ms: 0, sub: Number(v) } : { ms: Number(v.slice(0, -6)), sub: Number(v.slice(-6)) };
  }
  const text = int64String(v);
  if (text === null || text === '0') return null;
  const n = BigInt(text);
  if (n < 0n || n > INT64_MAX) return 'range';
  return { ms: Number(n / 1_000_000n), sub: Number(n % 1_000_000n) };
}

function nanosText(n: Nanos): string {
  return n.ms === 0 ? `${n.sub}` : `${n.ms}${`${n.sub}`.padStart(6, '0')}`;
}

function nanosBefore(a: Nanos, b: Nanos): boolean {
  return a.ms < b.ms || (a.ms === b.ms && a.sub < b.sub);
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
  if (v.length === 0) return '';
  // protobufjs hands out Buffer slices of the body; the JSON reader, Buffers; anything else gets a view.
  return (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)).toString('hex');
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

// Spans of a request mostly start within a few seconds of each other: format each second once.
let cachedSecond = NaN;
let cachedSecondIso = '';

/** Microsecond-precision RFC 3339 (the timestamptz value) of a Nanos. */
function nanosTimestamp(n: Nanos): string {
  const msInSecond = ((n.ms % 1000) + 1000) % 1000;
  const second = n.ms - msInSecond;
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedSecondIso = new Date(second).toISOString().slice(0, 20); // YYYY-MM-DDTHH:MM:SS.
  }
  const micros = msInSecond * 1000 + (n.sub - (n.sub % 1000)) / 1000;
  return `${cachedSecondIso}${`${micros}`.padStart(6, '0')}Z`;
}

interface ValidSpan { traceId: string; spanId: string; parent: string | null; start: Nanos; end: Nanos }

function validateSpan(s: SpanShape): string | ValidSpan {
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
  const start = toNanos(s.startTimeUnixNano);
  if (start === null) return 'start_time_unix_nano is required';
  const endOrUnset = toNanos(s.endTimeUnixNano);
  const end = endOrUnset ?? start;
  if (start === 'range' || end === 'range') return 'timestamps must fit in a signed 64-bit nanosecond count';
  if (nanosBefore(end, start)) return 'end_time_unix_nano is before start_time_unix_nano';
  const events = s.events ?? [];
  for (let e = 0; e < events.length; e++) {
    if (toNanos(events[e]?.timeUnixNano) === 'range') return `events[${e}].time_unix_nano must fit in a signed 64-bit nanosecond count`;
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

/** Validate and convert a decoded request into rows. Consumes `req`: its spans are detached at the end. */
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
        const startTime = nanosTimestamp(v.start);
        const g = extractGenAi(attributes, serviceName, ctx.prices);
        const events = s.events ?? [];
        const links = s.links ?? [];
        let linkCount = 0;
        for (let e = 0; e < events.length; e++) {
          const ev = events[e] as (typeof events)[number];
          out.events.push({
            project_id: ctx.projectId, trace_id: v.traceId, span_id: v.spanId, span_start_time: startTime, idx: e,
            time_ns: nanosText((toNanos(ev.timeUnixNano) as Nanos | null) ?? ZERO_NANOS), name: cleanText(ev.name ?? ''), attributes: typedAttributes(ev.attributes), dropped: count32(ev.droppedAttributesCount),
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
          name: cleanText(s.name ?? ''), kind: s.kind ?? 0, start_time: startTime, start_ns: nanosText(v.start), end_ns: nanosText(v.end),
          status_code: s.status?.code ?? 0, status_message: s.status?.message ? cleanText(s.status.message) : null,
          flags: s.flags ? String(s.flags) : null,
          resource_attributes: resourceAttributes, resource_dropped: resourceDropped, resource_schema_url: resourceSchema,
          scope_name: ss.scope?.name ? cleanText(ss.scope.name) : null, scope_version: ss.scope?.version ? cleanText(ss.scope.version) : null,
          scope_attributes: scopeAttributes, scope_dropped: count32(ss.scope?.droppedAttributesCount), scope_schema_url: ss.schemaUrl ? cleanText(ss.schemaUrl) : null,
          attributes, dropped_attributes: count32(s.droppedAttributesCount),
          dropped_events: count32(s.droppedEventsCount), dropped_links: count32((s.droppedLinksCount ?? 0) + (links.length - linkCount)),
          event_count: events.length, link_count: linkCount,
          service_name: g.service_name, agent_name: g.agent_name, model: g.model, provider: g.provider,
          operation_name: g.operation_name, tool_name: g.tool_name, input_tokens: g.input_tokens, output_tokens: g.output_tokens,
          cost_usd: g.cost_usd, is_llm: g.is_llm, is_tool: g.is_tool,
        });
      }
    }
  }
  // The decoded request (several times its wire size) is done with: detach it, so the callers that
  // still hold it while the rows wait for their commit do not keep it alive.
  req.resourceSpans = [];
  return out;
}
