// The group commit's SQL (writer-session.ts runs it). Spans, events and links are copied straight into
// their tables when all are new, with the trace summaries upserted from a narrow staging copy; when a
// span is already stored, the batch goes through staging tables and one statement that inserts the
// spans (skipping stored ones), then the events and links of the new spans, then folds the new spans
// into the trace summaries. On the direct path the summaries are folded from per-request trace parts
// (TRACE_PART_COLUMNS: one row per trace of a request, aggregated by copy-rows.ts). INSERT_BATCH_SQL
// is that statement reading JSON documents instead (tests seed with it; bench/writer-sql.mjs derives
// its variants from it).

/** telemetry.spans columns a writer fills, in COPY order (received_at is left to its default). */
export const SPAN_COLUMNS = [
  ['project_id', 'uuid'], ['trace_id', 'bytea'], ['span_id', 'bytea'], ['start_time', 'timestamptz'], ['parent_span_id', 'bytea'],
  ['trace_state', 'text'], ['name', 'text'], ['kind', 'smallint'], ['start_time_unix_nano', 'bigint'], ['end_time_unix_nano', 'bigint'],
  ['status_code', 'smallint'], ['status_message', 'text'], ['flags', 'bigint'], ['resource_attributes', 'jsonb'],
  ['resource_dropped_attributes_count', 'integer'], ['resource_schema_url', 'text'], ['scope_name', 'text'], ['scope_version', 'text'],
  ['scope_attributes', 'jsonb'], ['scope_dropped_attributes_count', 'integer'], ['scope_schema_url', 'text'], ['attributes', 'jsonb'],
  ['dropped_attributes_count', 'integer'], ['dropped_events_count', 'integer'], ['dropped_links_count', 'integer'],
  ['event_count', 'integer'], ['link_count', 'integer'], ['service_name', 'text'], ['agent_name', 'text'], ['model', 'text'],
  ['provider', 'text'], ['operation_name', 'text'], ['tool_name', 'text'], ['input_tokens', 'bigint'], ['output_tokens', 'bigint'],
  ['cost_usd', 'numeric(20, 10)'], ['is_llm', 'boolean'], ['is_tool', 'boolean'],
] as const;
export const EVENT_COLUMNS = [
  ['project_id', 'uuid'], ['trace_id', 'bytea'], ['span_id', 'bytea'], ['span_start_time', 'timestamptz'], ['event_index', 'integer'],
  ['time_unix_nano', 'bigint'], ['name', 'text'], ['attributes', 'jsonb'], ['dropped_attributes_count', 'integer'],
] as const;
export const LINK_COLUMNS = [
  ['project_id', 'uuid'], ['trace_id', 'bytea'], ['span_id', 'bytea'], ['span_start_time', 'timestamptz'], ['link_index', 'integer'],
  ['linked_trace_id', 'bytea'], ['linked_span_id', 'bytea'], ['trace_state', 'text'], ['attributes', 'jsonb'],
  ['dropped_attributes_count', 'integer'], ['flags', 'bigint'],
] as const;

const names = (cols: readonly (readonly [string, string])[]) => cols.map(([n]) => n).join(', ');
const defs = (cols: readonly (readonly [string, string])[]) => cols.map(([n, t]) => `${n} ${t}`).join(', ');

/**
 * One request's part of a trace summary (copy-rows.ts aggregates its spans per trace): min start, the
 * span with the latest end (its start_time and whole µs of duration, so end_time is computed as from
 * spans), the first root's name and id, the first non-null service/agent of roots and of all spans,
 * counts, sums (null when no span had a value) and the distinct models (null when none).
 */
export const TRACE_PART_COLUMNS = [
  ['project_id', 'uuid'], ['trace_id', 'bytea'], ['start_time', 'timestamptz'], ['start_ns', 'bigint'], ['end_ns', 'bigint'],
  ['end_base', 'timestamptz'], ['end_us', 'bigint'], ['root_name', 'text'], ['root_span_id', 'bytea'],
  ['root_service', 'text'], ['root_agent', 'text'], ['any_service', 'text'], ['any_agent', 'text'],
  ['span_count', 'integer'], ['error_count', 'integer'], ['llm_span_count', 'integer'], ['tool_span_count', 'integer'],
  ['input_tokens', 'numeric'], ['output_tokens', 'numeric'], ['cost_usd', 'numeric'], ['models', 'text[]'],
] as const;

// Temp tables live as long as the writer's session; ON COMMIT DELETE ROWS empties them at each commit.
export const STAGING = { spans: 'pg_temp.ingest_spans', events: 'pg_temp.ingest_events', links: 'pg_temp.ingest_links', parts: 'pg_temp.ingest_trace_parts' } as const;

