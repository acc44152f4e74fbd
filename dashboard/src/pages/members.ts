// Members (SPEC §12, §6.1): who is in the project with which role; invitations (the token is
// shown once), role changes and removal — the receiver enforces "never above your own role"
// and "the last owner stays".
import { act, ROLES, type UserHandler } from '../app.js';
import { csrfInput, emptyRow, pageLinks, paginate, section } from '../components.js';
import { fmtTime } from '../format.js';
import { html } from '../http/html.js';
import { field, queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';

interface Member { id: string; email: string; display_name: string | null; role: string; joined_at: string; last_active: string | null; mfa_enabled: boolean }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const membersPage: UserHandler = async (ctx, app, s) => {
  const list = await section(async () => {
    const r = await app.api.get<{ data: Member[] }>(s.caller, '/v1/members');
    const p = paginate(r.data, queryParam(ctx, 'page'));
    return html`<table id="members"><caption>Members of this project</caption>
<thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Role</th><th scope="col">MFA</th><th scope="col">Joined</th><th scope="col">Last active</th><th scope="col">Actions</th></tr></thead>
<tbody>${p.items.length ? p.items.map((m) => html`<tr><th scope="row">${m.email}</th><td>${m.display_name ?? '–'}</td><td>${m.role}</td><td>${m.mfa_enabled ? 'on' : 'off'}</td>
<td>${fmtTime(m.joined_at)}</td><td>${fmtTime(m.last_active)}</td>
<td>${m.id === s.me.id ? html`<span class="muted">you</span>` : html`<div class="actions">
<form method="post" action="/members/${m.id}/role" class="inline">${csrfInput(s.csrf)}<label for="role-${m.id}" class="muted">Role</label>
<select id="role-${m.id}" name="role">${ROLES.map((r2) => html`<option value="${r2}"${r2 === m.role ? html` selected` : ''}>${r2}</option>`)}</select> <button type="submit" class="secondary">Change</button></form>
<form method="post" action="/members/${m.id}/remove" class="inline" data-confirm="Remove ${m.email} from this project?">${csrfInput(s.csrf)}<button type="submit" class="danger">Remove</button></form></div>`}</td></tr>`)
  : emptyRow(7, 'No members.')}</tbody></table>${pageLinks('/members', new URLSearchParams(), p.page, p.pages)}`;
  });
  const invite = html`<section aria-labelledby="h-invite" class="panel"><h2 id="h-invite">Invite someone</h2>
<form method="post" action="/members/invite" class="stack">${csrfInput(s.csrf)}
<label for="email">Email</label><input id="email" name="email" type="email" required>
<label for="role">Role</label><select id="role" name="role">${ROLES.map((r) => html`<option value="${r}"${r === 'viewer' ? html` selected` : ''}>${r}</option>`)}</select>
<button type="submit">Create invitation</button></form>
<p class="muted">They register at <code>/register</code> with the invitation token.</p></section>`;
  sendHtml(ctx, 200, page(s, { title: 'Members', active: 'members', body: html`${list}${invite}` }));
};

export const memberInvite: UserHandler = async (ctx, app, s) => {
  await act(ctx, app, s, '/members', async () => {
    const r = await app.api.post<{ invitation_token: string; expires_at: string }>(s.caller, '/v1/members/invitations', { email: field(ctx, 'email'), role: field(ctx, 'role') });
    return { kind: 'ok', text: `Invitation created for ${field(ctx, 'email')} (expires ${r.expires_at}).`, secret: { label: 'Invitation token', value: r.invitation_token } };
  });
};

export const memberRole: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  await act(ctx, app, s, '/members', async () => {
    if (!UUID.test(id)) return { kind: 'error', text: 'That is not a member id.' };
    const m = await app.api.request<Member>(s.caller, 'PATCH', `/v1/members/${id}`, { body: { role: field(ctx, 'role') } });
    return { kind: 'ok', text: `${m.email} is now ${m.role}.` };
  });
};

export const memberRemove: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  await act(ctx, app, s, '/members', async () => {
    if (!UUID.test(id)) return { kind: 'error', text: 'That is not a member id.' };
    await app.api.request(s.caller, 'DELETE', `/v1/members/${id}`);
    return { kind: 'ok', text: 'Member removed from this project.' };
  });
};
