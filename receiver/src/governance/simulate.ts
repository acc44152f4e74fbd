// POST /v1/policies/simulate (SPEC §7.3): which stored spans of the last `hours` a match expression
// would have matched. Bounded: the newest MAX_SPANS spans of the range are tested, on the same
// evaluation thread and with the same time limits as ingest evaluation. Given a policy's applies_to,
// only those agents' spans can match, exactly as in live evaluation.
import type { SpanInput } from './cel.js';
import type { Queryable } from './change.js';
import type { PolicyEvaluator } from './evaluator.js';

export const MAX_SIMULATED_SPANS = 5000;
const CHUNK = 500;
const MAX_MATCHES_LISTED = 1000;

interface StoredSpan extends SpanInput { start_time: Date }

export interface SimulationResult {
  matches: { trace_id: string; span_id: string; span_name: string; tool_name: string | null; agent_name: string | null; timestamp: string }[];
  traces_tested: number; spans_tested: number; match_count: number; truncated: boolean; errors: number; first_error: string | null; hours: number;
}

async function recentSpans(db: Queryable, projectId: string, hours: number): Promise<StoredSpan[]> {
  const r = await db.query<StoredSpan>(
    `SELECT encode(trace_id, 'hex') AS trace_id, encode(span_id, 'hex') AS span_id, name, kind,
       start_time_unix_nano::text AS start_ns, end_time_unix_nano::text AS end_ns, status_code, status_message, attributes, resource_attributes,
       service_name, agent_name, model, tool_name, operation_name, input_tokens::text AS input_tokens, output_tokens::text AS output_tokens,
       cost_usd::text AS cost_usd, is_llm, is_tool, start_time
     FROM telemetry.spans
     WHERE project_id = $1 AND start_time >= now() - make_interval(hours => $2) AND start_time <= now() + interval '1 hour'
     ORDER BY start_time DESC LIMIT $3`,
    [projectId, hours, MAX_SIMULATED_SPANS + 1],
  );
  return r.rows;
}

export async function simulate(
  db: Queryable, evaluator: PolicyEvaluator, projectId: string, expression: string, hours: number, appliesTo: string[] = [],
): Promise<SimulationResult> {
  const rows = await recentSpans(db, projectId, hours);
  const truncated = rows.length > MAX_SIMULATED_SPANS;
  const spans = truncated ? rows.slice(0, MAX_SIMULATED_SPANS) : rows;
  const out: SimulationResult = {
    matches: [], traces_tested: new Set(spans.map((s) => s.trace_id)).size, spans_tested: spans.length, match_count: 0,
    truncated, errors: 0, first_error: null, hours,
  };
  for (let i = 0; i < spans.length; i += CHUNK) {
    const chunk = spans.slice(i, i + CHUNK);
    const { hits, stalled } = await evaluator.evaluate([{ expression, agents: appliesTo.length ? appliesTo : null }], chunk);
    for (const h of hits) {
      const s = chunk[h.s];
      if (!s) continue;
      if (h.kind === 'error') {
        out.errors++;
        out.first_error ??= h.message ?? 'evaluation failed';
        continue;
      }
      out.match_count++;
      if (out.matches.length < MAX_MATCHES_LISTED) {
        out.matches.push({ trace_id: s.trace_id, span_id: s.span_id, span_name: s.name, tool_name: s.tool_name, agent_name: s.agent_name, timestamp: s.start_time.toISOString() });
      }
    }
    if (stalled.length) {
      out.errors += stalled.length;
      out.first_error ??= `evaluation exceeded the time limit (${evaluator.hardLimitMs} ms) and was stopped`;
      break;
    }
  }
  return out;
}
