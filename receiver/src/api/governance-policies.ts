// Policy routes (SPEC §7.3, §8.1): CRUD, evaluations, simulate, suggest, conflicts, generate, and
// the template catalogue. Another project's policy answers 404, exactly like an unknown id.
import type { Request, Response } from 'express';
import { BadRequest, NotFound, Unprocessable } from '../errors.js';
import {
  checkExpression, createPolicy, deletePolicy, evaluationJson, findConflicts, findTemplate, getPolicy, listEvaluations, listPolicies,
  policyFromBody, policyJson, simulate, suggestPolicies, TEMPLATES, templateJson, updatePolicy,
} from '../governance/governance.js';
import { listPoliciesPage, MAX_POLICIES_LISTED } from '../governance/policies.js';
import { principalOf } from './app.js';
import { changeOf, encodeIdCursor, parseIdCursor, uuidParam, type GovernanceApi } from './governance-common.js';
import { parseBool, parseEnum, parseIntParam, parseLimit, parseRowCursor, queryString, rowPage } from './params.js';
import { scope, type Route } from './routes.js';

type Body = Record<string, unknown>;
const bodyOf = (req: Request): Body => (req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as Body) : {});

export function policyRoutes({ ctx, deps, evaluator }: GovernanceApi): Route[] {
  const read = scope('policies:read');
  const write = scope('policies:write');

  // Strathon's SDK loads its whole policy set from one unparameterised GET and enforces it
  // client-side, so without `limit` the answer is every policy (up to MAX_POLICIES_LISTED, with a
  // cursor beyond); with `limit` (1–500) it is a page like any list.
  const list = async (req: Request, res: Response) => {
    const limit = queryString(req, 'limit') === undefined ? MAX_POLICIES_LISTED : parseLimit(req);
    const rows = await listPoliciesPage(ctx.pool, principalOf(res).projectId, parseRowCursor(req, 'policy', true), limit + 1);
    const { page, next_cursor } = rowPage(rows, limit, 'policy', (p) => p.priority);
    res.json({ policies: page.map(policyJson), intervention_default_action: 'allow', next_cursor });
  };

  const create = async (req: Request, res: Response) => {
    const fields = policyFromBody(req.body);
    const row = await createPolicy(deps, changeOf(ctx, req, res), fields);
    evaluator.invalidate(row.project_id);
    res.status(201).json(policyJson(row));
  };

  const get = async (req: Request, res: Response) => {
    res.json(policyJson(await getPolicy(ctx.pool, principalOf(res).projectId, uuidParam(req, 'policy'))));
  };

  const patch = async (req: Request, res: Response) => {
    const row = await updatePolicy(deps, changeOf(ctx, req, res), uuidParam(req, 'policy'), req.body);
    evaluator.invalidate(row.project_id);
    res.json(policyJson(row));
  };

  const remove = async (req: Request, res: Response) => {
    const change = changeOf(ctx, req, res);
    await deletePolicy(deps, change, uuidParam(req, 'policy'));
    evaluator.invalidate(change.principal.projectId);
    res.status(204).end();
  };

  const evaluations = async (req: Request, res: Response) => {
    const limit = parseLimit(req);
    const policyId = queryString(req, 'policy_id');
    if (policyId !== undefined && !/^[0-9a-f-]{36}$/i.test(policyId)) throw new Unprocessable('policy_id must be a policy id (UUID)', ['query', 'policy_id']);
    const rows = await listEvaluations(ctx.pool, principalOf(res).projectId, {
      policyId: policyId?.toLowerCase(),
      outcome: parseEnum(req, 'outcome', ['matched', 'error'] as const),
      shadow: parseBool(req, 'shadow'),
      agentName: queryString(req, 'agent_name'),
    }, parseIdCursor(req, 'evaluation'), limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    res.json({ evaluations: page.map(evaluationJson), next_cursor: rows.length > limit && last ? encodeIdCursor('evaluation', last.id) : null });
  };

  const simulateRoute = async (req: Request, res: Response) => {
    const b = bodyOf(req);
    if (b.match_expression === undefined || b.match_expression === null) throw new Unprocessable('match_expression is required', ['body', 'match_expression'], 'missing');
    const expression = checkExpression(b.match_expression);
    const hours = b.hours === undefined || b.hours === null ? 24 : b.hours;
    if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 1 || hours > 720) {
      throw new Unprocessable('hours must be an integer between 1 and 720', ['body', 'hours'], 'int_type');
    }
    // Optional, as on a policy: simulate its agent targeting too (live evaluation applies it).
    const appliesTo = b.applies_to ?? [];
    if (!Array.isArray(appliesTo) || !appliesTo.every((a): a is string => typeof a === 'string')) {
      throw new Unprocessable('applies_to must be a list of agent names', ['body', 'applies_to'], 'list_type');
    }
    res.json(await simulate(ctx.pool, evaluator, principalOf(res).projectId, expression, hours, appliesTo));
  };

  const suggest = async (req: Request, res: Response) => {
    const days = parseIntParam(req, 'lookback_days', 30, 1, 365);
    res.json(await suggestPolicies(ctx.pool, principalOf(res).projectId, days));
  };

  const conflicts = async (_req: Request, res: Response) => {
    res.json(findConflicts(await listPolicies(ctx.pool, principalOf(res).projectId)));
  };

  const generate = () => {
    // No AI backend in this product; the CLI prints the detail cleanly.
    throw new BadRequest('policy generation is not configured');
  };

  const templates = (_req: Request, res: Response) => {
    res.json({ data: TEMPLATES.map(templateJson), next_cursor: null });
  };

  const apply = async (req: Request, res: Response) => {
    const template = findTemplate(String(req.params.id ?? ''));
    if (!template) throw new NotFound('policy template not found');
    const overrides = bodyOf(req);
    const base: Body = {
      name: template.name, description: template.description, match_expression: template.match_expression, action: template.action,
      action_config: template.action_config, applies_to: template.applies_to,
    };
    for (const [k, v] of Object.entries(overrides)) if (v !== undefined && v !== null) base[k] = v;
    const row = await createPolicy(deps, changeOf(ctx, req, res), policyFromBody(base), template.id);
    evaluator.invalidate(row.project_id);
    res.status(201).json({ template_id: template.id, policy: policyJson(row) });
  };

  // Fixed paths before /v1/policies/:id, which would otherwise take them.
  return [
    { method: 'GET', path: '/v1/policies', auth: read, body: 'none', handler: list },
    { method: 'POST', path: '/v1/policies', auth: write, body: 'json', handler: create },
    { method: 'GET', path: '/v1/policies/evaluations', auth: read, body: 'none', handler: evaluations },
    { method: 'POST', path: '/v1/policies/simulate', auth: read, body: 'json', handler: simulateRoute },
    { method: 'GET', path: '/v1/policies/suggest', auth: read, body: 'none', handler: suggest },
    { method: 'GET', path: '/v1/policies/conflicts', auth: read, body: 'none', handler: conflicts },
    { method: 'POST', path: '/v1/policies/generate', auth: write, body: 'json', handler: generate },
    { method: 'GET', path: '/v1/policies/:id', auth: read, body: 'none', handler: get },
    { method: 'PATCH', path: '/v1/policies/:id', auth: write, body: 'json', handler: patch },
    { method: 'DELETE', path: '/v1/policies/:id', auth: write, body: 'none', handler: remove },
    { method: 'GET', path: '/v1/policy-templates', auth: read, body: 'none', handler: templates },
    { method: 'POST', path: '/v1/policy-templates/:id/apply', auth: write, body: 'json', handler: apply },
  ];
}
