// Normalized rows → COPY text (tab-separated, \N for null, backslash escapes), in the column order of
// batch-sql.ts. Encoded once per request when it is queued: the queue then holds these compact bytes
// instead of the row objects, and its byte bound counts exactly what it holds.
import type { EventRow, LinkRow, SpanRow, TypedAttributes } from './normalize.js';

/**
 * One request's rows, ready for the writer's COPY statements (events/links null when there are none);
 * `summary` holds the few columns of each span the trace summaries are computed from.
 */
export interface CopyRows { spans: Buffer; summary: Buffer; events: Buffer | null; links: Buffer | null; spanCount: number; bytes: number }

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

function num(n: number | string | null): string {
  return n === null ? '\\N' : `${n}`;
}

/** JSON text escapes every control character itself: only its backslashes need doubling. */
function json(v: TypedAttributes | null): string {
  if (v === null) return '\\N';
  const t = JSON.stringify(v);
  return t.includes('\\') ? t.replaceAll('\\', '\\\\') : t;
}

/** Spans → [rows of SPAN_COLUMNS, rows of SUMMARY_COLUMNS] (batch-sql.ts). */
export function encodeSpans(rows: SpanRow[]): [string, string] {
  let out = '';
  let summary = '';
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
    const key = `${r.project_id}\t\\\\x${r.trace_id}\t\\\\x${r.span_id}\t${r.start_time}\t${bytea(r.parent_span_id)}\t`;
    const name = text(r.name);
    const service = text(r.service_name);
    const agent = text(r.agent_name);
    const model = text(r.model);
    const tail = `${num(r.input_tokens)}\t${num(r.output_tokens)}\t${num(r.cost_usd)}\t${r.is_llm ? 't' : 'f'}\t${r.is_tool ? 't' : 'f'}\n`;
    summary += `${key}${name}\t${r.start_ns}\t${r.end_ns}\t${r.status_code}\t${service}\t${agent}\t${model}\t${tail}`;
    out += `${key}${text(r.trace_state)}\t${name}\t${r.kind}\t${r.start_ns}\t${r.end_ns}\t`
      + `${r.status_code}\t${text(r.status_message)}\t${num(r.flags)}\t${resourceText}\t${r.resource_dropped}\t${text(r.resource_schema_url)}\t${text(r.scope_name)}\t${text(r.scope_version)}\t`
      + `${scopeText}\t${r.scope_dropped}\t${text(r.scope_schema_url)}\t${json(r.attributes)}\t${r.dropped_attributes}\t${r.dropped_events}\t${r.dropped_links}\t${r.event_count}\t${r.link_count}\t`
      + `${service}\t${agent}\t${model}\t${text(r.provider)}\t${text(r.operation_name)}\t${text(r.tool_name)}\t${tail}`;
  }
  return [out, summary];
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
  const [spanText, summaryText] = encodeSpans(spans);
  const s = Buffer.from(spanText);
  const m = Buffer.from(summaryText);
  const e = events.length ? Buffer.from(encodeEvents(events)) : null;
  const l = links.length ? Buffer.from(encodeLinks(links)) : null;
  return { spans: s, summary: m, events: e, links: l, spanCount: spans.length, bytes: s.byteLength + m.byteLength + (e?.byteLength ?? 0) + (l?.byteLength ?? 0) };
}
