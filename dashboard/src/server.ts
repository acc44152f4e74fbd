// The dashboard process (SPEC §12): startDashboard() for tests and embedding, and the entry point
// (`node dashboard/dist/server.js`) that reads the environment, listens on DASHBOARD_PORT and
// stops cleanly on SIGTERM/SIGINT.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { ReceiverApi, ApiError } from './api.js';
import type { App, Route } from './app.js';
import { ConfigError, loadConfig, type DashboardConfig, type Env } from './config.js';
import { createReadDb, DbUnavailable, type ReadDb } from './db/pool.js';
import { provisionRolePassword } from './db/provision.js';
import { CSRF_COOKIE, SESSION_COOKIE } from './http/cookies.js';
import { CSRF_FIELD, sessionCsrfToken, tokensEqual } from './http/csrf.js';
import { setSecurityHeaders } from './http/headers.js';
import { html } from './http/html.js';
import { HttpProblem, newContext, readForm, redirect, sendHtml, type RequestContext } from './http/request.js';
import { barePage } from './layout.js';
import { createLogger, type Logger } from './log.js';
import { routes } from './routes.js';
import { expireSession, openSession } from './session.js';
import { APP_CSS } from './static/app-css.js';
import { APP_JS } from './static/app-js.js';

export interface DashboardOptions {
  /** Parsed configuration; default: loadConfig(env). */
  config?: DashboardConfig;
  /** Environment to parse when no config is given; default process.env. */
  env?: Env;
  log?: Logger;
}

export interface Dashboard {
  url: string;
  port: number;
  config: DashboardConfig;
  db: ReadDb;
  close(): Promise<void>;
}

interface Compiled { route: Route; pattern: RegExp; names: string[] }

function compile(list: Route[]): Compiled[] {
  return list.map((route) => {
    const names: string[] = [];
    const source = route.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/:([a-z_]+)/g, (_m, name: string) => {
      names.push(name);
      return '/([^/]+)';
    });
    return { route, pattern: new RegExp(`^${source}/?$`), names };
  });
}

const STATIC: Record<string, { type: string; body: string }> = {
  '/static/app.css': { type: 'text/css; charset=utf-8', body: APP_CSS },
  '/static/app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
};

function errorPage(ctx: RequestContext, status: number, title: string, message: string): void {
  sendHtml(ctx, status, barePage(title, html`<div class="notice notice-error" role="alert"><p>${message}</p></div>
<p><a href="/">Back to the overview</a> · request id <code>${ctx.requestId}</code></p>`));
}

/** Forms are refused unless they carry this session's (or, before sign-in, this browser's) token. */
function csrfValid(ctx: RequestContext, route: Route, sessionScoped: boolean): boolean {
  const presented = ctx.form.get(CSRF_FIELD) ?? undefined;
  if (sessionScoped) {
    const token = ctx.cookies.get(SESSION_COOKIE);
    return token !== undefined && tokensEqual(sessionCsrfToken(token), presented);
  }
  return route.auth === 'public' && tokensEqual(ctx.cookies.get(CSRF_COOKIE), presented);
}

/** POST routes whose form is shown to a signed-in user but which must work without /v1/me (sign-out, project choice). */
const SESSION_FORMS = new Set(['/logout', '/projects']);

