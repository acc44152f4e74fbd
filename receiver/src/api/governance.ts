// Governance routes (SPEC §7.3, §8): policies and templates, halts and intervention sync,
// approvals, budgets. Building them also connects policy evaluation to ingest: committed spans are
// handed to the evaluator after the writer's commit, never on the acknowledgement path.
import type { ReceiverContext } from '../context.js';
import { PolicyEvaluator, type GovernanceDeps } from '../governance/governance.js';
import type { Route } from './routes.js';
import type { GovernanceApi } from './governance-common.js';
import { policyRoutes } from './governance-policies.js';
import { haltRoutes } from './governance-halts.js';
import { approvalRoutes } from './governance-approvals.js';
import { budgetRoutes } from './governance-budgets.js';

export function governanceRoutes(ctx: ReceiverContext): Route[] {
  const deps: GovernanceDeps = { pool: ctx.pool, audit: { config: ctx.config, metrics: ctx.metrics }, log: ctx.log };
  const evaluator = new PolicyEvaluator({ ...deps, registry: ctx.metrics.registry });
  // Fire and forget: enqueue returns at once and never throws (a full queue skips and counts).
  ctx.ingest.afterCommit = (projectId, spans) => evaluator.enqueue(projectId, spans);
  // Only projects with enabled policies (cached, refreshed within policyCacheMs) keep their rows for it.
  ctx.ingest.afterCommitWants = (projectId) => evaluator.wantsSpans(projectId);
  // At shutdown: evaluate what is queued (bounded), then stop the CEL thread before the pool closes.
  ctx.ingest.afterCommitDrain = (timeoutMs) => evaluator.drainAndClose(timeoutMs);
  const api: GovernanceApi = { ctx, deps, evaluator };
  return [...policyRoutes(api), ...haltRoutes(api), ...approvalRoutes(api), ...budgetRoutes(api)];
}
