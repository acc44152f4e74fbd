// Halts (SPEC §12, §8.2): active halts with a resolve button, the history, and halting an agent
// or the project by hand. Every change is a receiver API call with the user's session.
import { act, hasRole, type UserHandler } from '../app.js';
import { csrfInput, cursorPager, emptyRow, section } from '../components.js';
import { fmtTime } from '../format.js';
import { html, type Html } from '../http/html.js';
import { field, queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';
import { haltTarget, type Halt } from './shared.js';

function actor(h: Halt): string {
  if (!h.actor) return '–';
  return `${h.actor.type}${h.actor.display ? ` ${h.actor.display}` : ''}`;
}

function haltRows(list: Halt[], csrf: string, withResolve: boolean): Html {
  return html`${list.map((h) => html`<tr data-halt-id="${h.id}">
<td class="num">${h.id}</td><td>${haltTarget(h)}</td><td>${h.reason || '–'}</td><td>${actor(h)}</td><td>${fmtTime(h.set_at)}</td>
<td>${h.state === 'active' ? html`<span class="status-error">active</span>` : html`cleared ${fmtTime(h.cleared_at)}`}</td>
${withResolve ? html`<td><form method="post" action="/halts/${h.id}/resolve" class="inline" data-confirm="Resolve this halt? The agent may run again.">${csrfInput(csrf)}<button type="submit">Resolve</button></form></td>` : ''}
</tr>`)}`;
}

const head = (withResolve: boolean) => html`<thead><tr><th scope="col" class="num">Id</th><th scope="col">Target</th><th scope="col">Reason</th><th scope="col">Set by</th><th scope="col">Set at</th><th scope="col">State</th>${withResolve ? html`<th scope="col">Action</th>` : ''}</tr></thead>`;

export const haltsPage: UserHandler = async (ctx, app, s) => {
  const cursor = queryParam(ctx, 'cursor');
  const [active, history] = await Promise.all([
    section(async () => {
      const r = await app.api.get<{ halts: Halt[]; next_cursor?: string | null }>(s.caller, '/v1/halts', { limit: 200 });
      return html`<table id="active-halts"><caption>Active halts (${r.halts.length}${r.next_cursor ? '+' : ''})</caption>${head(true)}
<tbody>${r.halts.length ? haltRows(r.halts, s.csrf, true) : emptyRow(7, 'No active halts: every agent may run.')}</tbody></table>`;
    }),
    section(async () => {
      const r = await app.api.get<{ halts: Halt[]; next_cursor?: string | null }>(s.caller, '/v1/halts', { state: 'all', cursor, limit: 50 });
      return html`<table id="halt-history"><caption>All halts, newest first</caption>${head(false)}
<tbody>${r.halts.length ? haltRows(r.halts, s.csrf, false) : emptyRow(6, 'No halts yet.')}</tbody></table>
${cursorPager('/halts', new URLSearchParams(cursor ? { cursor } : {}), r.next_cursor, Boolean(cursor))}`;
    }),
  ]);
  const create = hasRole(s, 'operator') ? html`<section aria-labelledby="h-new" class="panel"><h2 id="h-new">Halt an agent or the project</h2>
<form method="post" action="/halts" class="stack">${csrfInput(s.csrf)}
<label for="scope">Scope</label><select id="scope" name="scope"><option value="agent">One agent</option><option value="project">The whole project</option></select>
<label for="agent_name">Agent name <span class="muted">(for an agent halt)</span></label><input id="agent_name" name="agent_name" maxlength="200">
<label for="reason">Reason</label><input id="reason" name="reason" maxlength="2000" required>
<button type="submit" class="danger">Halt</button></form></section>` : html`<p class="muted">Halting and resolving need role operator or above.</p>`;
  sendHtml(ctx, 200, page(s, {
    title: 'Halts', active: 'halts',
    body: html`<section aria-labelledby="h-active"><h2 id="h-active">Active</h2>${active}</section>${create}
<section aria-labelledby="h-hist"><h2 id="h-hist">History</h2>${history}</section>`,
  }));
};

export const haltResolve: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  await act(ctx, app, s, '/halts', async () => {
    if (!/^\d{1,18}$/.test(id)) return { kind: 'error', text: 'That is not a halt id.' };
    await app.api.post(s.caller, `/v1/halts/${id}/resolve`, {});
    return { kind: 'ok', text: `Halt ${id} resolved.` };
  });
};

export const haltCreate: UserHandler = async (ctx, app, s) => {
  await act(ctx, app, s, '/halts', async () => {
    const scope = field(ctx, 'scope') === 'project' ? 'project' : 'agent';
    const r = await app.api.post<{ id: number }>(s.caller, '/v1/halts', {
      scope, ...(scope === 'agent' ? { scope_value: field(ctx, 'agent_name') } : {}), reason: field(ctx, 'reason'),
    });
    return { kind: 'ok', text: `Halt ${r.id} set.` };
  });
};