/** Run once per writer session, before the first batch. */
export const CREATE_STAGING_SQL = [
  `CREATE TEMP TABLE IF NOT EXISTS ingest_spans (${defs(SPAN_COLUMNS)}) ON COMMIT DELETE ROWS`,
  `CREATE TEMP TABLE IF NOT EXISTS ingest_events (${defs(EVENT_COLUMNS)}) ON COMMIT DELETE ROWS`,
  `CREATE TEMP TABLE IF NOT EXISTS ingest_links (${defs(LINK_COLUMNS)}) ON COMMIT DELETE ROWS`,
  `CREATE TEMP TABLE IF NOT EXISTS ingest_trace_parts (${defs(TRACE_PART_COLUMNS)}) ON COMMIT DELETE ROWS`,
].join(';\n');

export const COPY_SPANS_SQL = `COPY ${STAGING.spans} (${names(SPAN_COLUMNS)}) FROM STDIN`;
export const COPY_EVENTS_SQL = `COPY ${STAGING.events} (${names(EVENT_COLUMNS)}) FROM STDIN`;
export const COPY_LINKS_SQL = `COPY ${STAGING.links} (${names(LINK_COLUMNS)}) FROM STDIN`;
export const COPY_TRACE_PARTS_SQL = `COPY ${STAGING.parts} (${names(TRACE_PART_COLUMNS)}) FROM STDIN`;
// The same rows straight into the tables: fails (23505) if any span is already stored.
export const COPY_SPANS_DIRECT_SQL = `COPY telemetry.spans (${names(SPAN_COLUMNS)}) FROM STDIN`;
export const COPY_EVENTS_DIRECT_SQL = `COPY telemetry.span_events (${names(EVENT_COLUMNS)}) FROM STDIN`;
export const COPY_LINKS_DIRECT_SQL = `COPY telemetry.span_links (${names(LINK_COLUMNS)}) FROM STDIN`;

const RETURNING = `project_id, trace_id, span_id, start_time, parent_span_id, name, start_time_unix_nano, end_time_unix_nano,
    status_code, service_name, agent_name, model, input_tokens, output_tokens, cost_usd, is_llm, is_tool`;

// The trace summaries of the spans that were new (`ins`).
const AGG_FROM_INS = `), agg AS (
  SELECT project_id, trace_id,
    min(start_time) AS start_time,
    max(start_time + ((end_time_unix_nano - start_time_unix_nano) / 1000) * interval '1 microsecond') AS end_time,
    min(start_time_unix_nano) AS start_ns, max(end_time_unix_nano) AS end_ns,
    (array_agg(name) FILTER (WHERE parent_span_id IS NULL))[1] AS root_name,
    (array_agg(span_id) FILTER (WHERE parent_span_id IS NULL))[1] AS root_span_id,
    coalesce((array_agg(service_name) FILTER (WHERE parent_span_id IS NULL AND service_name IS NOT NULL))[1],
             (array_agg(service_name) FILTER (WHERE service_name IS NOT NULL))[1]) AS service_name,
    coalesce((array_agg(agent_name) FILTER (WHERE parent_span_id IS NULL AND agent_name IS NOT NULL))[1],
             (array_agg(agent_name) FILTER (WHERE agent_name IS NOT NULL))[1]) AS agent_name,
    count(*)::integer AS span_count,
    (count(*) FILTER (WHERE status_code = 2))::integer AS error_count,
    (count(*) FILTER (WHERE is_llm))::integer AS llm_span_count,
    (count(*) FILTER (WHERE is_tool))::integer AS tool_span_count,
    coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
    coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(array_agg(DISTINCT model) FILTER (WHERE model IS NOT NULL), '{}') AS models
  FROM ins GROUP BY project_id, trace_id
`;

// The same summaries folded from the requests' trace parts (STAGING.parts, in COPY order): `first`
// over parts in order is `first` over their spans in order, sums add, and end_time is the span
// expression of the part with the latest end.
const AGG_FROM_PARTS = `
WITH m AS (
  SELECT project_id, trace_id, array_agg(DISTINCT x) AS models
  FROM ${STAGING.parts} CROSS JOIN LATERAL unnest(models) AS x
  WHERE models IS NOT NULL GROUP BY project_id, trace_id
), p AS (
  SELECT project_id, trace_id,
    min(start_time) AS start_time,
    max(end_base + end_us * interval '1 microsecond') AS end_time,
    min(start_ns) AS start_ns, max(end_ns) AS end_ns,
    (array_agg(root_name) FILTER (WHERE root_span_id IS NOT NULL))[1] AS root_name,
    (array_agg(root_span_id) FILTER (WHERE root_span_id IS NOT NULL))[1] AS root_span_id,
    coalesce((array_agg(root_service) FILTER (WHERE root_service IS NOT NULL))[1],
             (array_agg(any_service) FILTER (WHERE any_service IS NOT NULL))[1]) AS service_name,
    coalesce((array_agg(root_agent) FILTER (WHERE root_agent IS NOT NULL))[1],
             (array_agg(any_agent) FILTER (WHERE any_agent IS NOT NULL))[1]) AS agent_name,
    sum(span_count)::integer AS span_count,
    sum(error_count)::integer AS error_count,
    sum(llm_span_count)::integer AS llm_span_count,
    sum(tool_span_count)::integer AS tool_span_count,
    coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
    coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd
  FROM ${STAGING.parts} GROUP BY project_id, trace_id
), agg AS (
  SELECT p.*, coalesce(m.models, '{}') AS models FROM p LEFT JOIN m USING (project_id, trace_id)
`;

