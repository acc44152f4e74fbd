// Approval routes (SPEC §7.3, §8.2): SDKs ask (traces:write) and poll (GET by id with the SDK's
// default policies:read key, as Strathon's SDK does); people list (halts:read) and decide
// (approvals:write). A decision on an approval that is no longer pending is a 409.
import type { Request, Response } from 'express';
import { Unprocessable } from '../errors.js';
import { APPROVAL_STATUSES, approvalJson, decideApproval, getApproval, listApprovals, requestApproval, type ApprovalStatus, type NewApproval } from '../governance/governance.js';
import { principalOf } from './app.js';
import { changeOf, uuidParam, type GovernanceApi } from './governance-common.js';
import { parseLimit, parseRowCursor, queryStringAny, rowPage } from './params.js';
import { scope, type Route } from './routes.js';

type Body = Record<string, unknown>;

function bodyObject(body: unknown): Body {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new Unprocessable('body must be a JSON object', ['body'], 'model_type');
  return body as Body;
}

function optText(b: Body, field: string, max: number): string | null {
  const v = b[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > max || v.includes('\u0000')) throw new Unprocessable(`${field} must be a string of at most ${max} characters`, ['body', field], 'string_type');
  return v;
}

function optHex(b: Body, field: string, length: number): string | null {
  const v = optText(b, field, 64);
  if (v === null || v === '') return null;
  if (!new RegExp(`^[0-9a-fA-F]{${length}}$`).test(v)) throw new Unprocessable(`${field} must be ${length} hexadecimal characters`, ['body', field]);
  return v.toLowerCase();
}

function optInt(b: Body, field: string, dflt: number, min: number, max: number): number {
  const v = b[field];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Unprocessable(`${field} must be an integer between ${min} and ${max}`, ['body', field], 'int_type');
  return v;
}

function approvalRequest(body: unknown): NewApproval {
  const b = bodyObject(body);
  const policyId = optText(b, 'policy_id', 64);
  if (policyId === null) throw new Unprocessable('policy_id is required', ['body', 'policy_id'], 'missing');
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(policyId)) throw new Unprocessable('policy_id must be a policy id (UUID)', ['body', 'policy_id']);
  if (b.tool_args !== undefined && JSON.stringify(b.tool_args).length > 65_536) throw new Unprocessable('tool_args must be at most 64 KiB of JSON', ['body', 'tool_args'], 'too_long');
  return {
    policyId: policyId.toLowerCase(), policyName: optText(b, 'policy_name', 200), traceId: optHex(b, 'trace_id', 32), spanId: optHex(b, 'span_id', 16),
    spanName: optText(b, 'span_name', 1000), agentName: optText(b, 'agent_name', 200), toolName: optText(b, 'tool_name', 200),
    toolArgs: b.tool_args === undefined ? null : b.tool_args,
    timeoutSeconds: optInt(b, 'timeout_seconds', 300, 1, 86_400), approversRequired: optInt(b, 'approvers_required', 1, 1, 10),
  };
}

export function approvalRoutes({ ctx, deps }: GovernanceApi): Route[] {
  const list = async (req: Request, res: Response) => {
    const given = queryStringAny(req, ['status', 'status_filter']);
    const allowed = [...APPROVAL_STATUSES, 'all'] as const;
    const status = (given?.value.trim().toLowerCase() ?? 'pending') as ApprovalStatus | 'all';
    if (!(allowed as readonly string[]).includes(status)) throw new Unprocessable(`${given?.name ?? 'status'} must be one of: ${allowed.join(', ')}`, ['query', given?.name ?? 'status'], 'enum');
    const limit = parseLimit(req);
    const rows = await listApprovals(ctx.pool, principalOf(res).projectId, status, parseRowCursor(req, 'approval'), limit + 1);
    const { page, next_cursor } = rowPage(rows, limit, 'approval');
    res.json({ approvals: page.map(approvalJson), next_cursor });
  };

  const create = async (req: Request, res: Response) => {
    const row = await requestApproval(deps, changeOf(ctx, req, res), approvalRequest(req.body));
    res.status(201).json({ approval: approvalJson(row) });
  };

  const get = async (req: Request, res: Response) => {
    res.json({ approval: approvalJson(await getApproval(ctx.pool, principalOf(res).projectId, uuidParam(req, 'approval'))) });
  };

  const decide = (decision: 'approve' | 'deny') => async (req: Request, res: Response) => {
    const comment = optText(bodyObject(req.body), 'comment', 2000);
    const row = await decideApproval(deps, changeOf(ctx, req, res), uuidParam(req, 'approval'), decision, comment);
    res.json({ approval: approvalJson(row) });
  };

  return [
    { method: 'GET', path: '/v1/approvals', auth: scope('halts:read'), body: 'none', handler: list },
    { method: 'POST', path: '/v1/approvals', auth: scope('traces:write'), body: 'json', handler: create },
    { method: 'GET', path: '/v1/approvals/:id', auth: scope('policies:read'), body: 'none', handler: get },
    { method: 'POST', path: '/v1/approvals/:id/approve', auth: scope('approvals:write'), body: 'json', handler: decide('approve') },
    { method: 'POST', path: '/v1/approvals/:id/deny', auth: scope('approvals:write'), body: 'json', handler: decide('deny') },
  ];
}
