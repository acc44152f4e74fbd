// GET /v1/audit/events, GET /v1/audit/verify, POST /v1/compliance/export (SPEC §7.3, §10).
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { Unprocessable } from '../errors.js';
import { clientIp } from '../auth/client-ip.js';
import {
  auditActorFromPrincipal, auditAnchorsChunk, auditAppendsCounter, auditEventsChunk, auditKeys, complianceReport, complianceSarif,
  gatherComplianceFacts, listAuditEvents, verifyChainAndReport, type AuditActor, type AuditAnchorRow, type AuditEventRow, type AuditFilters,
} from '../audit/audit.js';
import { principalOf } from './app.js';
import { scope, type Route } from './routes.js';
import { parseLimit, parseTimeRange, parseTimeValue, queryString } from './params.js';

/** The request facts an audit row records: who (the authenticated principal), which request, from where. */
export function auditRequestFields(ctx: Pick<ReceiverContext, 'config'>, req: Request, res: Response): { actor: AuditActor; requestId: string | null; sourceIp: string | null } {
  const requestId = res.getHeader('X-Request-Id');
  return {
    actor: auditActorFromPrincipal(principalOf(res)),
    requestId: typeof requestId === 'string' ? requestId : null,
    sourceIp: clientIp(req, ctx.config.trustedProxies) || null,
  };
}

// ---- GET /v1/audit/events -----------------------------------------------------------------------

type FilterField = Exclude<keyof AuditFilters, 'sinceNs' | 'untilNs'>;

/** Fields of Strathon's `filter=` expression (SCIM style: `action eq "x" and outcome eq "failure"`). */
const FILTER_FIELDS: Record<string, FilterField> = {
  action: 'action', actor: 'actor', actor_id: 'actor', actor_type: 'actorType', action_category: 'category', category: 'category',
  outcome: 'outcome', resource_type: 'resourceType', resource_id: 'resourceId', request_id: 'requestId',
};

const CLAUSE = /^\s*([A-Za-z_]+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*/i;

export function parseFilterExpression(raw: string): Partial<Record<FilterField, string>> {
  const out: Partial<Record<FilterField, string>> = {};
  const invalid = (msg: string) => new Unprocessable(`invalid filter: ${msg}`, ['query', 'filter']);
  let rest = raw;
  for (;;) {
    const m = CLAUSE.exec(rest);
    if (!m) throw invalid('expected clauses of the form field eq "value", joined by "and"');
    const name = (m[1] as string).toLowerCase();
    const field = FILTER_FIELDS[name];
    if (!field) throw invalid(`unknown field "${m[1]}" (known: ${Object.keys(FILTER_FIELDS).join(', ')})`);
    const value = (m[2] as string).replace(/\\(.)/g, '$1');
    if (out[field] !== undefined && out[field] !== value) throw invalid(`"${name}" is given twice with different values`);
    out[field] = value;
    rest = rest.slice(m[0].length);
    if (rest === '') return out;
    const and = /^and\s+/i.exec(rest);
    if (!and) throw invalid(`unexpected "${rest.slice(0, 20)}"; only "and" joins clauses`);
    rest = rest.slice(and[0].length);
  }
}

function parseFilters(req: Request): AuditFilters {
  const f: AuditFilters = { ...parseTimeRange(req) };
  const params: [string, FilterField][] = [
    ['action', 'action'], ['actor', 'actor'], ['resource_type', 'resourceType'], ['outcome', 'outcome'],
    ['category', 'category'], ['action_category', 'category'],
  ];
  for (const [name, field] of params) {
    const v = queryString(req, name);
    if (v !== undefined) f[field] = v;
  }
  const expr = queryString(req, 'filter');
  if (expr !== undefined) {
    for (const [field, value] of Object.entries(parseFilterExpression(expr)) as [FilterField, string][]) {
      if (f[field] !== undefined && f[field] !== value) {
        throw new Unprocessable(`filter and query parameter disagree on ${field}`, ['query', 'filter']);
      }
      f[field] = value;
    }
  }
  return f;
}

const encodeCursor = (seq: string) => Buffer.from(JSON.stringify({ k: 'audit', s: seq })).toString('base64url');

function parseCursor(req: Request): bigint | undefined {
  const raw = queryString(req, 'cursor');
  if (raw === undefined) return undefined;
  const invalid = new Unprocessable('cursor is not a cursor returned by this endpoint', ['query', 'cursor']);
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(raw)) throw invalid;
  try {
    const body = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { k?: unknown; s?: unknown };
    if (body.k !== 'audit' || typeof body.s !== 'string' || !/^\d{1,19}$/.test(body.s)) throw invalid;
    return BigInt(body.s);
  } catch {
    throw invalid;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * One event as SPEC §7.3 lists it (Strathon's shape plus the CLI's aliases). on_behalf_of and
 * resource.parent have no column: writers that know them put them in details under those names.
 */
export function auditEventJson(e: AuditEventRow) {
  return {
    id: e.id,
    sequence_no: Number(e.sequence_no),
    occurred_at: e.occurred_at,
    created_at: e.occurred_at,
    project_id: e.project_id,
    actor: { type: e.actor_type, id: e.actor_id, display: e.actor_display, on_behalf_of: str(e.details.on_behalf_of) },
    action: e.action,
    action_category: e.action_category,
    category: e.action_category,
    outcome: e.outcome,
    resource: { type: e.resource_type, id: e.resource_id, parent: str(e.details.resource_parent) },
    resource_type: e.resource_type,
    request_id: e.request_id,
    source_ip: e.source_ip,
    actor_ip: e.source_ip,
    actor_key_prefix: e.actor_key_prefix,
    details: e.details,
  };
}

const anchorJson = (a: AuditAnchorRow) => ({
  project_id: a.project_id, anchored_at: a.anchored_at, kind: a.kind, sequence_no: Number(a.sequence_no),
  hash: a.hash.toString('hex'), hmac_key_id: a.hmac_key_id, anchor_hmac: a.anchor_hmac.toString('hex'),
});

// ---- POST /v1/compliance/export -----------------------------------------------------------------

const FORMATS = ['json', 'sarif', 'ndjson'] as const;
type ExportFormat = (typeof FORMATS)[number];
const EXPORT_CHUNK = 500;

function bodyTime(body: Record<string, unknown>, name: 'since' | 'until'): bigint | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') return undefined;
  let text: string;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) text = String(v);
  else if (typeof v === 'string') text = v;
  else throw new Unprocessable(`${name} must be a unix timestamp in nanoseconds or an RFC 3339 time`, ['body', name]);
  try {
    return parseTimeValue(text, name);
  } catch (err) {
    if (err instanceof Unprocessable) throw new Unprocessable(err.message, ['body', name], err.type);
    throw err;
  }
}

