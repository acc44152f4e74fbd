// The EU AI Act evidence report of POST /v1/compliance/export (SPEC §7.3), computed from what this
// receiver actually holds for the project: the audit chain (verified now), retention, the traces
// recorded. Governance features this build does not have yet (policies, approvals, halts, budgets)
// are reported as not configured — never assumed.
import { sql } from 'kysely';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/db.js';
import { anchorSummary, countAuditEvents, type AnchorSummary, type AuditFilters } from './events.js';
import { auditKeys } from './keys.js';
import { verifyChainAndReport, type ChainVerification } from './verify.js';

/** Article 19(1): logs kept at least six months. */
export const MIN_RETENTION_DAYS = 180;

export interface ComplianceFacts {
  projectId: string;
  generatedAt: string;
  range: { since: string | null; until: string | null };
  auditEvents: number;
  verification: ChainVerification;
  anchors: AnchorSummary;
  retention: { enabled: boolean; days: number; source: 'project' | 'default' };
  traces: number;
  agents: number;
  rateLimitEnabled: boolean;
  /** Governance features not present in this build: each is reported as not configured. */
  unavailable: { policies: true; approvals: true; halts: true; budgets: true };
}

export interface ArticleResult { compliant: boolean; evidence: Record<string, unknown> }
export type ArticleKey = 'art_12_record_keeping' | 'art_14_human_oversight' | 'art_15_robustness' | 'art_9_risk_management' | 'art_13_transparency';

export interface ComplianceReport {
  framework: 'eu-ai-act';
  generated_at: string;
  project_id: string;
  articles: Record<ArticleKey, ArticleResult>;
  recommendations: string[];
  audit: { events: number; verified: boolean };
}

const nsToRfc3339 = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString();

export interface ComplianceDeps { pool: pg.Pool; db: Db; config: Config }

export async function gatherComplianceFacts(deps: ComplianceDeps, projectId: string, range: Pick<AuditFilters, 'sinceNs' | 'untilNs'>): Promise<ComplianceFacts> {
  const { db, config } = deps;
  const [auditEvents, verification, anchors, project, traffic] = await Promise.all([
    countAuditEvents(db, projectId, range),
    verifyChainAndReport(deps.pool, projectId, auditKeys(config).verifying, 'export'),
    anchorSummary(db, projectId),
    db.selectFrom('core.projects').select('retention_days').where('id', '=', projectId).executeTakeFirst(),
    (() => {
      let q = db.selectFrom('telemetry.traces')
        .select([sql<string>`count(*)::text`.as('traces'), sql<string>`count(DISTINCT agent_name)::text`.as('agents')])
        .where('project_id', '=', projectId);
      if (range.sinceNs !== undefined) q = q.where('start_time_unix_nano', '>=', range.sinceNs.toString());
      if (range.untilNs !== undefined) q = q.where('start_time_unix_nano', '<', range.untilNs.toString());
      return q.executeTakeFirst();
    })(),
  ]);
  const projectDays = project?.retention_days ?? null;
  return {
    projectId,
    generatedAt: new Date().toISOString(),
    range: {
      since: range.sinceNs === undefined ? null : nsToRfc3339(range.sinceNs),
      until: range.untilNs === undefined ? null : nsToRfc3339(range.untilNs),
    },
    auditEvents,
    verification,
    anchors,
    retention: { enabled: config.retentionEnabled, days: projectDays ?? config.retentionDays, source: projectDays === null ? 'default' : 'project' },
    traces: Number(traffic?.traces ?? 0),
    agents: Number(traffic?.agents ?? 0),
    rateLimitEnabled: config.rateLimitEnabled,
    unavailable: { policies: true, approvals: true, halts: true, budgets: true },
  };
}

const NOT_CONFIGURED = { configured: false, count: 0, note: 'not available in this receiver build' };

