// The data set of bench/query.mjs: GenAI agent traces generated inside Postgres (generate_series),
// stored through the writer's own trace-summary SQL, so the rows are those the receiver would store.
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { DEFAULT_PROJECT_ID } from '../../receiver/dist/auth/keys.js';
import { INSERT_BATCH_SQL } from '../../receiver/dist/ingest/writer.js';
import { decodeProtobuf } from '../../receiver/dist/ingest/otlp-wire.js';
import { normalizeRequest } from '../../receiver/dist/ingest/normalize.js';
import { buildTemplateBatch } from './load.mjs';
import { connect } from './pg.mjs';

/** Agents (share of traces in %) and the service each runs in. */
export const AGENTS = [
  { agent: 'research-agent', service: 'research-svc', pct: 30 },
  { agent: 'support-agent', service: 'support-svc', pct: 25 },
  { agent: 'coding-agent', service: 'dev-tools-svc', pct: 15 },
  { agent: 'billing-agent', service: 'billing-svc', pct: 10 },
  { agent: 'sql-agent', service: 'dev-tools-svc', pct: 8 },
  { agent: 'email-agent', service: 'support-svc', pct: 7 },
  { agent: 'planner-agent', service: 'research-svc', pct: 4 },
  { agent: 'audit-agent', service: 'billing-svc', pct: 1 },
];
/** Chat models (all in core.default_model_prices, so every LLM span is priced); the audit agent alone uses RARE_MODEL. */
export const MODELS = [
  { model: 'gpt-4o', provider: 'openai' }, { model: 'gpt-4o-mini', provider: 'openai' }, { model: 'gpt-4.1', provider: 'openai' },
  { model: 'claude-sonnet-4', provider: 'anthropic' }, { model: 'claude-3-5-haiku', provider: 'anthropic' },
  { model: 'gemini-2.5-flash', provider: 'gcp.gemini' },
];
export const RARE_MODEL = { model: 'o3', provider: 'openai' };
export const TOOLS = ['web_search', 'read_file', 'run_sql', 'send_email', 'http_get', 'vector_search'];
/** Share of traces that fail (a child span and, in half of them, the root with status ERROR and an exception event). */
export const FAILED_SHARE = 0.03;
/** Root spans whose trace id's second byte is below this (≈ 2 %) carry one span link. */
const LINK_BYTE_BELOW = 5;

/**
 * The root, chat and tool spans of one agent trace as the receiver normalizes them (the real
 * OpenTelemetry SDK → protobuf → the receiver's decoder and normalizeRequest): the generator
 * varies their ids, times, names and GenAI attributes and keeps everything else as stored.
 */
export async function spanTemplates() {
  const batch = await buildTemplateBatch(10);
  const decoded = decodeProtobuf(Buffer.from(ProtobufTraceSerializer.serializeRequest(batch)));
  const rows = normalizeRequest(decoded, { projectId: DEFAULT_PROJECT_ID, samplingRate: 1, prices: () => undefined }).spans;
  const pick = (pred, what) => {
    const r = rows.find(pred);
    if (!r) throw new Error(`the template batch has no ${what} span`);
    const { kind, flags, resource_attributes, resource_schema_url, scope_name, scope_version, scope_attributes, scope_schema_url, attributes } = r;
    return { kind, flags, resource_attributes, resource_schema_url, scope_name, scope_version, scope_attributes, scope_schema_url, attributes };
  };
  return {
    root: pick((r) => r.parent_span_id === null, 'root'),
    chat: pick((r) => r.is_llm, 'chat'),
    tool: pick((r) => r.is_tool, 'tool'),
  };
}

/**
 * Spans of traces [$2, $3) (6–14 spans each, 10 on average: one invoke_agent root, then chat and
 * tool calls alternating), their exception events and links, and the traces' summary rows by the
 * writer's own agg/tr CTEs (INSERT_BATCH_SQL from `), agg AS (` on). Parameters: $1 seed, $2/$3
 * trace index range, $4 first root start (ns), $5 ns between trace starts, $6 agent pick table
 * (100 entries), $7 failed share, $8 templates, $9 models, $10 tools, $11 rare model, $12 project.
 */