// The summaries upserted in key order (no deadlock between concurrent batches touching the same
// traces); then the statement's result row (RESULT_FROM_*).
const UPSERT = `), tr AS (
  INSERT INTO telemetry.traces AS t (project_id, trace_id, start_time, end_time, start_time_unix_nano, end_time_unix_nano,
    root_name, root_span_id, service_name, agent_name, span_count, error_count, llm_span_count, tool_span_count,
    input_tokens, output_tokens, cost_usd, models)
  SELECT project_id, trace_id, start_time, end_time, start_ns, end_ns, root_name, root_span_id, service_name, agent_name,
    span_count, error_count, llm_span_count, tool_span_count, input_tokens, output_tokens, cost_usd, models
  FROM agg ORDER BY project_id, trace_id
  ON CONFLICT (project_id, trace_id) DO UPDATE SET
    start_time = least(t.start_time, excluded.start_time),
    end_time = greatest(t.end_time, excluded.end_time),
    start_time_unix_nano = least(t.start_time_unix_nano, excluded.start_time_unix_nano),
    end_time_unix_nano = greatest(t.end_time_unix_nano, excluded.end_time_unix_nano),
    root_name = coalesce(excluded.root_name, t.root_name),
    root_span_id = coalesce(excluded.root_span_id, t.root_span_id),
    service_name = CASE WHEN excluded.root_span_id IS NOT NULL THEN coalesce(excluded.service_name, t.service_name) ELSE coalesce(t.service_name, excluded.service_name) END,
    agent_name = CASE WHEN excluded.root_span_id IS NOT NULL THEN coalesce(excluded.agent_name, t.agent_name) ELSE coalesce(t.agent_name, excluded.agent_name) END,
    span_count = t.span_count + excluded.span_count,
    error_count = t.error_count + excluded.error_count,
    llm_span_count = t.llm_span_count + excluded.llm_span_count,
    tool_span_count = t.tool_span_count + excluded.tool_span_count,
    input_tokens = t.input_tokens + excluded.input_tokens,
    output_tokens = t.output_tokens + excluded.output_tokens,
    cost_usd = t.cost_usd + excluded.cost_usd,
    models = (SELECT coalesce(array_agg(DISTINCT m), '{}') FROM unnest(t.models || excluded.models) AS m),
    updated_at = now()
  RETURNING 1
)`;
const RESULT_FROM_INS = `
SELECT (SELECT count(*) FROM ins)::integer AS inserted, (SELECT count(*) FROM tr)::integer AS traces`;
const RESULT_FROM_PARTS = `
SELECT (SELECT coalesce(sum(span_count), 0) FROM ${STAGING.parts})::integer AS inserted, (SELECT count(*) FROM tr)::integer AS traces`;

/** The batch statement over the staging tables (the writer's; no parameters). */
export const INSERT_FROM_STAGING_SQL = `
WITH ins AS (
  INSERT INTO telemetry.spans (${names(SPAN_COLUMNS)})
  SELECT ${names(SPAN_COLUMNS)} FROM ${STAGING.spans}
  ORDER BY project_id, trace_id, span_id
  ON CONFLICT DO NOTHING
  RETURNING ${RETURNING}
), ev AS (
  INSERT INTO telemetry.span_events (${names(EVENT_COLUMNS)})
  SELECT ${EVENT_COLUMNS.map(([n]) => `e.${n}`).join(', ')} FROM ${STAGING.events} e
  JOIN ins ON ins.project_id = e.project_id AND ins.trace_id = e.trace_id AND ins.span_id = e.span_id AND ins.start_time = e.span_start_time
  ON CONFLICT DO NOTHING
), ln AS (
  INSERT INTO telemetry.span_links (${names(LINK_COLUMNS)})
  SELECT ${LINK_COLUMNS.map(([n]) => `l.${n}`).join(', ')} FROM ${STAGING.links} l
  JOIN ins ON ins.project_id = l.project_id AND ins.trace_id = l.trace_id AND ins.span_id = l.span_id AND ins.start_time = l.span_start_time
  ON CONFLICT DO NOTHING
${AGG_FROM_INS}${UPSERT}${RESULT_FROM_INS}`;

