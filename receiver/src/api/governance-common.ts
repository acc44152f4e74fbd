// What the governance routes share: the services' dependencies, the change context of a request,
// path ids and the keyset cursors of halt and evaluation lists.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { NotFound, Unprocessable } from '../errors.js';
import { clientIp } from '../auth/client-ip.js';
import type { ChangeContext, GovernanceDeps, PolicyEvaluator } from '../governance/governance.js';
import { principalOf } from './app.js';
import { queryString } from './params.js';

export interface GovernanceApi { ctx: ReceiverContext; deps: GovernanceDeps; evaluator: PolicyEvaluator }

/** Who changes what, from where (for the audit row). */
export function changeOf(ctx: ReceiverContext, req: Request, res: Response): ChangeContext {
  const requestId = res.getHeader('X-Request-Id');
  return { principal: principalOf(res), requestId: typeof requestId === 'string' ? requestId : null, sourceIp: clientIp(req, ctx.config.trustedProxies) || null };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A path id that cannot be one is simply not found (no 422 that would differ from another project's id). */
export function uuidParam(req: Request, what: string): string {
  const id = String(req.params.id ?? '');
  if (!UUID.test(id)) throw new NotFound(`${what} not found`);
  return id.toLowerCase();
}

/** Halt ids are integers. */
export function integerParam(req: Request, what: string): bigint {
  const id = String(req.params.id ?? '');
  if (!/^\d{1,18}$/.test(id)) throw new NotFound(`${what} not found`);
  return BigInt(id);
}

/** An opaque cursor over a bigint id (newest first): the last id of the previous page. */
export function encodeIdCursor(kind: string, id: string | number): string {
  return Buffer.from(JSON.stringify({ k: kind, id: String(id) })).toString('base64url');
}

export function parseIdCursor(req: Request, kind: string): bigint | undefined {
  const raw = queryString(req, 'cursor');
  if (raw === undefined) return undefined;
  const invalid = () => new Unprocessable('cursor is not a cursor returned by this endpoint', ['query', 'cursor']);
  if (!/^[A-Za-z0-9_-]{1,200}={0,2}$/.test(raw)) throw invalid();
  try {
    const o = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { k?: unknown; id?: unknown };
    if (o.k !== kind || typeof o.id !== 'string' || !/^\d{1,18}$/.test(o.id)) throw invalid();
    return BigInt(o.id);
  } catch {
    throw invalid();
  }
}
