// What the receiver does with the outcome of evaluating policies on ingested spans (SPEC §8.1):
// record each match (idempotently: a re-sent span is not counted twice), keep match_count and
// last_matched_at, fire policy.matched for `alert` policies, halt the matching agent for `halt`
// policies, and record failures. Shadow policies are recorded with what they would have done and
// never act. Everything of one batch commits in one transaction.
import type { LoadedPolicy } from './policies.js';
import { evaluatorActor, inTransaction, recordEvent, type GovernanceDeps, type Queryable } from './change.js';
import { insertSystemHalt } from './halts.js';

/** The facts of a span an evaluation record keeps. */
export interface EvaluatedSpan { trace_id: string; span_id: string; name: string; start_ns: string; agent_name: string | null; tool_name: string | null }

export interface PolicyMatch { policy: LoadedPolicy; span: EvaluatedSpan }
/** The first failure of a policy in a batch, and how many of its evaluations failed. */
export interface PolicyFailure { policy: LoadedPolicy; span: EvaluatedSpan; message: string; count: number }

export interface RecordedOutcome { matches: number; errors: number; halts: number; alerts: number }

const MAX_SPANS_IN_EVENT = 10;

interface InsertedRow { policy_id: string; trace_id: string; span_id: string; span_name: string | null; agent_name: string | null; tool_name: string | null }

// One statement: the new evaluation rows (a policy deleted meanwhile is skipped), then the match
// counters of their policies, counting only rows that were really inserted.
const RECORD_MATCHES_SQL = `
WITH input AS (
  SELECT * FROM json_to_recordset($2::json) AS r(policy_id uuid, action text, shadow boolean, acted boolean, trace_id text, span_id text,
    span_name text, start_ns bigint, agent_name text, tool_name text)
), ins AS (
  INSERT INTO core.policy_evaluations (project_id, policy_id, outcome, action, shadow, acted, trace_id, span_id, span_name, span_start_time, agent_name, tool_name)
  SELECT $1, i.policy_id, 'matched', i.action, i.shadow, i.acted, decode(i.trace_id, 'hex'), decode(i.span_id, 'hex'), i.span_name,
    to_timestamp(i.start_ns / 1000000000.0), i.agent_name, i.tool_name
  FROM input i
  WHERE EXISTS (SELECT 1 FROM core.policies p WHERE p.project_id = $1 AND p.id = i.policy_id)
  ON CONFLICT DO NOTHING
  RETURNING policy_id, trace_id, span_id, span_name, agent_name, tool_name
), bump AS (
  UPDATE core.policies p SET match_count = p.match_count + c.n, last_matched_at = now()
  FROM (SELECT policy_id, count(*) AS n FROM ins GROUP BY policy_id) c
  WHERE p.project_id = $1 AND p.id = c.policy_id
)
SELECT policy_id, encode(trace_id, 'hex') AS trace_id, encode(span_id, 'hex') AS span_id, span_name, agent_name, tool_name FROM ins`;

const RECORD_FAILURE_SQL = `
WITH policy AS (
  UPDATE core.policies SET error_count = error_count + $3, last_error = $4, last_error_at = now()
  WHERE project_id = $1 AND id = $2 RETURNING id, action, shadow
)
INSERT INTO core.policy_evaluations (project_id, policy_id, outcome, action, shadow, trace_id, span_id, span_name, span_start_time, agent_name, tool_name, error)
SELECT $1, policy.id, 'error', policy.action, policy.shadow, decode($5, 'hex'), decode($6, 'hex'), $7, to_timestamp($8::bigint / 1000000000.0), $9, $10, $4
FROM policy
ON CONFLICT DO NOTHING`;

/** Would the receiver act on this match? Never for shadow policies; halts need an agent to halt. */
function acts(p: LoadedPolicy, s: EvaluatedSpan): boolean {
  if (p.shadow) return false;
  return p.action === 'alert' || (p.action === 'halt' && s.agent_name !== null);
}

