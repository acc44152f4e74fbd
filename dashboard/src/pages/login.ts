// Sign-in through the receiver (SPEC §6.3): password, then (for MFA users) a TOTP or backup code;
// first-user / invitation registration; sign-out. The receiver's session token is kept in the
// dashboard's HttpOnly SameSite=Strict cookie and sent to the API as a Bearer token.
import { tokenHash, type App, type PublicHandler } from '../app.js';
import { projectsOfSession } from '../db/queries.js';
import { ApiError, explain, type Caller } from '../api.js';
import { csrfInput, notice } from '../components.js';
import { clearCookie, CSRF_COOKIE, MFA_COOKIE, PROJECT_COOKIE, SESSION_COOKIE, setCookie } from '../http/cookies.js';
import { newAnonymousCsrfToken } from '../http/csrf.js';
import { html, type Html } from '../http/html.js';
import { barePage } from '../layout.js';
import { field, queryParam, redirect, safeLocalPath, sendHtml, type RequestContext } from '../http/request.js';

interface SessionGrant { token: string; expires_at: string; must_change_password?: boolean }
type LoginAnswer = SessionGrant | { mfa_required: true; mfa_token: string; expires_at: string };

const secure = (ctx: RequestContext, app: App) => app.config.cookieSecure || ctx.secure;
const anonymousCaller = (ctx: RequestContext): Caller => ({ clientIp: ctx.clientIp, requestId: ctx.requestId });

/** The double-submit token of forms shown before sign-in (created on first sight). */
export function anonymousCsrf(ctx: RequestContext, app: App): string {
  let token = ctx.cookies.get(CSRF_COOKIE);
  if (!token || !/^[A-Za-z0-9_-]{32}$/.test(token)) {
    token = newAnonymousCsrfToken();
    ctx.cookies.set(CSRF_COOKIE, token);
    ctx.setCookies.push(setCookie(CSRF_COOKIE, token, { secure: secure(ctx, app) }));
  }
  return token;
}

function nextPath(raw: string): string {
  const p = safeLocalPath(raw);
  return p && !p.startsWith('/login') && !p.startsWith('/register') ? p : '/';
}

export function startSession(ctx: RequestContext, app: App, g: SessionGrant): void {
  const maxAge = Math.max(60, Math.floor((Date.parse(g.expires_at) - Date.now()) / 1000)) || 86_400;
  ctx.setCookies.push(
    setCookie(SESSION_COOKIE, g.token, { maxAgeSeconds: maxAge, secure: secure(ctx, app) }),
    clearCookie(PROJECT_COOKIE, secure(ctx, app)),
    clearCookie(MFA_COOKIE, secure(ctx, app)),
  );
}

function loginForm(ctx: RequestContext, app: App, opts: { email?: string; next: string; message?: Html }): Html {
  return barePage('Sign in', html`
${opts.message ?? ''}
<form method="post" action="/login" class="stack">
  ${csrfInput(anonymousCsrf(ctx, app))}
  <input type="hidden" name="next" value="${opts.next}">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
<p>First time here? <a href="/register">Create the first account</a>, or register with an invitation.</p>`);
}

export const loginPage: PublicHandler = async (ctx, app) => {
  const why = queryParam(ctx, 'expired') ? notice('info', 'Your session has expired or was signed out. Sign in again.')
    : queryParam(ctx, 'signed_out') ? notice('ok', 'You are signed out.') : undefined;
  sendHtml(ctx, 200, loginForm(ctx, app, { next: nextPath(queryParam(ctx, 'next')), message: why }));
};

export const loginSubmit: PublicHandler = async (ctx, app) => {
  const email = field(ctx, 'email');
  const next = nextPath(field(ctx, 'next'));
  let answer: LoginAnswer;
  try {
    answer = await app.api.post<LoginAnswer>(anonymousCaller(ctx), '/v1/auth/login', { email, password: ctx.form.get('password') ?? '' });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const text = err.status === 401 ? 'Invalid email or password.' : explain(err);
    sendHtml(ctx, err.status === 401 ? 401 : err.status === 429 ? 429 : 400, loginForm(ctx, app, { email, next, message: notice('error', text) }));
    return;
  }
  if ('mfa_required' in answer) {
    ctx.setCookies.push(setCookie(MFA_COOKIE, answer.mfa_token, { maxAgeSeconds: 300, secure: secure(ctx, app) }));
    redirect(ctx, `/login/mfa?next=${encodeURIComponent(next)}`);
    return;
  }
  startSession(ctx, app, answer);
  redirect(ctx, answer.must_change_password ? '/account/password' : next);
};

function mfaForm(ctx: RequestContext, app: App, next: string, message?: Html): Html {
  return barePage('Two-factor authentication', html`
${message ?? ''}
<p>Enter the 6-digit code from your authenticator app, or one of your backup codes.</p>
<form method="post" action="/login/mfa" class="stack">
  ${csrfInput(anonymousCsrf(ctx, app))}
  <input type="hidden" name="next" value="${next}">
  <label for="code">Code</label>
  <input id="code" name="code" type="text" autocomplete="one-time-code" inputmode="numeric" required maxlength="32" autofocus>
  <button type="submit">Verify</button>
</form>
<p><a href="/login">Start again</a></p>`);
}

