// API key routes (SPEC §6.2, §7.3 /v1/api_keys): list (prefix only), create and rotate (raw key
// returned once), revoke. Ids of another project's keys answer 404, exactly like unknown ids.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { NotFound } from '../errors.js';
import { clientIp } from '../auth/client-ip.js';
import {
  createKey, getApiKey, input, listApiKeys, revokeKey, rotateKey, DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS,
  type AccessDeps, type ApiKeyRow, type ChangeContext,
} from '../access/access.js';
import { principalOf } from './app.js';
import { parseBool } from './params.js';
import { scope, type Route } from './routes.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The key object of SPEC §7.3: never the hash, never the raw key (that is added once, as "key"). */
export function apiKeyJson(k: ApiKeyRow) {
  return {
    id: k.id, project_id: k.project_id, name: k.name, key_prefix: k.key_prefix, scopes: k.scopes,
    created_at: iso(k.created_at), last_used_at: iso(k.last_used_at), revoked_at: iso(k.revoked_at),
    deprecated_at: iso(k.deprecated_at), expires_at: iso(k.expires_at), rotated_from_id: k.rotated_from_id,
    allowed_ips: k.allowed_ips,
  };
}

/** Services need the pool and the audit keys; built once per receiver. */
export function accessDeps(ctx: ReceiverContext): AccessDeps {
  return { pool: ctx.pool, audit: { config: ctx.config, metrics: ctx.metrics } };
}

/** Who changes what, from where (for the audit row). */
export function changeContext(ctx: ReceiverContext, req: Request, res: Response): ChangeContext {
  const requestId = res.getHeader('X-Request-Id');
  return { principal: principalOf(res), requestId: typeof requestId === 'string' ? requestId : null, sourceIp: clientIp(req, ctx.config.trustedProxies) || null };
}

/** A path id that cannot be a key is simply not found (no 422 that would differ from a foreign id). */
function keyIdParam(req: Request): string {
  const id = String(req.params.id ?? '');
  if (!input.isUuid(id)) throw new NotFound('API key not found');
  return id.toLowerCase();
}

export function apiKeyRoutes(ctx: ReceiverContext): Route[] {
  const deps = accessDeps(ctx);

  const list = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const rows = await listApiKeys(deps, projectId, parseBool(req, 'include_revoked') ?? false);
    const keys = rows.map(apiKeyJson);
    // "data" too: the CLI's `admin revoke-all-keys` reads that envelope, `keys list` reads "api_keys".
    res.json({ api_keys: keys, data: keys, next_cursor: null });
  };

  const get = async (req: Request, res: Response) => {
    res.json(apiKeyJson(await getApiKey(deps, principalOf(res).projectId, keyIdParam(req))));
  };

  const create = async (req: Request, res: Response) => {
    const b = input.bodyObject(req.body);
    const created = await createKey(deps, changeContext(ctx, req, res), {
      name: input.text(b, 'name', 200, { required: true }),
      scopes: input.scopes(b, 'scopes'),
      expiresAt: input.futureTime(b, 'expires_at'),
      allowedIps: input.cidrs(b, 'allowed_ips'),
    });
    res.status(201).json({ ...apiKeyJson(created.row), key: created.key });
  };

  const rotate = async (req: Request, res: Response) => {
    const id = keyIdParam(req);
    const b = input.bodyObject(req.body);
    // Strathon's own form is grace_period_hours; grace_seconds (SPEC) wins when both are sent.
    const hours = input.intInRange(b, 'grace_period_hours', 0, MAX_GRACE_SECONDS / 3600);
    const grace = input.intInRange(b, 'grace_seconds', 0, MAX_GRACE_SECONDS) ?? (hours !== undefined ? hours * 3600 : DEFAULT_GRACE_SECONDS);
    const rotated = await rotateKey(deps, changeContext(ctx, req, res), id, grace);
    res.status(201).json({ ...apiKeyJson(rotated.row), key: rotated.key, grace_seconds: grace, old_key: apiKeyJson(rotated.old) });
  };

  const revoke = async (req: Request, res: Response) => {
    await revokeKey(deps, changeContext(ctx, req, res), keyIdParam(req));
    res.status(204).end();
  };

  return [
    { method: 'GET', path: '/v1/api_keys', auth: scope('api_keys:read'), body: 'none', handler: list },
    { method: 'POST', path: '/v1/api_keys', auth: scope('api_keys:write'), body: 'json', handler: create },
    { method: 'GET', path: '/v1/api_keys/:id', auth: scope('api_keys:read'), body: 'none', handler: get },
    { method: 'DELETE', path: '/v1/api_keys/:id', auth: scope('api_keys:write'), body: 'none', handler: revoke },
    { method: 'POST', path: '/v1/api_keys/:id/rotate', auth: scope('api_keys:write'), body: 'json', handler: rotate },
  ];
}