export function generatorSql() {
  const aggAt = INSERT_BATCH_SQL.indexOf('), agg AS (');
  const returning = /RETURNING ([\s\S]*?)\n\), ev AS/.exec(INSERT_BATCH_SQL);
  if (aggAt < 0 || !returning) {
    throw new Error('INSERT_BATCH_SQL (receiver/src/ingest/writer.ts) no longer has the `ins … RETURNING` → `agg` shape bench/lib/query-data.mjs builds trace summaries with');
  }
  const ret = new Set(returning[1].split(',').map((c) => c.trim()));
  for (const c of ['project_id', 'trace_id', 'span_id', 'start_time', 'parent_span_id', 'status_code', 'end_time_unix_nano']) ret.add(c);
  return `
WITH t AS MATERIALIZED (
  SELECT i,
    decode(md5($1::text || ':' || i), 'hex') AS trace_id,
    $4::bigint + i::bigint * $5::bigint + floor(random() * $5::float8)::bigint AS t0,
    6 + (i % 9) AS n,
    $6::jsonb -> floor(random() * 100)::int AS ag,
    random() < $7::float8 AS failed,
    floor(random() * 1000000)::int AS r
  FROM generate_series($2::int, $3::int - 1) AS i
), s0 AS MATERIALIZED (
  SELECT t.i, t.trace_id, t.t0, t.n, t.ag ->> 'agent' AS agent, t.ag ->> 'service' AS service, t.failed, t.r, k,
    CASE WHEN k = 0 THEN 'root' WHEN k % 2 = 1 THEN 'chat' ELSE 'tool' END AS role,
    decode(substr(md5($1::text || ':' || t.i || ':' || k), 1, 16), 'hex') AS span_id,
    CASE WHEN k = 0 THEN NULL ELSE decode(substr(md5($1::text || ':' || t.i || ':0'), 1, 16), 'hex') END AS parent_span_id,
    CASE WHEN k = 0 THEN t.t0 ELSE t.t0 + 10000000 + (k - 1)::bigint * 400000000 + floor(random() * 20000000)::bigint END AS start_ns,
    CASE WHEN t.ag ->> 'agent' = 'audit-agent' THEN $11::jsonb ELSE $9::jsonb -> ((t.r + k) % jsonb_array_length($9::jsonb)) END AS m,
    $10::jsonb ->> ((t.r / 7 + k) % jsonb_array_length($10::jsonb)) AS tool_pick,
    200 + floor(random() * 3000)::bigint AS in_tok,
    20 + floor(random() * 800)::bigint AS out_tok,
    CASE WHEN t.failed AND (k = t.n - 1 OR (k = 0 AND t.r % 2 = 0)) THEN 2 ELSE 0 END AS status
  FROM t CROSS JOIN LATERAL generate_series(0, t.n - 1) AS k
), s AS (
  SELECT s0.*,
    CASE role WHEN 'chat' THEN m ->> 'model' END AS model,
    CASE role WHEN 'chat' THEN m ->> 'provider' END AS provider,
    CASE role WHEN 'tool' THEN tool_pick END AS tool,
    CASE role
      WHEN 'root' THEN t0 + 10000000 + (n - 1)::bigint * 400000000 + 60000000
      WHEN 'chat' THEN start_ns + 150000000 + floor(random() * 240000000)::bigint
      ELSE start_ns + 20000000 + floor(random() * 100000000)::bigint END AS end_ns,
    $8::jsonb -> role AS tm
  FROM s0
), rows AS (
  SELECT $12::uuid AS project_id, s.trace_id, s.span_id, 'epoch'::timestamptz + (s.start_ns / 1000) * interval '1 microsecond' AS start_time,
    s.parent_span_id, NULL::text AS trace_state,
    CASE s.role WHEN 'root' THEN 'invoke_agent ' || s.agent WHEN 'chat' THEN 'chat ' || s.model ELSE 'execute_tool ' || s.tool END AS name,
    (s.tm ->> 'kind')::smallint AS kind, s.start_ns, s.end_ns, s.status::smallint AS status_code,
    CASE WHEN s.status = 2 THEN CASE s.role WHEN 'root' THEN 'agent run failed' WHEN 'chat' THEN 'rate limited by provider' ELSE 'tool execution failed: upstream timeout' END END AS status_message,
    (s.tm ->> 'flags')::bigint AS flags,
    (s.tm -> 'resource_attributes') || jsonb_build_object(
      'service.name', jsonb_build_object('stringValue', s.service),
      'host.name', jsonb_build_object('stringValue', 'agent-host-' || (s.r % 12)),
      'process.pid', jsonb_build_object('intValue', (1000 + s.r % 30000)::text)) AS resource_attributes,
    s.tm ->> 'resource_schema_url' AS resource_schema_url, s.tm ->> 'scope_name' AS scope_name, s.tm ->> 'scope_version' AS scope_version,
    nullif(s.tm -> 'scope_attributes', 'null'::jsonb) AS scope_attributes, s.tm ->> 'scope_schema_url' AS scope_schema_url,
    (s.tm -> 'attributes') || CASE s.role
      WHEN 'root' THEN jsonb_build_object(
        'gen_ai.agent.name', jsonb_build_object('stringValue', s.agent),
        'gen_ai.agent.id', jsonb_build_object('stringValue', s.agent || '-' || (s.r % 7)),
        'gen_ai.conversation.id', jsonb_build_object('stringValue', 'conv-' || (s.i / 3)),
        'user.id', jsonb_build_object('stringValue', 'user-' || (s.r % 5000)),
        'session.id', jsonb_build_object('stringValue', 'sess-' || (s.i / 6)))
      WHEN 'chat' THEN jsonb_build_object(
        'gen_ai.agent.name', jsonb_build_object('stringValue', s.agent),
        'gen_ai.system', jsonb_build_object('stringValue', s.provider),
        'gen_ai.request.model', jsonb_build_object('stringValue', s.model),
        'gen_ai.response.model', jsonb_build_object('stringValue', s.model || '-2025-06-01'),
        'gen_ai.usage.input_tokens', jsonb_build_object('intValue', s.in_tok::text),
        'gen_ai.usage.output_tokens', jsonb_build_object('intValue', s.out_tok::text),
        'gen_ai.response.id', jsonb_build_object('stringValue', 'chatcmpl-' || s.i || '-' || s.k || '-' || s.r))
      ELSE jsonb_build_object(
        'gen_ai.agent.name', jsonb_build_object('stringValue', s.agent),
        'gen_ai.tool.name', jsonb_build_object('stringValue', s.tool),
        'gen_ai.tool.call.id', jsonb_build_object('stringValue', 'call_' || s.i || '_' || s.k || '_' || s.r),
        'gen_ai.tool.description', jsonb_build_object('stringValue', 'Runs ' || s.tool || ' for the agent'),
        'input.value', jsonb_build_object('stringValue', '{"query":"quarterly revenue by region for account ' || s.r || '","limit":20}'))
      END AS attributes,
    CASE WHEN s.status = 2 THEN 1 ELSE 0 END AS event_count,
    CASE WHEN s.k = 0 AND get_byte(s.trace_id, 1) < ${LINK_BYTE_BELOW} THEN 1 ELSE 0 END AS link_count,
    s.service AS service_name, s.agent AS agent_name, s.model, s.provider,
    CASE s.role WHEN 'root' THEN 'invoke_agent' WHEN 'chat' THEN 'chat' ELSE 'execute_tool' END AS operation_name,
    s.tool AS tool_name,
    CASE s.role WHEN 'chat' THEN s.in_tok END AS input_tokens,
    CASE s.role WHEN 'chat' THEN s.out_tok END AS output_tokens,
    CASE s.role WHEN 'chat' THEN round((s.in_tok * p.input_usd_per_million + s.out_tok * p.output_usd_per_million) / 1000000, 10) END AS cost_usd,
    s.role = 'chat' AS is_llm, s.role = 'tool' AS is_tool
  FROM s LEFT JOIN core.default_model_prices p ON p.model = s.model
), ins AS (
  INSERT INTO telemetry.spans (
    project_id, trace_id, span_id, start_time, parent_span_id, trace_state, name, kind, start_time_unix_nano, end_time_unix_nano,
    status_code, status_message, flags, resource_attributes, resource_dropped_attributes_count, resource_schema_url,
    scope_name, scope_version, scope_attributes, scope_dropped_attributes_count, scope_schema_url, attributes,
    dropped_attributes_count, dropped_events_count, dropped_links_count, event_count, link_count, service_name, agent_name,
    model, provider, operation_name, tool_name, input_tokens, output_tokens, cost_usd, is_llm, is_tool)
  SELECT project_id, trace_id, span_id, start_time, parent_span_id, trace_state, name, kind, start_ns, end_ns,
    status_code, status_message, flags, resource_attributes, 0, resource_schema_url,
    scope_name, scope_version, scope_attributes, 0, scope_schema_url, attributes,
    0, 0, 0, event_count, link_count, service_name, agent_name,
    model, provider, operation_name, tool_name, input_tokens, output_tokens, cost_usd, is_llm, is_tool
  FROM rows
  RETURNING ${[...ret].join(', ')}
), ev AS (
  INSERT INTO telemetry.span_events (project_id, trace_id, span_id, span_start_time, event_index, time_unix_nano, name, attributes, dropped_attributes_count)
  SELECT project_id, trace_id, span_id, start_time, 0, end_time_unix_nano - 1000000, 'exception',
    jsonb_build_object('exception.type', jsonb_build_object('stringValue', CASE WHEN parent_span_id IS NULL THEN 'AgentRunError' ELSE 'UpstreamTimeoutError' END),
      'exception.message', jsonb_build_object('stringValue', 'upstream did not answer within 30 s'),
      'exception.escaped', jsonb_build_object('boolValue', false)), 0
  FROM ins WHERE status_code = 2
), ln AS (
  INSERT INTO telemetry.span_links (project_id, trace_id, span_id, span_start_time, link_index, linked_trace_id, linked_span_id, trace_state, attributes, dropped_attributes_count, flags)
  SELECT project_id, trace_id, span_id, start_time, 0, decode(md5(encode(trace_id, 'hex')), 'hex'), decode(substr(md5(encode(span_id, 'hex')), 1, 16), 'hex'),
    NULL, jsonb_build_object('link.kind', jsonb_build_object('stringValue', 'previous_turn')), 0, 257
  FROM ins WHERE parent_span_id IS NULL AND get_byte(trace_id, 1) < ${LINK_BYTE_BELOW}
${INSERT_BATCH_SQL.slice(aggAt)}`;
}

