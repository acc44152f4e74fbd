// Trace summaries (telemetry.traces): the newest-first keyset list and one trace by id.
// Every statement is scoped to one project (SPEC §4: no query crosses projects).
import { sql, type InferResult } from 'kysely';
import type { Db } from '../db/db.js';
import type { Pool } from '../db/pool.js';
import { SPAN_DETAIL_COLUMNS, spanInterventionState, type EventRow, type LinkRow, type SpanDetailRow } from './spans.js';
import { cursorTimeOf, microsText, tz, type NsRange } from './time.js';

export interface TraceFilters extends NsRange {
  agentName?: string; service?: string; model?: string; status?: 'ok' | 'error'; minCostUsd?: string;
  /** Case-insensitive "contains" pattern (already escaped for ILIKE) over root name, agent and service. */
  qPattern?: string;
}
/** Position after which the next page starts: (start_time, trace_id) of the last row seen. */
export interface TraceKeyset { time: string; traceId: string }

const TRACE_COLUMNS = [
  'trace_id', 'start_time_unix_nano', 'end_time_unix_nano', 'root_name', 'root_span_id', 'service_name', 'agent_name',
  'span_count', 'error_count', 'llm_span_count', 'tool_span_count', 'input_tokens', 'output_tokens', 'cost_usd', 'models',
] as const;

/**
 * A trace's intervention_state (Strathon's semantics): "halted" when one of its spans was
 * intervened on — its SDK recorded a state other than running/approval_granted, or a halt policy
 * of this receiver acted on it — else null. Two probes of partial indexes, never a span scan.
 */
const traceInterventionState = () => sql<string | null>`CASE WHEN EXISTS (
    SELECT 1 FROM telemetry.spans s
    WHERE s.project_id = traces.project_id AND s.trace_id = traces.trace_id
      AND s.start_time >= traces.start_time AND s.start_time <= traces.end_time
      AND s.attributes ? 'strathon.agent.intervention.state'
      AND coalesce(s.attributes -> 'strathon.agent.intervention.state' ->> 'stringValue', '') NOT IN ('', 'running', 'approval_granted'))
  OR EXISTS (SELECT 1 FROM core.policy_evaluations e WHERE e.project_id = traces.project_id AND e.trace_id = traces.trace_id AND e.acted AND e.action = 'halt')
  THEN 'halted' END`.as('intervention_state');

export type TraceRow = Awaited<ReturnType<typeof listTraces>>[number];

/**
 * One page of traces, newest first, ordered by (start_time DESC, trace_id ASC) — exactly the
 * order of traces_project_start_idx (and of the per-agent/service/error indexes), so a page is
 * an index range scan that never counts or skips rows. Fetches limit + 1 to know if more follow.
 */
export async function listTraces(db: Db, projectId: string, f: TraceFilters, after: TraceKeyset | undefined, limit: number) {
  let q = db.selectFrom('telemetry.traces')
    .select([...TRACE_COLUMNS, cursorTimeOf('start_time').as('cursor_time'), traceInterventionState()])
    .where('project_id', '=', projectId);
  if (f.agentName !== undefined) q = q.where('agent_name', '=', f.agentName);
  if (f.service !== undefined) q = q.where('service_name', '=', f.service);
  // Containment (not = ANY) so the GIN index on models serves it.
  if (f.model !== undefined) q = q.where(sql<boolean>`models @> ARRAY[${f.model}]::text[]`);
  // Literal predicates, so the planner can match the partial index on errored traces.
  if (f.status === 'error') q = q.where(sql<boolean>`error_count > 0`);
  if (f.status === 'ok') q = q.where(sql<boolean>`error_count = 0`);
  if (f.minCostUsd !== undefined) q = q.where('cost_usd', '>=', f.minCostUsd);
  const pattern = f.qPattern;
  if (pattern !== undefined) {
    q = q.where((eb) => eb.or([eb('root_name', 'ilike', pattern), eb('agent_name', 'ilike', pattern), eb('service_name', 'ilike', pattern)]));
  }
  // The timestamptz bound uses the index; the nanosecond bound makes the filter exact.
  if (f.sinceNs !== undefined) q = q.where('start_time', '>=', tz(microsText(f.sinceNs))).where('start_time_unix_nano', '>=', f.sinceNs.toString());
  if (f.untilNs !== undefined) q = q.where('start_time', '<=', tz(microsText(f.untilNs))).where('start_time_unix_nano', '<', f.untilNs.toString());
  if (after) {
    const tid = Buffer.from(after.traceId, 'hex');
    q = q.where('start_time', '<=', tz(after.time))
      .where((eb) => eb.or([eb('start_time', '<', tz(after.time)), eb('trace_id', '>', tid)]));
  }
  return q.orderBy('start_time', 'desc').orderBy('trace_id', 'asc').limit(limit + 1).execute();
}

/** One trace summary, or undefined when it does not exist in this project. */
export async function getTrace(db: Db, projectId: string, traceIdHex: string) {
  return db.selectFrom('telemetry.traces')
    .select([...TRACE_COLUMNS, cursorTimeOf('start_time').as('cursor_time'), cursorTimeOf('end_time').as('end_time_text'), traceInterventionState()])
    .where('project_id', '=', projectId)
    .where('trace_id', '=', Buffer.from(traceIdHex, 'hex'))
    .executeTakeFirst();
}

