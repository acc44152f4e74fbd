// Spans: search with filters and keyset pagination, the spans of one trace, and their events/links.
import { sql } from 'kysely';
import type { Db } from '../db/db.js';
import { cursorTimeOf, microsText, tz, type NsRange } from './time.js';

export interface SpanFilters extends NsRange {
  traceIdHex?: string; agentName?: string; toolName?: string; requestModel?: string; service?: string;
  isLlm?: boolean; isTool?: boolean; status?: 'ok' | 'error';
  /** Case-insensitive "contains" pattern (already escaped for ILIKE) over span name and tool name. */
  qPattern?: string;
}
export interface SpanKeyset { time: string; traceId: string; spanId: string }

/** The columns a span tree node needs (no attribute maps: a big trace stays cheap). */
const SPAN_SUMMARY_COLUMNS = [
  'trace_id', 'span_id', 'parent_span_id', 'name', 'kind', 'start_time_unix_nano', 'end_time_unix_nano', 'status_code',
  'service_name', 'agent_name', 'model', 'provider', 'operation_name', 'tool_name', 'input_tokens', 'output_tokens', 'cost_usd',
  'is_llm', 'is_tool',
] as const;

export const SPAN_DETAIL_COLUMNS = [
  ...SPAN_SUMMARY_COLUMNS, 'trace_state', 'status_message', 'flags', 'resource_attributes', 'resource_dropped_attributes_count',
  'resource_schema_url', 'scope_name', 'scope_version', 'scope_attributes', 'scope_dropped_attributes_count', 'scope_schema_url',
  'attributes', 'dropped_attributes_count', 'dropped_events_count', 'dropped_links_count', 'event_count', 'link_count',
] as const;

const SDK_STATE = sql`spans.attributes -> 'strathon.agent.intervention.state' ->> 'stringValue'`;

/**
 * A span's intervention_state (Strathon's semantics): what its SDK recorded
 * (`strathon.agent.intervention.state`: blocked, steered, approval_denied …); else "halted" when a
 * halt policy of this receiver acted on it (policy_evaluations_halted_idx); else the SDK's
 * non-intervening state ("running", "approval_granted") or null.
 */
export const spanInterventionState = () => sql<string | null>`CASE
  WHEN ${SDK_STATE} NOT IN ('running', 'approval_granted') THEN ${SDK_STATE}
  WHEN EXISTS (SELECT 1 FROM core.policy_evaluations e WHERE e.project_id = spans.project_id AND e.trace_id = spans.trace_id
    AND e.span_id = spans.span_id AND e.acted AND e.action = 'halt') THEN 'halted'
  ELSE ${SDK_STATE} END`.as('intervention_state');

export type SpanSummaryRow = Awaited<ReturnType<typeof spanTreeOfTrace>>[number];
export type SpanDetailRow = Awaited<ReturnType<typeof listSpans>>[number];

/**
 * One page of spans, newest first, by (start_time DESC, trace_id, span_id). Served by
 * spans_project_time_idx, or by the partial tool/model indexes when those filters are given;
 * a trace_id filter uses the primary key.
 */
export async function listSpans(db: Db, projectId: string, f: SpanFilters, after: SpanKeyset | undefined, limit: number) {
  let q = db.selectFrom('telemetry.spans')
    .select([...SPAN_DETAIL_COLUMNS, cursorTimeOf('start_time').as('cursor_time'), spanInterventionState()])
    .where('project_id', '=', projectId);
  if (f.traceIdHex !== undefined) q = q.where('trace_id', '=', Buffer.from(f.traceIdHex, 'hex'));
  if (f.agentName !== undefined) q = q.where('agent_name', '=', f.agentName);
  if (f.toolName !== undefined) q = q.where('tool_name', '=', f.toolName);
  if (f.requestModel !== undefined) q = q.where('model', '=', f.requestModel);
  if (f.service !== undefined) q = q.where('service_name', '=', f.service);
  if (f.isLlm !== undefined) q = q.where('is_llm', '=', f.isLlm);
  if (f.isTool !== undefined) q = q.where('is_tool', '=', f.isTool);
  if (f.status === 'error') q = q.where('status_code', '=', 2);
  if (f.status === 'ok') q = q.where('status_code', '<>', 2);
  const pattern = f.qPattern;
  if (pattern !== undefined) q = q.where((eb) => eb.or([eb('name', 'ilike', pattern), eb('tool_name', 'ilike', pattern)]));
  if (f.sinceNs !== undefined) q = q.where('start_time', '>=', tz(microsText(f.sinceNs))).where('start_time_unix_nano', '>=', f.sinceNs.toString());
  if (f.untilNs !== undefined) q = q.where('start_time', '<=', tz(microsText(f.untilNs))).where('start_time_unix_nano', '<', f.untilNs.toString());
  if (after) {
    const tid = Buffer.from(after.traceId, 'hex');
    const sid = Buffer.from(after.spanId, 'hex');
    q = q.where('start_time', '<=', tz(after.time))
      .where((eb) => eb.or([eb('start_time', '<', tz(after.time)), sql<boolean>`(trace_id, span_id) > (${tid}, ${sid})`]));
  }
  return q.orderBy('start_time', 'desc').orderBy('trace_id', 'asc').orderBy('span_id', 'asc').limit(limit + 1).execute();
}

