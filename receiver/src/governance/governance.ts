// Governance (SPEC §8): the public face of receiver/src/governance/. SQL and rules only — no HTTP
// (api/governance*.ts are the routes).
//
//   policies.ts        policy CRUD and validation (CEL compiled when saved: cel.ts)
//   evaluator.ts       evaluation of committed spans off the ingest path (queue → cel-thread.ts)
//   evaluations.ts     what a match does: records, counters, policy.matched, halt policies
//   simulate.ts        expressions against stored spans
//   analysis.ts        suggestions and conflicts
//   templates.ts       the OWASP-mapped template catalogue
//   halts.ts           kill switches; approvals.ts human approvals; sync.ts intervention sync
//   budgets.ts         budget CRUD; budget-monitor.ts the exactly-once monitor; forecast.ts
//   change.ts          one transaction per change, with its event and audit row inside it
export { type GovernanceDeps, type ChangeContext } from './change.js';
export { CelCompileError, compileExpression, MAX_EXPRESSION_LENGTH } from './cel.js';
export {
  ACTIONS, checkExpression, createPolicy, deletePolicy, getPolicy, listPolicies, policyFromBody, policyJson, updatePolicy,
  type PolicyAction, type PolicyFields, type PolicyRow,
} from './policies.js';
export { PolicyEvaluator, DEFAULT_EVALUATOR_OPTIONS, type EvaluatorOptions } from './evaluator.js';
export { evaluationJson, listEvaluations, type EvaluationFilters } from './evaluations.js';
export { simulate, MAX_SIMULATED_SPANS } from './simulate.js';
export { findConflicts, suggestPolicies, toolSet } from './analysis.js';
export { TEMPLATES, findTemplate, templateJson, type PolicyTemplate } from './templates.js';
export { clearHalt, createHalt, getHalt, haltJson, listHalts, type HaltRow, type HaltScope } from './halts.js';
export {
  APPROVAL_STATUSES, approvalJson, decideApproval, getApproval, listApprovals, requestApproval, type ApprovalStatus, type NewApproval,
} from './approvals.js';
export { DEFAULT_DECIDED_WINDOW_SECONDS, interventionState } from './sync.js';
export {
  budgetFields, budgetJson, createBudget, deleteBudget, getBudget, listBudgets, updateBudget, type BudgetRow,
} from './budgets.js';
export { BUDGET_MONITOR_TASK, budgetMonitorWorker, evaluateBudget, measureBudget, runBudgetMonitor, type BudgetTickResult } from './budget-monitor.js';
export { budgetForecasts, type BudgetForecast } from './forecast.js';