export async function recordOutcomes(deps: GovernanceDeps, projectId: string, matches: PolicyMatch[], failures: PolicyFailure[]): Promise<RecordedOutcome> {
  if (!matches.length && !failures.length) return { matches: 0, errors: 0, halts: 0, alerts: 0 };
  return inTransaction(deps.pool, async (tx) => {
    const out: RecordedOutcome = { matches: 0, errors: 0, halts: 0, alerts: 0 };
    const byId = new Map(matches.map((m) => [m.policy.id, m.policy]));
    if (matches.length) {
      const rows = matches.map((m) => ({
        policy_id: m.policy.id, action: m.policy.action, shadow: m.policy.shadow, acted: acts(m.policy, m.span),
        trace_id: m.span.trace_id, span_id: m.span.span_id, span_name: m.span.name, start_ns: m.span.start_ns,
        agent_name: m.span.agent_name, tool_name: m.span.tool_name,
      }));
      const r = await tx.query<InsertedRow>(RECORD_MATCHES_SQL, [projectId, JSON.stringify(rows)]);
      out.matches = r.rows.length;
      const fresh = new Map<string, InsertedRow[]>();
      for (const row of r.rows) fresh.set(row.policy_id, [...(fresh.get(row.policy_id) ?? []), row]);
      for (const [policyId, inserted] of fresh) {
        const policy = byId.get(policyId);
        if (!policy || policy.shadow) continue;
        if (policy.action === 'alert') {
          await recordEvent(tx, projectId, 'policy.matched', {
            policy: { id: policy.id, name: policy.name, action: policy.action },
            matches: inserted.length,
            spans: inserted.slice(0, MAX_SPANS_IN_EVENT).map((s) => ({ trace_id: s.trace_id, span_id: s.span_id, span_name: s.span_name, agent_name: s.agent_name, tool_name: s.tool_name })),
          });
          out.alerts++;
        } else if (policy.action === 'halt') {
          const agents = [...new Set(inserted.map((s) => s.agent_name).filter((a): a is string => a !== null))];
          for (const agent of agents) {
            const first = inserted.find((s) => s.agent_name === agent);
            const halt = await insertSystemHalt(tx, deps, evaluatorActor(), {
              projectId, scope: 'agent', scopeValue: agent, policyId: policy.id,
              reason: `policy "${policy.name}" matched span "${first?.span_name ?? ''}" (trace ${first?.trace_id ?? ''})`,
              actor: { type: 'policy', id: policy.id, display: policy.name },
            });
            if (halt) out.halts++;
          }
        }
      }
    }
    for (const f of failures) {
      await tx.query(RECORD_FAILURE_SQL, [
        projectId, f.policy.id, f.count, f.message.slice(0, 1000), f.span.trace_id, f.span.span_id, f.span.name, f.span.start_ns, f.span.agent_name, f.span.tool_name,
      ]);
      out.errors += f.count;
    }
    return out;
  });
}

// ---- GET /v1/policies/evaluations ---------------------------------------------------------------

export interface EvaluationRow {
  id: string; policy_id: string; policy_name: string | null; outcome: 'matched' | 'error'; action: string; shadow: boolean; acted: boolean;
  trace_id: string; span_id: string; span_name: string | null; span_start_time: Date | null; agent_name: string | null; tool_name: string | null;
  error: string | null; evaluated_at: Date;
}

export interface EvaluationFilters { policyId?: string; outcome?: 'matched' | 'error'; shadow?: boolean; agentName?: string }

/** Newest first, after the keyset position `beforeId`. */
export async function listEvaluations(db: Queryable, projectId: string, f: EvaluationFilters, beforeId: bigint | undefined, limit: number): Promise<EvaluationRow[]> {
  const r = await db.query<EvaluationRow>(
    `SELECT e.id::text AS id, e.policy_id, p.name AS policy_name, e.outcome, e.action, e.shadow, e.acted,
       encode(e.trace_id, 'hex') AS trace_id, encode(e.span_id, 'hex') AS span_id, e.span_name, e.span_start_time, e.agent_name, e.tool_name,
       e.error, e.evaluated_at
     FROM core.policy_evaluations e
     LEFT JOIN core.policies p ON p.project_id = e.project_id AND p.id = e.policy_id
     WHERE e.project_id = $1 AND ($2::uuid IS NULL OR e.policy_id = $2) AND ($3::text IS NULL OR e.outcome = $3)
       AND ($4::boolean IS NULL OR e.shadow = $4) AND ($5::text IS NULL OR e.agent_name = $5) AND ($6::bigint IS NULL OR e.id < $6::bigint)
     ORDER BY e.id DESC LIMIT $7`,
    [projectId, f.policyId ?? null, f.outcome ?? null, f.shadow ?? null, f.agentName ?? null, beforeId?.toString() ?? null, limit],
  );
  return r.rows;
}

export function evaluationJson(e: EvaluationRow) {
  return {
    id: Number(e.id),
    policy_id: e.policy_id,
    policy_name: e.policy_name,
    outcome: e.outcome,
    action: e.action,
    shadow: e.shadow,
    acted: e.acted,
    // A shadow match is what the policy would have done.
    would_have_acted: e.shadow && e.outcome === 'matched' ? e.action : null,
    trace_id: e.trace_id,
    span_id: e.span_id,
    span_name: e.span_name,
    agent_name: e.agent_name,
    tool_name: e.tool_name,
    error: e.error,
    timestamp: e.span_start_time ? e.span_start_time.toISOString() : null,
    evaluated_at: e.evaluated_at.toISOString(),
  };
}