/** A trace's time window: every span of it starts inside, so only those partitions are read. */
export interface TraceWindow { traceIdHex: string; startText: string; endText: string }

/** Every span of one trace, in start order, with full detail (at most `max`). */
export async function spansOfTrace(db: Db, projectId: string, w: TraceWindow, max: number) {
  return db.selectFrom('telemetry.spans')
    .select([...SPAN_DETAIL_COLUMNS, cursorTimeOf('start_time').as('cursor_time'), spanInterventionState()])
    .where('project_id', '=', projectId)
    .where('trace_id', '=', Buffer.from(w.traceIdHex, 'hex'))
    .where('start_time', '>=', tz(w.startText)).where('start_time', '<=', tz(w.endText))
    .orderBy('start_time_unix_nano', 'asc').orderBy('span_id', 'asc')
    .limit(max)
    .execute();
}

/** Every span of one trace, in start order, with the columns of a tree node (at most `max`). */
export async function spanTreeOfTrace(db: Db, projectId: string, w: TraceWindow, max: number) {
  return db.selectFrom('telemetry.spans')
    .select([...SPAN_SUMMARY_COLUMNS, spanInterventionState()])
    .where('project_id', '=', projectId)
    .where('trace_id', '=', Buffer.from(w.traceIdHex, 'hex'))
    .where('start_time', '>=', tz(w.startText)).where('start_time', '<=', tz(w.endText))
    .orderBy('start_time_unix_nano', 'asc').orderBy('span_id', 'asc')
    .limit(max)
    .execute();
}

export interface EventRow { trace_id: Buffer; span_id: Buffer; st: string; time_unix_nano: string; name: string; attributes: unknown; dropped_attributes_count: number }
export interface LinkRow {
  trace_id: Buffer; span_id: Buffer; st: string; linked_trace_id: Buffer; linked_span_id: Buffer; trace_state: string | null;
  attributes: unknown; dropped_attributes_count: number; flags: string | null;
}

/** A span's identity as stored: (trace id, span id, start microsecond). */
export interface SpanKey { traceIdHex: string; spanIdHex: string; startText: string }

function keyArrays(keys: SpanKey[]) {
  return {
    t: keys.map((k) => k.traceIdHex), s: keys.map((k) => k.spanIdHex), st: keys.map((k) => k.startText),
    lo: keys.reduce((a, k) => (k.startText < a ? k.startText : a), keys[0]?.startText ?? ''),
    hi: keys.reduce((a, k) => (k.startText > a ? k.startText : a), keys[0]?.startText ?? ''),
  };
}

/** Events of the given spans (one statement; primary-key lookups, partitions pruned by the time span). */
export async function eventsOf(db: Db, projectId: string, keys: SpanKey[]): Promise<EventRow[]> {
  if (keys.length === 0) return [];
  const k = keyArrays(keys);
  const r = await sql<EventRow>`
    SELECT e.trace_id, e.span_id, ${cursorTimeOf('e.span_start_time')} AS st, e.time_unix_nano, e.name, e.attributes, e.dropped_attributes_count
    FROM telemetry.span_events e
    JOIN unnest(${k.t}::text[], ${k.s}::text[], ${k.st}::timestamptz[]) AS k(t, s, st)
      ON e.trace_id = decode(k.t, 'hex') AND e.span_id = decode(k.s, 'hex') AND e.span_start_time = k.st
    WHERE e.project_id = ${projectId} AND e.span_start_time >= ${k.lo}::timestamptz AND e.span_start_time <= ${k.hi}::timestamptz
    ORDER BY e.trace_id, e.span_id, e.span_start_time, e.event_index`.execute(db);
  return r.rows;
}

/** Links of the given spans (one statement, as eventsOf). */
export async function linksOf(db: Db, projectId: string, keys: SpanKey[]): Promise<LinkRow[]> {
  if (keys.length === 0) return [];
  const k = keyArrays(keys);
  const r = await sql<LinkRow>`
    SELECT l.trace_id, l.span_id, ${cursorTimeOf('l.span_start_time')} AS st, l.linked_trace_id, l.linked_span_id, l.trace_state,
           l.attributes, l.dropped_attributes_count, l.flags
    FROM telemetry.span_links l
    JOIN unnest(${k.t}::text[], ${k.s}::text[], ${k.st}::timestamptz[]) AS k(t, s, st)
      ON l.trace_id = decode(k.t, 'hex') AND l.span_id = decode(k.s, 'hex') AND l.span_start_time = k.st
    WHERE l.project_id = ${projectId} AND l.span_start_time >= ${k.lo}::timestamptz AND l.span_start_time <= ${k.hi}::timestamptz
    ORDER BY l.trace_id, l.span_id, l.span_start_time, l.link_index`.execute(db);
  return r.rows;
}
