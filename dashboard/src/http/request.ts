// Request plumbing: the per-request context, form bodies, client address, responses.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, isIPv4, type BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseCookies } from './cookies.js';
import type { Html } from './html.js';

export const MAX_FORM_BYTES = 64 * 1024;

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  url: URL;
  requestId: string;
  clientIp: string;
  /** Served over TLS, directly or behind a trusted proxy that says so (X-Forwarded-Proto). */
  secure: boolean;
  cookies: Map<string, string>;
  params: Record<string, string>;
  form: URLSearchParams;
  setCookies: string[];
}

export class HttpProblem extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function plain(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

function trustedPeer(req: IncomingMessage, proxies: { list: BlockList; cidrs: string[] }): boolean {
  const peer = plain(req.socket.remoteAddress ?? '');
  if (!peer || proxies.cidrs.length === 0) return false;
  return proxies.list.check(peer, isIP(peer) === 6 ? 'ipv6' : 'ipv4');
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
}

export function newContext(req: IncomingMessage, res: ServerResponse, requestId: string, proxies: { list: BlockList; cidrs: string[] }): RequestContext {
  const peer = plain(req.socket.remoteAddress ?? '');
  const viaProxy = trustedPeer(req, proxies);
  const forwarded = viaProxy ? firstHeader(req.headers['x-forwarded-for']) : undefined;
  const clientIp = forwarded && isIP(plain(forwarded)) ? plain(forwarded) : peer;
  const secure = Boolean((req.socket as TLSSocket).encrypted) || (viaProxy && firstHeader(req.headers['x-forwarded-proto'])?.toLowerCase() === 'https');
  return {
    req, res, requestId, clientIp, secure,
    method: req.method ?? 'GET',
    url: new URL(req.url ?? '/', 'http://dashboard.invalid'),
    cookies: parseCookies(req.headers.cookie),
    params: {},
    form: new URLSearchParams(),
    setCookies: [],
  };
}

/** An urlencoded form body, bounded; anything else is refused before it is read in full. */
export async function readForm(ctx: RequestContext): Promise<URLSearchParams> {
  const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpProblem(415, 'forms must be sent as application/x-www-form-urlencoded');
  const declared = Number(ctx.req.headers['content-length'] ?? 0);
  if (declared > MAX_FORM_BYTES) throw new HttpProblem(413, 'the form is too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new HttpProblem(413, 'the form is too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function sendHtml(ctx: RequestContext, status: number, body: Html): void {
  if (ctx.setCookies.length) ctx.res.setHeader('Set-Cookie', ctx.setCookies);
  ctx.res.statusCode = status;
  ctx.res.setHeader('Content-Type', 'text/html; charset=utf-8');
  ctx.res.end(body.value);
}

/** 303 after a POST (the browser GETs the target), 302 otherwise. Only local paths. */
export function redirect(ctx: RequestContext, location: string): void {
  if (ctx.setCookies.length) ctx.res.setHeader('Set-Cookie', ctx.setCookies);
  ctx.res.statusCode = ctx.method === 'GET' || ctx.method === 'HEAD' ? 302 : 303;
  ctx.res.setHeader('Location', safeLocalPath(location) ?? '/');
  ctx.res.end();
}

/** A path on this dashboard (never `//host` or a scheme), or undefined. */
export function safeLocalPath(p: string | null | undefined): string | undefined {
  if (!p || !p.startsWith('/') || p.startsWith('//') || p.startsWith('/\\') || /[\r\n\t]/.test(p)) return undefined;
  return p;
}

export function field(ctx: RequestContext, name: string): string {
  return (ctx.form.get(name) ?? '').trim();
}

export function queryParam(ctx: RequestContext, name: string): string {
  return (ctx.url.searchParams.get(name) ?? '').trim();
}
