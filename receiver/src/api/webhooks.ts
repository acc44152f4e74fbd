// Notification channel routes (SPEC §7.3, §9): channels with one-time secret reveal, rotation,
// test events, a channel's deliveries, and re-queueing a dead delivery. Ids of another project's
// channels and deliveries answer 404, exactly like unknown ids.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { NotFound, Unprocessable } from '../errors.js';
import { clientIp } from '../auth/client-ip.js';
import { auditActorFromPrincipal } from '../audit/audit.js';
import { input } from '../access/access.js';
import {
  createChannel, deleteChannel, getChannel, listChannels, listDeliveries, retryDelivery, rotateSecret, sendTestEvent, updateChannel,
  isEventType, DELIVERY_STATUSES, EVENT_TYPES,
  type ChangeContext, type ChannelPatch, type ChannelRow, type DeliveryCursor, type DeliveryRow, type WebhookDeps, type WebhookEventType,
} from '../webhooks/webhooks.js';
import { principalOf } from './app.js';
import { parseEnum, parseLimit, queryString } from './params.js';
import { scope, type Route } from './routes.js';

type Body = Record<string, unknown>;
const iso = (d: Date | null) => (d ? d.toISOString() : null);
const loc = (...path: (string | number)[]) => ['body', ...path];

/** The channel object of SPEC §9 (never a secret; that is added once, as "secret"). */
export function channelJson(c: ChannelRow) {
  return {
    id: c.id, project_id: c.project_id, name: c.name, channel_type: c.channel_type, url: c.url, description: c.description,
    events: c.events, enabled: c.enabled, created_at: iso(c.created_at), updated_at: iso(c.updated_at),
    previous_secret_expires_at: iso(c.previous_secret_expires_at),
  };
}

export function deliveryJson(d: DeliveryRow) {
  return {
    id: d.id, channel_id: d.channel_id, event_id: d.event_id, event_type: d.event_type, webhook_id: d.webhook_id, status: d.status,
    attempts: d.attempts, next_attempt_at: iso(d.next_attempt_at), last_status_code: d.last_status_code, last_error: d.last_error,
    last_attempt_at: iso(d.last_attempt_at), delivered_at: iso(d.delivered_at), created_at: iso(d.created_at),
  };
}

// ---- input --------------------------------------------------------------------------------------

function events(b: Body): WebhookEventType[] | undefined {
  const v = b.events;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new Unprocessable('events must be a list of event types', loc('events'), 'list_type');
  v.forEach((e, i) => {
    if (typeof e !== 'string') throw new Unprocessable('event type must be a string', loc('events', i), 'string_type');
    if (!isEventType(e)) throw new Unprocessable(`unknown event type: ${e}; known types: ${EVENT_TYPES.join(', ')}`, loc('events', i), 'enum');
  });
  return [...new Set(v as WebhookEventType[])];
}

function bool(b: Body, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new Unprocessable(`${field} must be true or false`, loc(field), 'bool_type');
  return v;
}

function url(b: Body, required: boolean): string | undefined {
  // Strathon's form nests it: {"config": {"url": …}}.
  const nested = typeof b.config === 'object' && b.config !== null ? (b.config as Body).url : undefined;
  const v = b.url ?? nested;
  if (v === undefined || v === null) {
    if (required) throw new Unprocessable('url is required', loc('url'), 'missing');
    return undefined;
  }
  if (typeof v !== 'string' || v.trim() === '') throw new Unprocessable('url must be a non-empty string', loc('url'), 'string_type');
  return v.trim();
}

function description(b: Body): string | null | undefined {
  if (b.description === null) return null;
  return input.text(b, 'description', 2000);
}

function channelType(b: Body): void {
  const t = b.channel_type;
  if (t !== undefined && t !== null && t !== 'webhook') throw new Unprocessable('channel_type must be "webhook"', loc('channel_type'), 'enum');
}