/**
 * Load ≈ `spans` spans (spans / 10 traces) with root starts spread evenly (plus jitter) over the
 * last `days` days, in time order, `chunkTraces` traces per statement over `streams` connections.
 * Returns counts and timings; `onChunk(doneTraces, totalTraces)` reports progress.
 */
export async function loadTraces({ url, spans, days, streams = 2, chunkTraces = 5000, seed = 'strathon-bench', onChunk }) {
  const traces = Math.max(1, Math.round(spans / 10));
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  const rangeNs = BigInt(Math.round(days * 86_400)) * 1_000_000_000n;
  const baseNs = nowNs - rangeNs - 60_000_000_000n;
  const stepNs = rangeNs / BigInt(traces);
  const pickTable = AGENTS.flatMap((a) => Array.from({ length: a.pct }, () => ({ agent: a.agent, service: a.service })));
  if (pickTable.length !== 100) throw new Error('agent shares must add up to 100 %');
  const sql = generatorSql();
  const templates = await spanTemplates();

  const clients = [];
  for (let i = 0; i < streams; i++) {
    const c = await connect(url);
    // Ended by cleanup when interrupted (DROP DATABASE … WITH (FORCE)): errors surface in the queries, not as a crash.
    c.on('error', () => undefined);
    // Durability of the load itself does not matter (the measurement follows a CHECKPOINT);
    // the writer's summary aggregation gets memory for a whole chunk.
    await c.query("SET synchronous_commit = off; SET work_mem = '128MB'");
    clients.push(c);
  }
  // Monthly partitions back to the oldest span (the receiver creates [this month - 1, + ahead]).
  await clients[0].query('SELECT telemetry.ensure_month_partitions(0, $1::timestamptz)', [new Date(Number(baseNs / 1_000_000n)).toISOString()]);

  const chunks = [];
  for (let lo = 0; lo < traces; lo += chunkTraces) chunks.push([lo, Math.min(traces, lo + chunkTraces)]);
  let next = 0;
  let doneTraces = 0;
  let inserted = 0;
  let summaries = 0;
  const t0 = performance.now();
  await Promise.all(clients.map(async (c) => {
    while (next < chunks.length) {
      const [lo, hi] = chunks[next++];
      const r = await c.query(sql, [
        seed, lo, hi, baseNs.toString(), stepNs.toString(), JSON.stringify(pickTable), FAILED_SHARE, JSON.stringify(templates),
        JSON.stringify(MODELS), JSON.stringify(TOOLS), JSON.stringify(RARE_MODEL), DEFAULT_PROJECT_ID,
      ]);
      inserted += r.rows[0].inserted;
      summaries += r.rows[0].traces;
      doneTraces += hi - lo;
      onChunk?.(doneTraces, traces, inserted);
    }
  }));
  const loadS = (performance.now() - t0) / 1000;
  for (const c of clients) await c.end().catch(() => undefined);
  if (summaries !== traces) throw new Error(`loaded ${summaries} trace summaries, expected ${traces}`);
  return { traces, spans: inserted, loadS, days, firstStartNs: baseNs.toString(), lastStartNs: (baseNs + stepNs * BigInt(traces)).toString() };
}