async function dispatch(ctx: RequestContext, app: App, table: Compiled[]): Promise<void> {
  const path = ctx.url.pathname;
  const method = ctx.method === 'HEAD' ? 'GET' : ctx.method;
  if (method === 'GET' && path === '/health') {
    ctx.res.setHeader('Content-Type', 'application/json');
    ctx.res.end(JSON.stringify({ status: 'ok', service: 'strathon-dashboard' }));
    return;
  }
  const asset = STATIC[path];
  if (asset && method === 'GET') {
    ctx.res.setHeader('Content-Type', asset.type);
    ctx.res.setHeader('Cache-Control', 'public, max-age=300');
    ctx.res.end(asset.body);
    return;
  }
  if (path === '/favicon.ico') {
    ctx.res.statusCode = 204;
    ctx.res.end();
    return;
  }
  const matches = table.filter((c) => c.pattern.test(path));
  const hit = matches.find((c) => c.route.method === method);
  if (!hit) {
    if (matches.length) {
      ctx.res.setHeader('Allow', [...new Set(matches.map((m) => m.route.method))].join(', '));
      errorPage(ctx, 405, 'Method not allowed', `${ctx.method} is not used here.`);
    } else {
      errorPage(ctx, 404, 'Page not found', `There is no page at ${path}.`);
    }
    return;
  }
  const m = hit.pattern.exec(path) as RegExpExecArray;
  hit.names.forEach((n, i) => {
    ctx.params[n] = decodeURIComponent(m[i + 1] ?? '');
  });
  const route = hit.route;
  if (method === 'POST') {
    ctx.form = await readForm(ctx);
    const sessionScoped = route.auth === 'user' || SESSION_FORMS.has(route.path);
    if (sessionScoped && !ctx.cookies.get(SESSION_COOKIE)) {
      redirect(ctx, '/login');
      return;
    }
    if (!csrfValid(ctx, route, sessionScoped)) {
      errorPage(ctx, 403, 'Form refused', 'The form did not carry a valid security token (CSRF check failed). Reload the page and submit it again.');
      return;
    }
  }
  if (route.auth === 'public') {
    await route.handler(ctx, app);
    return;
  }
  const session = await openSession(ctx, app, route);
  if (session) await route.handler(ctx, app, session);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, app: App, table: Compiled[]): Promise<void> {
  const incoming = req.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : randomUUID();
  const ctx = newContext(req, res, requestId, app.config.trustedProxies);
  setSecurityHeaders(res, requestId, ctx.secure);
  const t0 = performance.now();
  try {
    await dispatch(ctx, app, table);
  } catch (err) {
    if (res.headersSent) {
      res.end();
    } else if (err instanceof ApiError && err.kind === 'session') {
      expireSession(ctx, app);
    } else if (err instanceof ApiError && err.kind === 'password_change') {
      redirect(ctx, '/account/password');
    } else if (err instanceof ApiError && err.kind === 'project_required') {
      redirect(ctx, '/projects');
    } else if (err instanceof ApiError) {
      errorPage(ctx, err.kind === 'unavailable' ? 503 : 502, 'Receiver unavailable', err.message);
    } else if (err instanceof HttpProblem) {
      errorPage(ctx, err.status, 'Request refused', err.message);
    } else if (err instanceof DbUnavailable) {
      errorPage(ctx, 503, 'Database unavailable', err.message);
    } else {
      app.log.error({ request_id: requestId, path: ctx.url.pathname, err: (err as Error).stack ?? String(err) }, 'dashboard request failed');
      errorPage(ctx, 500, 'Something went wrong', 'The dashboard could not show this page. The error is in its log under the request id below.');
    }
  } finally {
    app.log.debug({ method: ctx.method, path: ctx.url.pathname, status: res.statusCode, request_id: requestId, duration_ms: Math.round(performance.now() - t0) }, 'request');
  }
}

export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const config = options.config ?? loadConfig(options.env ?? process.env);
  const log = options.log ?? createLogger(config.logLevel);
  const db = createReadDb(config.database, log);
  const app: App = { config, api: new ReceiverApi(config.receiverUrl), db, log };
  const table = compile(routes);
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 20_000, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res, app, table);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  if (config.database.kind === 'dedicated' && config.database.provisionWith) {
    void provisionRolePassword(config.database.provisionWith, config.database.url, log);
  }
  if (config.database.kind === 'derived' && config.env === 'production') {
    log.warn({}, 'the dashboard reads Postgres with the receiver\'s credential (as role strathon_dashboard, read-only); set DASHBOARD_DATABASE_URL to a strathon_dashboard login to separate them');
  }
  log.info({ port, receiver: config.receiverUrl, database: db.describe }, 'dashboard listening');
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    config,
    db,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const t = setTimeout(() => server.closeAllConnections(), 5000);
        await closed;
        clearTimeout(t);
        await db.close().catch(() => undefined);
      })();
      return closing;
    },
  };
}

async function main(): Promise<void> {
  let dashboard: Dashboard;
  try {
    dashboard = await startDashboard();
  } catch (err) {
    process.stderr.write(`strathon-dashboard: ${err instanceof ConfigError ? err.message : (err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
  process.stdout.write(`dashboard listening on http://localhost:${dashboard.port}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void dashboard.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