export const mfaPage: PublicHandler = async (ctx, app) => {
  if (!ctx.cookies.get(MFA_COOKIE)) {
    redirect(ctx, '/login');
    return;
  }
  sendHtml(ctx, 200, mfaForm(ctx, app, nextPath(queryParam(ctx, 'next'))));
};

export const mfaSubmit: PublicHandler = async (ctx, app) => {
  const mfaToken = ctx.cookies.get(MFA_COOKIE);
  const next = nextPath(field(ctx, 'next'));
  if (!mfaToken) {
    sendHtml(ctx, 400, loginForm(ctx, app, { next, message: notice('error', 'The sign-in step expired. Enter your password again.') }));
    return;
  }
  let grant: SessionGrant;
  try {
    grant = await app.api.post<SessionGrant>(anonymousCaller(ctx), '/v1/auth/mfa/verify', { mfa_token: mfaToken, code: field(ctx, 'code') });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 401 && err.message === 'invalid MFA code') {
      sendHtml(ctx, 401, mfaForm(ctx, app, next, notice('error', 'That code is not valid (or was already used). Try the next one.')));
      return;
    }
    ctx.setCookies.push(clearCookie(MFA_COOKIE, secure(ctx, app)));
    sendHtml(ctx, err.status === 429 ? 429 : 401, loginForm(ctx, app, { next, message: notice('error', `${explain(err)} Enter your password again.`) }));
    return;
  }
  startSession(ctx, app, grant);
  redirect(ctx, grant.must_change_password ? '/account/password' : next);
};

function registerForm(ctx: RequestContext, app: App, v: { email?: string; name?: string; invitation?: string; message?: Html }): Html {
  return barePage('Create an account', html`
${v.message ?? ''}
<p>The first account becomes the owner of the default project. Later accounts need an invitation token from an admin.</p>
<form method="post" action="/register" class="stack">
  ${csrfInput(anonymousCsrf(ctx, app))}
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username" required value="${v.email ?? ''}">
  <label for="display_name">Name <span class="muted">(optional)</span></label>
  <input id="display_name" name="display_name" type="text" autocomplete="name" maxlength="200" value="${v.name ?? ''}">
  <label for="password">Password <span class="muted">(at least 12 characters, not a common one)</span></label>
  <input id="password" name="password" type="password" autocomplete="new-password" required minlength="12">
  <label for="invitation_token">Invitation token <span class="muted">(not needed for the first account)</span></label>
  <input id="invitation_token" name="invitation_token" type="text" autocomplete="off" value="${v.invitation ?? ''}">
  <button type="submit">Create account</button>
</form>
<p><a href="/login">Back to sign in</a></p>`);
}

export const registerPage: PublicHandler = async (ctx, app) => {
  sendHtml(ctx, 200, registerForm(ctx, app, { invitation: queryParam(ctx, 'invitation') }));
};

export const registerSubmit: PublicHandler = async (ctx, app) => {
  const v = { email: field(ctx, 'email'), name: field(ctx, 'display_name'), invitation: field(ctx, 'invitation_token') };
  let answer: { token: string | null; expires_at?: string; message?: string };
  try {
    answer = await app.api.post(anonymousCaller(ctx), '/v1/auth/register', {
      email: v.email, password: ctx.form.get('password') ?? '', display_name: v.name || undefined, invitation_token: v.invitation || undefined,
    });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    sendHtml(ctx, err.status === 429 ? 429 : 400, registerForm(ctx, app, { ...v, message: notice('error', explain(err)) }));
    return;
  }
  if (answer.token && answer.expires_at) {
    startSession(ctx, app, { token: answer.token, expires_at: answer.expires_at });
    redirect(ctx, '/');
    return;
  }
  sendHtml(ctx, 201, loginForm(ctx, app, { email: v.email, next: '/', message: notice('ok', answer.message ?? 'Account created. Sign in.') }));
};

/** Sign-out revokes the session at the receiver, then forgets it here (even if the receiver is down). */
export const logoutSubmit: PublicHandler = async (ctx, app) => {
  const token = ctx.cookies.get(SESSION_COOKIE);
  if (token) {
    const caller: Caller = { token, clientIp: ctx.clientIp, requestId: ctx.requestId, projectId: ctx.cookies.get(PROJECT_COOKIE) };
    try {
      await app.api.post(caller, '/v1/auth/logout', {});
    } catch (err) {
      // A user in several projects must name one even to sign out: use any of theirs.
      const retry = err instanceof ApiError && (err.kind === 'project_required' || err.kind === 'not_found')
        ? (await projectsOfSession(app.db, tokenHash(token)).catch(() => []))[0] : undefined;
      if (retry) await app.api.post({ ...caller, projectId: retry.id }, '/v1/auth/logout', {}).catch(() => undefined);
      else app.log.debug({ err: (err as Error).message }, 'logout at the receiver failed');
    }
  }
  for (const c of [SESSION_COOKIE, PROJECT_COOKIE, MFA_COOKIE]) ctx.setCookies.push(clearCookie(c, secure(ctx, app)));
  redirect(ctx, '/login?signed_out=1');
};