/** A path id that cannot be a channel/delivery is simply not found (like another project's id). */
function idParam(req: Request, what: string): string {
  const id = String(req.params.id ?? '');
  if (!input.isUuid(id)) throw new NotFound(`${what} not found`);
  return id.toLowerCase();
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function cursorParam(req: Request): DeliveryCursor | undefined {
  const raw = queryString(req, 'cursor');
  if (raw === undefined) return undefined;
  const invalid = () => new Unprocessable('cursor is not a cursor returned by this endpoint', ['query', 'cursor'], 'value_error');
  if (raw.length > 200 || !/^[A-Za-z0-9_-]+$/.test(raw)) throw invalid();
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const c = o as { k?: unknown; t?: unknown; id?: unknown } | null;
  if (!c || c.k !== 'd' || typeof c.t !== 'string' || !CURSOR_TIME.test(c.t) || Number.isNaN(Date.parse(c.t))
    || typeof c.id !== 'string' || !input.isUuid(c.id)) throw invalid();
  return { time: c.t, id: c.id };
}

const encodeCursor = (c: DeliveryCursor) => Buffer.from(JSON.stringify({ k: 'd', t: c.time, id: c.id })).toString('base64url');

// ---- routes -------------------------------------------------------------------------------------

export function webhookRoutes(ctx: ReceiverContext): Route[] {
  const deps: WebhookDeps = { pool: ctx.pool, config: ctx.config, metrics: ctx.metrics };
  const change = (req: Request, res: Response): ChangeContext => {
    const requestId = res.getHeader('X-Request-Id');
    return {
      actor: auditActorFromPrincipal(principalOf(res)),
      requestId: typeof requestId === 'string' ? requestId : null,
      sourceIp: clientIp(req, ctx.config.trustedProxies) || null,
    };
  };
  const projectOf = (res: Response) => principalOf(res).projectId;

  const list = async (_req: Request, res: Response) => {
    const rows = await listChannels(ctx.pool, projectOf(res));
    res.json({ data: rows.map(channelJson), next_cursor: null });
  };

  const get = async (req: Request, res: Response) => {
    res.json(channelJson(await getChannel(ctx.pool, projectOf(res), idParam(req, 'notification channel'))));
  };

  const create = async (req: Request, res: Response) => {
    const b = input.bodyObject(req.body);
    channelType(b);
    const fields = {
      name: input.text(b, 'name', 200, { required: true }),
      url: url(b, true) as string,
      description: description(b) ?? null,
      events: events(b) ?? [],
      enabled: bool(b, 'enabled') ?? true,
    };
    const created = await createChannel(deps, change(req, res), projectOf(res), fields);
    res.status(201).json({ ...channelJson(created.row), secret: created.secret });
  };

  const patch = async (req: Request, res: Response) => {
    const id = idParam(req, 'notification channel');
    const b = input.bodyObject(req.body);
    channelType(b);
    const p: ChannelPatch = {};
    const name = input.text(b, 'name', 200);
    if (name !== undefined) p.name = name;
    const u = url(b, false);
    if (u !== undefined) p.url = u;
    if ('description' in b) p.description = description(b) ?? null;
    const ev = events(b);
    if (ev !== undefined) p.events = ev;
    const enabled = bool(b, 'enabled');
    if (enabled !== undefined) p.enabled = enabled;
    if (Object.keys(p).length === 0) {
      throw new Unprocessable('nothing to update: give at least one of name, url, description, events, enabled', ['body'], 'missing');
    }
    res.json(channelJson(await updateChannel(deps, change(req, res), projectOf(res), id, p)));
  };

  const remove = async (req: Request, res: Response) => {
    await deleteChannel(deps, change(req, res), projectOf(res), idParam(req, 'notification channel'));
    res.status(204).end();
  };

  const rotate = async (req: Request, res: Response) => {
    const rotated = await rotateSecret(deps, change(req, res), projectOf(res), idParam(req, 'notification channel'));
    res.json({ ...channelJson(rotated.row), secret: rotated.secret });
  };

  const test = async (req: Request, res: Response) => {
    const sent = await sendTestEvent(deps, change(req, res), projectOf(res), idParam(req, 'notification channel'));
    res.status(202).json({ event_id: sent.eventId, delivery_id: sent.deliveryId, webhook_id: sent.webhookId, event_type: 'webhook.test', status: 'pending' });
  };

  const deliveries = async (req: Request, res: Response) => {
    const id = idParam(req, 'notification channel');
    const page = await listDeliveries(ctx.pool, projectOf(res), id, {
      limit: parseLimit(req), cursor: cursorParam(req), status: parseEnum(req, 'status', DELIVERY_STATUSES),
    });
    res.json({ data: page.rows.map(deliveryJson), next_cursor: page.next ? encodeCursor(page.next) : null });
  };

  const retry = async (req: Request, res: Response) => {
    res.json(deliveryJson(await retryDelivery(deps, change(req, res), projectOf(res), idParam(req, 'notification delivery'))));
  };

  const read = scope('notifications:read');
  const write = scope('notifications:write');
  return [
    { method: 'GET', path: '/v1/notification-channels', auth: read, body: 'none', handler: list },
    { method: 'POST', path: '/v1/notification-channels', auth: write, body: 'json', handler: create },
    { method: 'GET', path: '/v1/notification-channels/:id', auth: read, body: 'none', handler: get },
    { method: 'PATCH', path: '/v1/notification-channels/:id', auth: write, body: 'json', handler: patch },
    { method: 'DELETE', path: '/v1/notification-channels/:id', auth: write, body: 'none', handler: remove },
    { method: 'POST', path: '/v1/notification-channels/:id/rotate-secret', auth: write, body: 'json', handler: rotate },
    { method: 'POST', path: '/v1/notification-channels/:id/test', auth: write, body: 'json', handler: test },
    { method: 'GET', path: '/v1/notification-channels/:id/deliveries', auth: read, body: 'none', handler: deliveries },
    { method: 'POST', path: '/v1/notification-deliveries/:id/retry', auth: write, body: 'json', handler: retry },
  ];
}
