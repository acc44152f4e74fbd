// The tamper-evident audit log (SPEC §10): the public face of receiver/src/audit/.
//
//   appendAudit(db, event, ctx)        one row on the project's HMAC chain, inside the caller's
//                                      transaction or its own (append.ts; canonical form: canonical.ts)
//   verifyChain(pool, project, keys)   recompute a chain, report the first bad sequence (verify.ts);
//                                      verifyChainAndReport also emits audit.verification_failed
//   runAuditMaintenance(ctx)           one tick of audit_partition_task: partitions + anchors (worker.ts)
//   listAuditEvents / auditEventsChunk the read side for the API and the export (events.ts)
//   complianceReport / complianceSarif the EU AI Act evidence report (compliance.ts)
export { appendAudit, auditAppendsCounter, normalizeIp, type AuditEventInput, type AppendedAudit, type AuditDeps } from './append.js';
export { verifyChain, verifyChainAndReport, auditedProjects, type ChainVerification } from './verify.js';
export { auditKeys, type AuditKeys } from './keys.js';
export { auditActorFromPrincipal, systemActor, cliActor, type AuditActor } from './actor.js';
export { ensureAuditPartitions, writeAnchors, dropAuditPartition } from './maintenance.js';
export {
  runAuditMaintenance, auditPartitionWorker, AUDIT_PARTITION_TASK, AUDIT_ANCHOR_INTERVAL_SECONDS,
  type AuditMaintenanceContext, type AuditMaintenanceResult,
} from './worker.js';
export {
  listAuditEvents, auditEventsChunk, auditAnchorsChunk, countAuditEvents, anchorSummary,
  type AuditFilters, type AuditEventRow, type AuditChainedEventRow, type AuditAnchorRow, type AnchorSummary,
} from './events.js';
export {
  gatherComplianceFacts, complianceReport, complianceSarif, MIN_RETENTION_DAYS,
  type ComplianceFacts, type ComplianceReport, type ArticleResult, type ArticleKey,
} from './compliance.js';
export { GENESIS_HASH, type ActorType, type Outcome, type AnchorKind, type JsonObject } from './canonical.js';