export type TraceDetailRow = NonNullable<Awaited<ReturnType<typeof getTrace>>>;

/**
 * A span of a trace as traceWithSpans returns it: spansOfTrace's row with ids as lowercase hex (int8
 * and numeric are text, as pg gives them), and its events and links (null when it has none).
 */
export type TraceSpanJson = Omit<SpanDetailRow, 'trace_id' | 'span_id' | 'parent_span_id' | 'cursor_time' | 'event_count' | 'link_count'> & {
  trace_id: string; span_id: string; parent_span_id: string | null;
  events: Pick<EventRow, 'time_unix_nano' | 'name' | 'attributes' | 'dropped_attributes_count'>[] | null;
  links: (Omit<LinkRow, 'trace_id' | 'span_id' | 'st' | 'linked_trace_id' | 'linked_span_id'> & { linked_trace_id: string; linked_span_id: string })[] | null;
};

// spansOfTrace's columns as json_build_object pairs, valued as pg gives them to the row mapping:
// ids as hex (for bytea), int8 and numeric as text; event_count/link_count give way to the arrays.
const HEX_COLUMNS: readonly string[] = ['trace_id', 'span_id', 'parent_span_id'];
const TEXT_COLUMNS: readonly string[] = ['start_time_unix_nano', 'end_time_unix_nano', 'input_tokens', 'output_tokens', 'cost_usd', 'flags'];
const SPAN_JSON_FIELDS = sql.raw(SPAN_DETAIL_COLUMNS.filter((c) => c !== 'event_count' && c !== 'link_count').map((c) => {
  const value = HEX_COLUMNS.includes(c) ? `encode(spans.${c}, 'hex')` : TEXT_COLUMNS.includes(c) ? `spans.${c}::text` : `spans.${c}`;
  return `'${c}', ${value}`;
}).join(', '));

/**
 * The first `max` spans of the trace (spansOfTrace's window, order and columns) with their events
 * and links (eventsOf/linksOf), as one json array built by Postgres: one statement and one value
 * to parse instead of three round trips of typed rows. Only spans with events or links probe those tables.
 */
const spansOfTraceJson = (max: number) => sql<TraceSpanJson[]>`(
  SELECT coalesce(json_agg(json_build_object(
    ${SPAN_JSON_FIELDS},
    'intervention_state', ${spanInterventionState().expression},
    'events', CASE WHEN spans.event_count > 0 THEN (
      SELECT json_agg(json_build_object('time_unix_nano', ev.time_unix_nano::text, 'name', ev.name, 'attributes', ev.attributes,
        'dropped_attributes_count', ev.dropped_attributes_count) ORDER BY ev.event_index)
      FROM telemetry.span_events ev
      WHERE ev.project_id = spans.project_id AND ev.trace_id = spans.trace_id AND ev.span_id = spans.span_id AND ev.span_start_time = spans.start_time) END,
    'links', CASE WHEN spans.link_count > 0 THEN (
      SELECT json_agg(json_build_object('linked_trace_id', encode(li.linked_trace_id, 'hex'), 'linked_span_id', encode(li.linked_span_id, 'hex'),
        'trace_state', li.trace_state, 'attributes', li.attributes, 'dropped_attributes_count', li.dropped_attributes_count, 'flags', li.flags::text)
        ORDER BY li.link_index)
      FROM telemetry.span_links li
      WHERE li.project_id = spans.project_id AND li.trace_id = spans.trace_id AND li.span_id = spans.span_id AND li.span_start_time = spans.start_time) END
  ) ORDER BY spans.start_time_unix_nano, spans.span_id), '[]'::json)
  FROM (
    SELECT * FROM telemetry.spans s
    WHERE s.project_id = traces.project_id AND s.trace_id = traces.trace_id AND s.start_time >= traces.start_time AND s.start_time <= traces.end_time
    ORDER BY s.start_time_unix_nano, s.span_id
    LIMIT ${max}
  ) AS spans
)`;

/**
 * One trace summary (getTrace's columns) and its first `max` spans with their events and links
 * (spansOfTraceJson), in one statement; undefined when the trace does not exist in this project.
 * A named (prepared) statement: its partitioned subqueries cost more to plan than to run, and the
 * generic plan prunes partitions at run time (the window comes from the summary row).
 */
export async function traceWithSpans(db: Db, pool: Pool, projectId: string, traceIdHex: string, max: number) {
  const q = db.selectFrom('telemetry.traces')
    .select([...TRACE_COLUMNS, cursorTimeOf('start_time').as('cursor_time'), traceInterventionState(), spansOfTraceJson(max).as('spans')])
    .where('project_id', '=', projectId)
    .where('trace_id', '=', Buffer.from(traceIdHex, 'hex'))
    .compile();
  const r = await pool.query<InferResult<typeof q>[number]>({ name: 'strathon-trace-with-spans', text: q.sql, values: [...q.parameters] });
  return r.rows[0];
}