function parseExportBody(req: Request): { format: ExportFormat; sinceNs?: bigint; untilNs?: bigint } {
  const raw: unknown = req.body ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Unprocessable('body must be a JSON object', ['body']);
  const body = raw as Record<string, unknown>;
  const format = body.format ?? 'json';
  if (typeof format !== 'string' || !(FORMATS as readonly string[]).includes(format.toLowerCase())) {
    throw new Unprocessable(`format must be one of: ${FORMATS.join(', ')}`, ['body', 'format'], 'enum');
  }
  const sinceNs = bodyTime(body, 'since');
  const untilNs = bodyTime(body, 'until');
  if (sinceNs !== undefined && untilNs !== undefined && sinceNs > untilNs) throw new Unprocessable('since must not be after until', ['body', 'since']);
  return { format: format.toLowerCase() as ExportFormat, sinceNs, untilNs };
}

/** Write one NDJSON line, waiting for the socket to drain when its buffer is full; false once the client is gone. */
async function writeLine(res: Response, value: unknown): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(`${JSON.stringify(value)}\n`)) {
    await new Promise<void>((resolve) => {
      const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  return !res.destroyed;
}

export function auditRoutes(ctx: ReceiverContext): Route[] {
  const read = scope('audit:read');
  // Registered at wiring time, so /metrics shows the counter before the first append.
  auditAppendsCounter(ctx.metrics.registry);

  const listEvents = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const limit = parseLimit(req);
    const before = parseCursor(req);
    const rows = await listAuditEvents(ctx.db, projectId, parseFilters(req), before, limit);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    res.json({ data: page.map(auditEventJson), next_cursor: rows.length > limit && last ? encodeCursor(last.sequence_no) : null });
  };

  const verify = async (_req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    res.json(await verifyChainAndReport(ctx.pool, projectId, auditKeys(ctx.config).verifying, 'api'));
  };

  const exportCompliance = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const { format, ...range } = parseExportBody(req);
    if (format === 'ndjson') {
      await streamNdjson(ctx, projectId, range, res);
      return;
    }
    const report = complianceReport(await gatherComplianceFacts(ctx, projectId, range));
    if (format === 'sarif') {
      res.status(200).type('application/sarif+json').send(JSON.stringify(complianceSarif(report, ctx.config.version), null, 2));
      return;
    }
    res.json(report);
  };

  return [
    { method: 'GET', path: '/v1/audit/events', auth: read, body: 'none', handler: listEvents },
    { method: 'GET', path: '/v1/audit/verify', auth: read, body: 'none', handler: verify },
    { method: 'POST', path: '/v1/compliance/export', auth: read, body: 'json', handler: exportCompliance },
  ];
}

/**
 * NDJSON: every audit event of the range (oldest first, with its chain fields so the export can be
 * checked offline), then every anchor of the range, then the verification of the whole chain.
 * Streamed in keyset chunks; memory stays bounded whatever the range.
 */
async function streamNdjson(ctx: ReceiverContext, projectId: string, range: Pick<AuditFilters, 'sinceNs' | 'untilNs'>, res: Response): Promise<void> {
  // Verify first: an error here can still be a proper HTTP error, and the last line reports the
  // chain as it was when the export began.
  const verification = await verifyChainAndReport(ctx.pool, projectId, auditKeys(ctx.config).verifying, 'export');
  res.status(200).type('application/x-ndjson');
  let after = 0n;
  for (;;) {
    const rows = await auditEventsChunk(ctx.db, projectId, range, after, EXPORT_CHUNK);
    for (const e of rows) {
      const line = { type: 'event', ...auditEventJson(e), hmac_key_id: e.hmac_key_id, prev_hash: e.prev_hash.toString('hex'), hash: e.hash.toString('hex') };
      if (!(await writeLine(res, line))) return;
    }
    const last = rows[rows.length - 1];
    if (!last || rows.length < EXPORT_CHUNK) break;
    after = BigInt(last.sequence_no);
  }
  let anchorAfter: string | undefined;
  for (;;) {
    const anchors = await auditAnchorsChunk(ctx.db, projectId, range, anchorAfter, EXPORT_CHUNK);
    for (const a of anchors) if (!(await writeLine(res, { type: 'anchor', ...anchorJson(a) }))) return;
    const last = anchors[anchors.length - 1];
    if (!last || anchors.length < EXPORT_CHUNK) break;
    anchorAfter = last.anchored_at;
  }
  await writeLine(res, { type: 'verification', ...verification });
  res.end();
}
