// Express app: security headers, request ids, metrics, the route table, error rendering.
import { randomUUID } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Forbidden, MethodNotAllowed, NotFound } from '../errors.js';
import { Authenticator } from '../auth/authenticate.js';
import { principalHasScope, roleRank, ROLES, scopesForRole, type Principal, type Role } from '../auth/principal.js';
import { enforceRateLimit, type RateLimiter } from '../auth/ratelimit.js';
import { sendError } from './respond.js';
import { wireFormat, sendOtlpError } from './otlp.js';
import type { Route } from './routes.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface AppDeps {
  log: Logger; metrics: Metrics; auth: Authenticator; limiter: RateLimiter; clientIp: (req: Request) => string;
}

/** The authenticated caller of a REST route (set by the route table's auth step). */
export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw new Error('route declared without auth reached principalOf');
  return p;
}

/** The lowest role whose scopes include `scope` (for "requires role X" answers to users). */
function roleFor(scope: string): Role {
  return ROLES.find((r) => scopesForRole(r).some((s) => s === '*' || s === scope)) ?? 'owner';
}

function authorize(r: Route, p: Principal): void {
  if (p.kind === 'user' && p.mustChangePassword && !r.duringPasswordChange) throw new Forbidden('password change required: POST /v1/auth/change-password');
  switch (r.auth.kind) {
    case 'scope':
      if (principalHasScope(p, r.auth.scope)) return;
      throw new Forbidden(p.kind === 'user' ? `requires role ${roleFor(r.auth.scope)}` : `missing required scope: ${r.auth.scope}`);
    case 'role':
      if (p.kind !== 'user') throw new Forbidden(`requires role ${r.auth.role} (a user session, not an API key)`);
      if (roleRank(p.role) < roleRank(r.auth.role)) throw new Forbidden(`requires role ${r.auth.role}`);
      return;
    default:
      return;
  }
}

function authStep(r: Route, deps: AppDeps) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const credential = Authenticator.credential(req.headers);
      const ip = deps.clientIp(req);
      enforceRateLimit(deps.limiter, credential, ip, res);
      if (r.auth.kind !== 'none') {
        const principal = await deps.auth.authenticate(req.headers, ip);
        authorize(r, principal);
        res.locals.principal = principal;
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function buildApp(routes: Route[], deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', false);

  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'strict-origin-when-cross-origin');
    res.setHeader('Cache-Control', 'no-store');
    const t0 = performance.now();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      deps.metrics.httpRequests.inc({ route, method: req.method, status: String(res.statusCode) });
      deps.metrics.httpDuration.observe({ route, method: req.method }, (performance.now() - t0) / 1000);
      if (res.statusCode >= 500) deps.log.warn({ method: req.method, route, status: res.statusCode, request_id: id, duration_ms: Math.round(performance.now() - t0) }, 'request failed');
      else deps.log.debug({ method: req.method, route, status: res.statusCode, request_id: id, duration_ms: Math.round(performance.now() - t0) }, 'request');
    });
    next();
  });

  const json = express.json({ limit: '1mb', type: ['application/json', 'application/*+json'] });
  const methodsByPath = new Map<string, Set<string>>();
  for (const r of routes) {
    const wrapped = async (req: Request, res: Response, next: NextFunction) => {
      try {
        await r.handler(req, res);
      } catch (err) {
        next(err);
      }
    };
    // OTLP routes authenticate inside their handler (errors there are google.rpc.Status bodies).
    const auth = r.body === 'raw' ? [] : [authStep(r, deps)];
    const chain = r.body === 'json' ? [...auth, json, wrapped] : [...auth, wrapped];
    app[r.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete'](r.path, ...chain);
    if (!methodsByPath.has(r.path)) methodsByPath.set(r.path, new Set());
    methodsByPath.get(r.path)?.add(r.method);
  }
  for (const [path, methods] of methodsByPath) {
    const allow = [...methods, ...(methods.has('GET') ? ['HEAD'] : [])].join(', ');
    app.all(path, (req: Request, res: Response) => {
      const err = new MethodNotAllowed(allow);
      if (path === '/v1/traces') sendOtlpError(res, wireFormat(req.headers['content-type']) ?? 'json', err);
      else sendError(req, res, err, deps.log);
    });
  }
  app.use((req: Request, res: Response) => sendError(req, res, new NotFound(`no route for ${req.method} ${req.path}`), deps.log));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => sendError(req, res, err, deps.log));
  return app;
}
