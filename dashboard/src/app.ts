// What every page handler receives: the app's parts, the request, and for signed-in pages the
// session (receiver token, /v1/me, CSRF token, one-shot flash). Pages never touch HTTP plumbing.
import { createHash } from 'node:crypto';
import type { DashboardConfig } from './config.js';
import { ApiError, explain, type Caller, type ReceiverApi } from './api.js';
import type { ReadDb } from './db/pool.js';
import type { Logger } from './log.js';
import { FLASH_COOKIE, setCookie } from './http/cookies.js';
import { sealFlash, type Flash } from './http/flash.js';
import { redirect, type RequestContext } from './http/request.js';

export interface App {
  config: DashboardConfig;
  api: ReceiverApi;
  db: ReadDb;
  log: Logger;
}

export type Role = 'viewer' | 'operator' | 'admin' | 'owner';
export const ROLES: Role[] = ['viewer', 'operator', 'admin', 'owner'];

/** GET /v1/me for a user session. */
export interface Me {
  kind: 'user';
  id: string;
  email: string;
  display_name: string | null;
  project_id: string;
  role: Role;
  scopes: string[];
  must_change_password?: boolean;
}

export interface Session {
  token: string;
  me: Me;
  caller: Caller;
  csrf: string;
  flash?: Flash;
  projectName?: string;
  /** More than one project: the header offers the switcher. */
  multiProject: boolean;
}

export function hasRole(s: Session, role: Role): boolean {
  return ROLES.indexOf(s.me.role) >= ROLES.indexOf(role);
}

export const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export type PublicHandler = (ctx: RequestContext, app: App) => Promise<void>;
export type UserHandler = (ctx: RequestContext, app: App, s: Session) => Promise<void>;

export type Route =
  | { method: 'GET' | 'POST'; path: string; auth: 'public'; handler: PublicHandler }
  | {
    method: 'GET' | 'POST'; path: string; auth: 'user'; handler: UserHandler;
    /** Reachable while the receiver demands a password change (the change form, sign-out). */
    duringPasswordChange?: boolean;
    /** Reachable before a project is chosen (the picker). */
    withoutProject?: boolean;
  };

export function setFlash(ctx: RequestContext, app: App, s: Session, flash: Flash): void {
  ctx.setCookies.push(setCookie(FLASH_COOKIE, sealFlash(s.token, flash), { maxAgeSeconds: 300, secure: app.config.cookieSecure || ctx.secure }));
}

/**
 * A form action: run the receiver call, remember the outcome as a flash, 303 back to `to`.
 * Session, password-change and project problems propagate (the dispatcher redirects for them).
 */
export async function act(ctx: RequestContext, app: App, s: Session, to: string, fn: () => Promise<Flash>): Promise<void> {
  let flash: Flash;
  try {
    flash = await fn();
  } catch (err) {
    if (!(err instanceof ApiError) || err.kind === 'session' || err.kind === 'password_change' || err.kind === 'project_required') throw err;
    flash = { kind: 'error', text: explain(err) };
  }
  setFlash(ctx, app, s, flash);
  redirect(ctx, to);
}
