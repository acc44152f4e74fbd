// Halt routes and intervention sync (SPEC §7.3, §8.2). Halt ids are integers; another project's
// halt answers 404 like an unknown one.
import type { Request, Response } from 'express';
import { NotFound, Unprocessable } from '../errors.js';
import { clearHalt, createHalt, DEFAULT_DECIDED_WINDOW_SECONDS, getHalt, haltJson, listHalts, type HaltScope } from '../governance/governance.js';
import { principalOf } from './app.js';
import { changeOf, encodeIdCursor, integerParam, parseIdCursor, type GovernanceApi } from './governance-common.js';
import { parseEnum, parseLimit } from './params.js';
import { scope, type Route } from './routes.js';

type Body = Record<string, unknown>;

function bodyObject(body: unknown): Body {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new Unprocessable('body must be a JSON object', ['body'], 'model_type');
  return body as Body;
}

function agentName(v: unknown, field: string): string | null {
  if (v === undefined || v === null || v === '') return null;
  // eslint-disable-next-line no-control-regex
  if (typeof v !== 'string' || !v.trim() || v.length > 200 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new Unprocessable(`${field} must be an agent name of 1 to 200 characters`, ['body', field], 'string_type');
  }
  return v.trim();
}

/** {scope, scope_value? | agent_name? (CLI form), reason}. */
function haltRequest(body: unknown): { scope: HaltScope; scopeValue: string | null; reason: string } {
  const b = bodyObject(body);
  const s = b.scope;
  if (s === undefined || s === null) throw new Unprocessable('scope is required ("project" or "agent")', ['body', 'scope'], 'missing');
  if (s !== 'project' && s !== 'agent') throw new Unprocessable('scope must be one of: project, agent', ['body', 'scope'], 'enum');
  const value = agentName(b.scope_value, 'scope_value') ?? agentName(b.agent_name, 'agent_name');
  if (s === 'agent' && value === null) throw new Unprocessable('an agent halt needs the agent name (scope_value or agent_name)', ['body', 'scope_value'], 'missing');
  if (s === 'project' && value !== null) throw new Unprocessable('a project halt has no scope_value', ['body', 'scope_value']);
  const reason = b.reason ?? '';
  if (typeof reason !== 'string' || reason.length > 2000) throw new Unprocessable('reason must be a string of at most 2000 characters', ['body', 'reason'], 'string_type');
  return { scope: s, scopeValue: value, reason: reason.trim() };
}

interface SyncRequest { agents: string[] | null; since: Date }

function syncRequest(body: unknown): SyncRequest {
  const b = bodyObject(body);
  let agents: string[] | null = null;
  if (b.agents !== undefined && b.agents !== null) {
    if (!Array.isArray(b.agents) || b.agents.length > 1000) throw new Unprocessable('agents must be a list of at most 1000 agent names', ['body', 'agents'], 'list_type');
    agents = b.agents.map((a, i) => {
      if (typeof a !== 'string' || a.length > 200) throw new Unprocessable('each agent must be a name of at most 200 characters', ['body', 'agents', i], 'string_type');
      return a;
    });
  }
  let since = new Date(Date.now() - DEFAULT_DECIDED_WINDOW_SECONDS * 1000);
  const raw = b.since_unix_nano;
  if (raw !== undefined && raw !== null) {
    const text = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw) : raw;
    if (typeof text !== 'string' || !/^\d{1,19}$/.test(text)) throw new Unprocessable('since_unix_nano must be a unix time in nanoseconds', ['body', 'since_unix_nano'], 'int_parsing');
    since = new Date(Number(BigInt(text) / 1_000_000n));
  }
  return { agents, since };
}

export function haltRoutes({ ctx, deps }: GovernanceApi): Route[] {
  const read = scope('halts:read');
  const write = scope('halts:write');

  const list = async (req: Request, res: Response) => {
    const state = parseEnum(req, 'state', ['active', 'all'] as const) ?? 'active';
    const limit = parseLimit(req);
    const rows = await listHalts(ctx.pool, principalOf(res).projectId, { all: state === 'all', beforeId: parseIdCursor(req, 'halt'), limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    res.json({ halts: page.map(haltJson), next_cursor: rows.length > limit && last ? encodeIdCursor('halt', last.id) : null });
  };

  const create = async (req: Request, res: Response) => {
    const row = await createHalt(deps, changeOf(ctx, req, res), haltRequest(req.body));
    res.status(201).json({ halt: haltJson(row), id: Number(row.id) });
  };

  const get = async (req: Request, res: Response) => {
    const row = await getHalt(ctx.pool, principalOf(res).projectId, integerParam(req, 'halt'));
    if (!row) throw new NotFound('halt not found');
    res.json({ halt: haltJson(row) });
  };

  const clear = async (req: Request, res: Response) => {
    const row = await clearHalt(deps, changeOf(ctx, req, res), integerParam(req, 'halt'));
    res.json({ halt: haltJson(row) });
  };

  const sync = async (req: Request, res: Response) => {
    const { agents, since } = syncRequest(req.body);
    const state = await ctx.sync.state(principalOf(res).projectId, agents, since);
    res.json({ ...state, synced_at_unix_nano: (BigInt(Date.now()) * 1_000_000n).toString() });
  };

  return [
    { method: 'GET', path: '/v1/halts', auth: read, body: 'none', handler: list },
    { method: 'POST', path: '/v1/halts', auth: write, body: 'json', handler: create },
    { method: 'GET', path: '/v1/halts/:id', auth: read, body: 'none', handler: get },
    { method: 'DELETE', path: '/v1/halts/:id', auth: write, body: 'none', handler: clear },
    { method: 'POST', path: '/v1/halts/:id/resolve', auth: write, body: 'json', handler: clear },
    { method: 'POST', path: '/v1/intervention/sync', auth: read, body: 'json', handler: sync },
  ];
}
