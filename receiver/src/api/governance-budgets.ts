// Budget routes (SPEC §7.3, §8.3): Strathon's and the CLI's create forms, get/patch/delete.
// Another project's budget answers 404 like an unknown one.
import type { Request, Response } from 'express';
import { budgetFields, budgetJson, createBudget, deleteBudget, getBudget, listBudgets, updateBudget } from '../governance/governance.js';
import { principalOf } from './app.js';
import { changeOf, uuidParam, type GovernanceApi } from './governance-common.js';
import { parseBool, parseLimit, parseRowCursor, rowPage } from './params.js';
import { scope, type Route } from './routes.js';

export function budgetRoutes({ ctx, deps }: GovernanceApi): Route[] {
  const read = scope('budgets:read');
  const write = scope('budgets:write');

  const list = async (req: Request, res: Response) => {
    const limit = parseLimit(req);
    const rows = await listBudgets(ctx.pool, principalOf(res).projectId, parseBool(req, 'include_inactive') ?? false, parseRowCursor(req, 'budget'), limit + 1);
    const { page, next_cursor } = rowPage(rows, limit, 'budget');
    res.json({ budgets: page.map(budgetJson), next_cursor });
  };

  const create = async (req: Request, res: Response) => {
    const row = await createBudget(deps, changeOf(ctx, req, res), budgetFields(req.body));
    // Top-level id for the CLI ("Budget created: <id>").
    res.status(201).json({ budget: budgetJson(row), id: row.id });
  };

  const get = async (req: Request, res: Response) => {
    res.json({ budget: budgetJson(await getBudget(ctx.pool, principalOf(res).projectId, uuidParam(req, 'budget'))) });
  };

  const patch = async (req: Request, res: Response) => {
    res.json({ budget: budgetJson(await updateBudget(deps, changeOf(ctx, req, res), uuidParam(req, 'budget'), req.body)) });
  };

  const remove = async (req: Request, res: Response) => {
    await deleteBudget(deps, changeOf(ctx, req, res), uuidParam(req, 'budget'));
    res.json({ deleted: true });
  };

  return [
    { method: 'GET', path: '/v1/budgets', auth: read, body: 'none', handler: list },
    { method: 'POST', path: '/v1/budgets', auth: write, body: 'json', handler: create },
    { method: 'GET', path: '/v1/budgets/:id', auth: read, body: 'none', handler: get },
    { method: 'PATCH', path: '/v1/budgets/:id', auth: write, body: 'json', handler: patch },
    { method: 'DELETE', path: '/v1/budgets/:id', auth: write, body: 'none', handler: remove },
  ];
}
