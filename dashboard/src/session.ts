// The gate in front of every signed-in page: the session cookie, GET /v1/me at the receiver
// (which decides validity, role and project), the password-change and project-choice detours,
// and the one-shot flash.
import { ApiError } from './api.js';
import { tokenHash, type App, type Me, type Route, type Session } from './app.js';
import { projectsOfSession } from './db/queries.js';
import { clearCookie, FLASH_COOKIE, PROJECT_COOKIE, SESSION_COOKIE } from './http/cookies.js';
import { sessionCsrfToken } from './http/csrf.js';
import { openFlash } from './http/flash.js';
import { redirect, type RequestContext } from './http/request.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function selectedProject(ctx: RequestContext): string | undefined {
  const p = ctx.cookies.get(PROJECT_COOKIE);
  return p && UUID.test(p) ? p.toLowerCase() : undefined;
}

/** Forget the session here and send the browser to sign in (back to this page afterwards). */
export function expireSession(ctx: RequestContext, app: App): void {
  const secure = app.config.cookieSecure || ctx.secure;
  ctx.setCookies.push(clearCookie(SESSION_COOKIE, secure), clearCookie(FLASH_COOKIE, secure));
  const back = ctx.method === 'GET' ? `&next=${encodeURIComponent(ctx.url.pathname + ctx.url.search)}` : '';
  redirect(ctx, `/login?expired=1${back}`);
}

/** The signed-in session, or undefined when a redirect has been sent instead. */
export async function openSession(ctx: RequestContext, app: App, route: Extract<Route, { auth: 'user' }>): Promise<Session | undefined> {
  const token = ctx.cookies.get(SESSION_COOKIE);
  if (!token) {
    const back = ctx.method === 'GET' ? `?next=${encodeURIComponent(ctx.url.pathname + ctx.url.search)}` : '';
    redirect(ctx, `/login${back}`);
    return undefined;
  }
  const caller = { token, projectId: selectedProject(ctx), clientIp: ctx.clientIp, requestId: ctx.requestId };
  let me: Me;
  try {
    me = await app.api.get<Me>(caller, '/v1/me');
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.kind === 'session') {
      expireSession(ctx, app);
      return undefined;
    }
    if (err.kind === 'project_required' || (err.kind === 'not_found' && caller.projectId)) {
      // Several projects and none chosen, or the chosen one is gone: pick (again).
      if (caller.projectId) ctx.setCookies.push(clearCookie(PROJECT_COOKIE, app.config.cookieSecure || ctx.secure));
      redirect(ctx, '/projects');
      return undefined;
    }
    throw err;
  }
  if (me.kind !== 'user') {
    expireSession(ctx, app);
    return undefined;
  }
  if (me.must_change_password && !route.duringPasswordChange) {
    redirect(ctx, '/account/password');
    return undefined;
  }
  const sealed = ctx.cookies.get(FLASH_COOKIE);
  if (sealed) ctx.setCookies.push(clearCookie(FLASH_COOKIE, app.config.cookieSecure || ctx.secure));
  // The header names the project; the picker link appears for users in several (best effort: the DB may be down).
  const projects = await projectsOfSession(app.db, tokenHash(token)).catch(() => []);
  return {
    token, me, caller: { ...caller, projectId: caller.projectId ?? me.project_id }, csrf: sessionCsrfToken(token),
    flash: openFlash(token, sealed),
    projectName: projects.find((p) => p.id === me.project_id)?.name,
    multiProject: projects.length > 1,
  };
}
