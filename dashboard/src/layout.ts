// The page shell: landmarks (header/nav/main/footer), a skip link, the main navigation with
// aria-current, the signed-in user and project, and the one-shot flash. No inline script/style.
import type { Session } from './app.js';
import { csrfInput, notice } from './components.js';
import type { Flash } from './http/flash.js';
import { html, type Html } from './http/html.js';

export const NAV: { href: string; label: string; key: string }[] = [
  { href: '/', label: 'Overview', key: 'overview' },
  { href: '/traces', label: 'Traces', key: 'traces' },
  { href: '/agents', label: 'Agents', key: 'agents' },
  { href: '/budgets', label: 'Budgets', key: 'budgets' },
  { href: '/halts', label: 'Halts', key: 'halts' },
  { href: '/policies', label: 'Policies', key: 'policies' },
  { href: '/keys', label: 'API keys', key: 'keys' },
  { href: '/webhooks', label: 'Webhooks', key: 'webhooks' },
  { href: '/audit', label: 'Audit log', key: 'audit' },
  { href: '/members', label: 'Members', key: 'members' },
  { href: '/workers', label: 'Workers', key: 'workers' },
];

function head(title: string): Html {
  return html`<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Strathon</title><link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script></head>`;
}

export function flashNotice(f: Flash | undefined): Html {
  if (!f) return html``;
  const extra = html`${f.secret
    ? html`<div class="secret"><p><strong>${f.secret.label}</strong> — copy it now: it is shown only once.</p>
        <p><code id="one-time-secret" class="reveal">${f.secret.value}</code>
        <button type="button" class="js-only" data-copy="#one-time-secret">Copy</button></p></div>`
    : ''}${f.lines?.length ? html`<ul>${f.lines.map((l) => html`<li>${l}</li>`)}</ul>` : ''}`;
  return notice(f.kind, f.text, extra);
}

export interface PageOptions { title: string; active?: string; body: Html; flash?: Flash; headerExtra?: Html }

export function page(s: Session, o: PageOptions): Html {
  const who = s.me.display_name || s.me.email;
  return html`<!doctype html>
<html lang="en">${head(o.title)}
<body>
<a class="skip" href="#main">Skip to main content</a>
<header class="top">
  <a class="brand" href="/">Strathon</a>
  <nav aria-label="Main"><ul>${NAV.map((n) => html`<li><a href="${n.href}"${n.key === o.active ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}</ul></nav>
  <div class="who">
    <span>Project <strong>${s.projectName ?? s.me.project_id}</strong>${s.multiProject ? html` (<a href="/projects">switch</a>)` : ''}</span>
    <a href="/account">${who}</a> <span class="role">${s.me.role}</span>
    <form method="post" action="/logout" class="inline">${csrfInput(s.csrf)}<button type="submit" class="link">Sign out</button></form>
  </div>
</header>
<main id="main" tabindex="-1">
<h1>${o.title}</h1>
${o.headerExtra ?? ''}
${flashNotice(o.flash ?? s.flash)}
${o.body}
</main>
<footer><p>Strathon-TS dashboard · reads with a read-only role; every change goes through the receiver API.</p></footer>
</body></html>`;
}

/** Pages before sign-in (login, MFA, register, errors). */
export function barePage(title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">${head(title)}
<body class="bare">
<a class="skip" href="#main">Skip to main content</a>
<header class="top"><a class="brand" href="/">Strathon</a></header>
<main id="main" tabindex="-1" class="narrow">
<h1>${title}</h1>
${body}
</main>
</body></html>`;
}
