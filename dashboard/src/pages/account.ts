// The signed-in user's account: two-factor authentication (set up with a QR code or the secret,
// confirm with a first code, backup codes shown once; disable; new backup codes) and the password.
import { act, type App, type Session, type UserHandler } from '../app.js';
import { ApiError, explain } from '../api.js';
import { csrfInput, notice, section } from '../components.js';
import { mfaEnabled } from '../db/queries.js';
import { html, type Html } from '../http/html.js';
import { field, sendHtml, type RequestContext } from '../http/request.js';
import { page } from '../layout.js';

const propagate = (err: unknown) => err instanceof ApiError && (err.kind === 'session' || err.kind === 'password_change' || err.kind === 'project_required');

function backupCodes(codes: string[]): Html {
  return html`<div class="notice notice-ok secret" role="status"><p><strong>Backup codes</strong> — store them now; they are shown only once. Each works once, instead of a code.</p>
<ol id="backup-codes" class="mono">${codes.map((c) => html`<li>${c}</li>`)}</ol></div>`;
}

export const accountPage: UserHandler = async (ctx, app, s) => {
  const mfa = await section(async () => {
    const on = await mfaEnabled(app.db, s.me.id);
    if (on) {
      return html`<p id="mfa-state">Two-factor authentication is <strong>on</strong>.</p>
<form method="post" action="/account/mfa/backup-codes" data-confirm="Replace your backup codes? The old ones stop working.">${csrfInput(s.csrf)}<button type="submit" class="secondary">New backup codes</button></form>
<h3>Turn it off</h3>
<form method="post" action="/account/mfa/disable" class="stack">${csrfInput(s.csrf)}
<label for="d-password">Password</label><input id="d-password" name="password" type="password" autocomplete="current-password" required>
<label for="d-code">Code or backup code</label><input id="d-code" name="code" autocomplete="one-time-code" required>
<button type="submit" class="danger">Turn off two-factor authentication</button></form>`;
    }
    return html`<p id="mfa-state">Two-factor authentication is <strong>off</strong>. Turn it on to require a code from an authenticator app at sign-in.</p>
<form method="post" action="/account/mfa/setup">${csrfInput(s.csrf)}<button type="submit">Set up two-factor authentication</button></form>`;
  });
  sendHtml(ctx, 200, page(s, {
    title: 'Your account',
    body: html`<dl class="facts panel"><dt>Email</dt><dd>${s.me.email}</dd><dt>Name</dt><dd>${s.me.display_name ?? '–'}</dd>
<dt>Role</dt><dd>${s.me.role}</dd><dt>Project</dt><dd>${s.projectName ?? s.me.project_id}</dd></dl>
<section aria-labelledby="h-mfa" class="panel"><h2 id="h-mfa">Two-factor authentication</h2>${mfa}</section>
<section aria-labelledby="h-pw" class="panel"><h2 id="h-pw">Password</h2><p><a href="/account/password">Change your password</a></p></section>`,
  }));
};

export const mfaSetup: UserHandler = async (ctx, app, s) => {
  let e: { secret: string; otpauth_uri: string; qr_svg: string };
  try {
    e = await app.api.post(s.caller, '/v1/auth/mfa/setup', {});
  } catch (err) {
    if (propagate(err) || !(err instanceof ApiError)) throw err;
    await act(ctx, app, s, '/account', async () => ({ kind: 'error', text: explain(err) }));
    return;
  }
  // The receiver's SVG is shown as an image (a data: URL), never inserted as markup.
  const qr = `data:image/svg+xml;base64,${Buffer.from(e.qr_svg, 'utf8').toString('base64')}`;
  sendHtml(ctx, 200, page(s, {
    title: 'Set up two-factor authentication',
    body: html`<ol>
<li><p>Scan this code with an authenticator app (or type the secret below).</p><p class="qr"><img src="${qr}" alt="QR code for the authenticator app; the same secret is written below"></p>
<p>Secret: <code id="mfa-secret">${e.secret}</code></p><details><summary>Setup link</summary><p><code>${e.otpauth_uri}</code></p></details></li>
<li><p>Enter the 6-digit code the app shows.</p>
<form method="post" action="/account/mfa/enable" class="stack">${csrfInput(s.csrf)}
<label for="code">Code</label><input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9 ]{6,8}" required>
<button type="submit">Turn on</button></form></li></ol>
<p><a href="/account">Cancel</a></p>`,
  }));
};

async function showCodes(ctx: RequestContext, app: App, s: Session, path: string, body: unknown, title: string): Promise<void> {
  try {
    const r = await app.api.post<{ backup_codes: string[] }>(s.caller, path, body);
    sendHtml(ctx, 200, page(s, { title, body: html`${backupCodes(r.backup_codes)}<p><a href="/account">Back to your account</a></p>` }));
  } catch (err) {
    if (propagate(err) || !(err instanceof ApiError)) throw err;
    await act(ctx, app, s, '/account', async () => ({ kind: 'error', text: `${explain(err)} Start the setup again.` }));
  }
}

export const mfaEnable: UserHandler = (ctx, app, s) => showCodes(ctx, app, s, '/v1/auth/mfa/enable', { code: field(ctx, 'code') }, 'Two-factor authentication is on');

export const mfaBackupCodes: UserHandler = (ctx, app, s) => showCodes(ctx, app, s, '/v1/auth/mfa/backup-codes', {}, 'New backup codes');

export const mfaDisable: UserHandler = async (ctx, app, s) => {
  await act(ctx, app, s, '/account', async () => {
    await app.api.post(s.caller, '/v1/auth/mfa/disable', { password: ctx.form.get('password') ?? '', code: field(ctx, 'code') });
    return { kind: 'ok', text: 'Two-factor authentication is off.' };
  });
};

function passwordForm(s: Session, message?: Html): Html {
  return html`${s.me.must_change_password ? notice('info', 'You must choose a new password before you continue.') : ''}${message ?? ''}
<form method="post" action="/account/password" class="stack">${csrfInput(s.csrf)}
<input type="text" name="username" autocomplete="username" value="${s.me.email}" hidden>
<label for="current_password">Current (or temporary) password</label><input id="current_password" name="current_password" type="password" autocomplete="current-password" required>
<label for="new_password">New password <span class="muted">(at least 12 characters)</span></label><input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="12" required>
<label for="confirm_password">New password again</label><input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Change password</button></form>`;
}

export const passwordPage: UserHandler = async (ctx, _app, s) => {
  sendHtml(ctx, 200, page(s, { title: 'Change your password', body: passwordForm(s) }));
};

export const passwordSubmit: UserHandler = async (ctx, app, s) => {
  const next = ctx.form.get('new_password') ?? '';
  if (next !== (ctx.form.get('confirm_password') ?? '')) {
    sendHtml(ctx, 400, page(s, { title: 'Change your password', body: passwordForm(s, notice('error', 'The two new passwords differ.')) }));
    return;
  }
  try {
    await app.api.post(s.caller, '/v1/auth/change-password', { current_password: ctx.form.get('current_password') ?? '', new_password: next });
  } catch (err) {
    if (propagate(err) || !(err instanceof ApiError)) throw err;
    sendHtml(ctx, 400, page(s, { title: 'Change your password', body: passwordForm(s, notice('error', explain(err))) }));
    return;
  }
  await act(ctx, app, s, '/account', async () => ({ kind: 'ok', text: 'Password changed; your other sessions were signed out.' }));
};