export function complianceReport(f: ComplianceFacts): ComplianceReport {
  const recommendations: string[] = [];
  const retentionOk = !f.retention.enabled || f.retention.days >= MIN_RETENTION_DAYS;
  const chain = {
    valid: f.verification.valid, checked: f.verification.checked,
    first_bad_sequence: f.verification.first_bad_sequence, reason: f.verification.reason,
  };

  const art12 = f.verification.valid && retentionOk;
  if (!f.verification.valid) {
    recommendations.push(`Article 12: the audit chain does not verify (${f.verification.reason ?? 'unknown reason'}); investigate from sequence ${f.verification.first_bad_sequence ?? '?'} and restore from backup.`);
  }
  if (!retentionOk) {
    recommendations.push(`Article 12/19: traces are kept ${f.retention.days} days; keep logs at least ${MIN_RETENTION_DAYS} days (set the project's retention_days or STRATHON_RETENTION_DAYS).`);
  }
  const art13 = f.traces > 0;
  if (!art13) recommendations.push('Article 13: no agent traces were recorded in this period; instrument agents with OpenTelemetry so their operation can be interpreted.');
  recommendations.push(
    'Article 9: no risk-management policies are configured; define policies covering the identified risks.',
    'Article 14: no approval policies and no halts are configured; add human approval for high-risk tool calls and a halt (kill switch) procedure.',
    'Article 15: no budgets are configured; set cost and iteration budgets so runaway agents are stopped.',
  );

  return {
    framework: 'eu-ai-act',
    generated_at: f.generatedAt,
    project_id: f.projectId,
    articles: {
      art_12_record_keeping: {
        compliant: art12,
        evidence: {
          automatic_logging: 'every OTLP span is stored; every state change appends to the audit log',
          audit_events_in_period: f.auditEvents,
          audit_chain: chain,
          hash_chain: 'HMAC-SHA256 per project, signed anchors every 60 s',
          anchors: f.anchors,
          retention_days: f.retention.days,
          retention_source: f.retention.source,
          retention_enabled: f.retention.enabled,
          required_minimum_days: MIN_RETENTION_DAYS,
          period: f.range,
        },
      },
      art_14_human_oversight: {
        compliant: false,
        evidence: { approval_policies: NOT_CONFIGURED, halts: NOT_CONFIGURED },
      },
      art_15_robustness: {
        compliant: false,
        evidence: {
          budgets: NOT_CONFIGURED,
          rate_limiting: f.rateLimitEnabled,
          audit_tamper_evidence: f.verification.valid,
          api_keys: 'stored as SHA-256 digests',
        },
      },
      art_9_risk_management: {
        compliant: false,
        evidence: { policies: NOT_CONFIGURED, agents_observed: f.agents },
      },
      art_13_transparency: {
        compliant: art13,
        evidence: { traces_in_period: f.traces, agents_observed: f.agents, period: f.range },
      },
    },
    recommendations,
    audit: { events: f.auditEvents, verified: f.verification.valid },
  };
}

const ARTICLE_TITLES: Record<ArticleKey, string> = {
  art_12_record_keeping: 'Article 12 — record-keeping: automatic, tamper-evident event logs kept long enough',
  art_14_human_oversight: 'Article 14 — human oversight: approvals and the ability to halt',
  art_15_robustness: 'Article 15 — accuracy, robustness and cybersecurity',
  art_9_risk_management: 'Article 9 — risk-management system',
  art_13_transparency: 'Article 13 — transparency: operation that deployers can interpret',
};

/** SARIF 2.1.0: one rule per article, one `error` result per non-compliant article. */
export function complianceSarif(report: ComplianceReport, toolVersion: string): Record<string, unknown> {
  const keys = Object.keys(report.articles) as ArticleKey[];
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'strathon-ts',
          version: toolVersion,
          rules: keys.map((k) => ({
            id: k,
            name: k,
            shortDescription: { text: ARTICLE_TITLES[k] },
            defaultConfiguration: { level: 'error' },
          })),
        },
      },
      invocations: [{ executionSuccessful: true, endTimeUtc: report.generated_at }],
      results: keys.filter((k) => !report.articles[k].compliant).map((k) => ({
        ruleId: k,
        ruleIndex: keys.indexOf(k),
        level: 'error',
        message: { text: `${ARTICLE_TITLES[k]}: not compliant for project ${report.project_id}.` },
        properties: { evidence: report.articles[k].evidence },
      })),
      properties: { framework: report.framework, project_id: report.project_id, recommendations: report.recommendations, audit: report.audit },
    }],
  };
}