/** After the spans were copied straight in (all new): the trace summaries from the requests' trace parts. */
export const SUMMARIES_FROM_PARTS_SQL = `${AGG_FROM_PARTS}${UPSERT}${RESULT_FROM_PARTS}`;

/** The same statement with the rows as JSON documents: $1 spans, $2 events, $3 links (SpanRow/EventRow/LinkRow arrays). */
export const INSERT_BATCH_SQL = `
WITH input AS (
  SELECT * FROM json_to_recordset($1::json) AS r(
    project_id uuid, trace_id text, span_id text, parent_span_id text, trace_state text, name text, kind smallint,
    start_time timestamptz, start_ns bigint, end_ns bigint, status_code smallint, status_message text, flags bigint,
    resource_attributes jsonb, resource_dropped integer, resource_schema_url text, scope_name text, scope_version text,
    scope_attributes jsonb, scope_dropped integer, scope_schema_url text, attributes jsonb, dropped_attributes integer,
    dropped_events integer, dropped_links integer, event_count integer, link_count integer, service_name text, agent_name text,
    model text, provider text, operation_name text, tool_name text, input_tokens bigint, output_tokens bigint,
    cost_usd numeric, is_llm boolean, is_tool boolean)
), ins AS (
  INSERT INTO telemetry.spans (
    project_id, trace_id, span_id, start_time, parent_span_id, trace_state, name, kind, start_time_unix_nano, end_time_unix_nano,
    status_code, status_message, flags, resource_attributes, resource_dropped_attributes_count, resource_schema_url,
    scope_name, scope_version, scope_attributes, scope_dropped_attributes_count, scope_schema_url, attributes,
    dropped_attributes_count, dropped_events_count, dropped_links_count, event_count, link_count, service_name, agent_name,
    model, provider, operation_name, tool_name, input_tokens, output_tokens, cost_usd, is_llm, is_tool)
  SELECT project_id, decode(trace_id, 'hex'), decode(span_id, 'hex'), start_time, decode(parent_span_id, 'hex'), trace_state,
    name, kind, start_ns, end_ns, status_code, status_message, flags, resource_attributes, resource_dropped, resource_schema_url,
    scope_name, scope_version, scope_attributes, scope_dropped, scope_schema_url, attributes, dropped_attributes,
    dropped_events, dropped_links, event_count, link_count, service_name, agent_name, model, provider, operation_name, tool_name,
    input_tokens, output_tokens, cost_usd, is_llm, is_tool
  FROM input
  ORDER BY project_id, trace_id, span_id
  ON CONFLICT DO NOTHING
  RETURNING ${RETURNING}
), ev AS (
  INSERT INTO telemetry.span_events (project_id, trace_id, span_id, span_start_time, event_index, time_unix_nano, name, attributes, dropped_attributes_count)
  SELECT e.project_id, decode(e.trace_id, 'hex'), decode(e.span_id, 'hex'), e.span_start_time, e.idx, e.time_ns, e.name, e.attributes, e.dropped
  FROM json_to_recordset($2::json) AS e(project_id uuid, trace_id text, span_id text, span_start_time timestamptz, idx integer,
    time_ns bigint, name text, attributes jsonb, dropped integer)
  JOIN ins ON ins.project_id = e.project_id AND ins.trace_id = decode(e.trace_id, 'hex') AND ins.span_id = decode(e.span_id, 'hex')
    AND ins.start_time = e.span_start_time
  ON CONFLICT DO NOTHING
), ln AS (
  INSERT INTO telemetry.span_links (project_id, trace_id, span_id, span_start_time, link_index, linked_trace_id, linked_span_id, trace_state, attributes, dropped_attributes_count, flags)
  SELECT l.project_id, decode(l.trace_id, 'hex'), decode(l.span_id, 'hex'), l.span_start_time, l.idx, decode(l.linked_trace_id, 'hex'),
    decode(l.linked_span_id, 'hex'), l.trace_state, l.attributes, l.dropped, l.flags
  FROM json_to_recordset($3::json) AS l(project_id uuid, trace_id text, span_id text, span_start_time timestamptz, idx integer,
    linked_trace_id text, linked_span_id text, trace_state text, attributes jsonb, dropped integer, flags bigint)
  JOIN ins ON ins.project_id = l.project_id AND ins.trace_id = decode(l.trace_id, 'hex') AND ins.span_id = decode(l.span_id, 'hex')
    AND ins.start_time = l.span_start_time
  ON CONFLICT DO NOTHING
${AGG_FROM_INS}${UPSERT}${RESULT_FROM_INS}`;
