// Choosing a project, for users who belong to several (the receiver then needs X-Project-Id).
// Public routes that check the session themselves: /v1/me cannot answer before the choice.
import { tokenHash, type PublicHandler } from '../app.js';
import { csrfInput, notice } from '../components.js';
import { projectsOfSession } from '../db/queries.js';
import { PROJECT_COOKIE, SESSION_COOKIE, setCookie } from '../http/cookies.js';
import { sessionCsrfToken } from '../http/csrf.js';
import { html } from '../http/html.js';
import { field, redirect, sendHtml } from '../http/request.js';
import { barePage } from '../layout.js';

export const projectsPage: PublicHandler = async (ctx, app) => {
  const token = ctx.cookies.get(SESSION_COOKIE);
  if (!token) {
    redirect(ctx, '/login');
    return;
  }
  let list;
  try {
    list = await projectsOfSession(app.db, tokenHash(token));
  } catch (err) {
    sendHtml(ctx, 503, barePage('Choose a project', notice('error', `Your projects cannot be listed: ${(err as Error).message}.`)));
    return;
  }
  if (!list.length) {
    redirect(ctx, '/login?expired=1');
    return;
  }
  sendHtml(ctx, 200, barePage('Choose a project', html`<p>You are a member of several projects. Which one do you want to see?</p>
<form method="post" action="/projects" class="stack">${csrfInput(sessionCsrfToken(token))}
<fieldset><legend>Projects</legend>${list.map((p, i) => html`<p><label><input type="radio" name="project_id" value="${p.id}"${i === 0 ? html` checked` : ''}> ${p.name} <span class="muted">(${p.role})</span></label></p>`)}</fieldset>
<button type="submit">Open</button></form>`));
};

export const projectsSubmit: PublicHandler = async (ctx, app) => {
  const token = ctx.cookies.get(SESSION_COOKIE) as string;
  const chosen = field(ctx, 'project_id').toLowerCase();
  const list = await projectsOfSession(app.db, tokenHash(token)).catch(() => []);
  if (!list.some((p) => p.id === chosen)) {
    redirect(ctx, '/projects');
    return;
  }
  ctx.setCookies.push(setCookie(PROJECT_COOKIE, chosen, { secure: app.config.cookieSecure || ctx.secure }));
  redirect(ctx, '/');
};
