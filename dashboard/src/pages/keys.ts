// API keys (SPEC §12, §6.2): create (the raw key is shown once), rotate with a grace period,
// revoke. The raw key travels only in the one-shot encrypted flash of the redirect after the POST.
import { act, hasRole, type UserHandler } from '../app.js';
import { csrfInput, emptyRow, pageLinks, paginate, section } from '../components.js';
import { fmtTime } from '../format.js';
import { html } from '../http/html.js';
import { field, queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';

interface ApiKey {
  id: string; name: string; key_prefix: string; scopes: string[]; created_at: string; last_used_at: string | null; revoked_at: string | null;
  deprecated_at: string | null; expires_at: string | null; rotated_from_id: string | null;
}

export const SCOPES = [
  'traces:write', 'traces:read', 'policies:read', 'policies:write', 'halts:read', 'halts:write', 'approvals:write', 'budgets:read',
  'budgets:write', 'notifications:read', 'notifications:write', 'api_keys:read', 'api_keys:write', 'audit:read', 'projects:manage',
];
const DEFAULT_SCOPES = new Set(['traces:write', 'policies:read']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function state(k: ApiKey): string {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  if (k.deprecated_at) return 'rotated (grace period)';
  return 'active';
}

export const keysPage: UserHandler = async (ctx, app, s) => {
  const withRevoked = queryParam(ctx, 'revoked') === '1';
  const list = await section(async () => {
    const r = await app.api.get<{ api_keys: ApiKey[] }>(s.caller, '/v1/api_keys', withRevoked ? { include_revoked: true } : undefined);
    const p = paginate(r.api_keys, queryParam(ctx, 'page'));
    return html`<table id="keys"><caption>API keys${withRevoked ? ', including revoked ones' : ''} — <a href="/keys${withRevoked ? '' : '?revoked=1'}">${withRevoked ? 'hide' : 'show'} revoked</a></caption>
<thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th>
<th scope="col">Expires</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
<tbody>${p.items.length ? p.items.map((k) => html`<tr data-key-id="${k.id}"><th scope="row">${k.name}</th><td><code>${k.key_prefix}…</code></td>
<td>${k.scopes.join(', ')}</td><td>${fmtTime(k.created_at)}</td><td>${fmtTime(k.last_used_at)}</td><td>${k.expires_at ? fmtTime(k.expires_at) : 'never'}</td><td>${state(k)}</td>
<td>${k.revoked_at ? '' : html`<div class="actions">
<form method="post" action="/keys/${k.id}/rotate" class="inline" data-confirm="Rotate this key? A new key is shown once; the old one keeps working for the grace period.">${csrfInput(s.csrf)}
<label for="grace-${k.id}" class="muted">Grace</label> <select id="grace-${k.id}" name="grace_seconds"><option value="0">none</option><option value="3600">1 hour</option><option value="86400">1 day</option><option value="259200" selected>3 days</option></select>
<button type="submit" class="secondary">Rotate</button></form>
<form method="post" action="/keys/${k.id}/revoke" class="inline" data-confirm="Revoke this key? Clients using it are refused at once.">${csrfInput(s.csrf)}<button type="submit" class="danger">Revoke</button></form></div>`}</td></tr>`)
  : emptyRow(8, 'No API keys.')}</tbody></table>
${pageLinks('/keys', new URLSearchParams(withRevoked ? { revoked: '1' } : {}), p.page, p.pages)}`;
  });
  const create = html`<section aria-labelledby="h-new" class="panel"><h2 id="h-new">Create a key</h2>
${hasRole(s, 'admin') ? '' : html`<p class="muted">Creating, rotating and revoking keys needs role admin; the receiver decides.</p>`}
<form method="post" action="/keys" class="stack">${csrfInput(s.csrf)}
<label for="name">Name</label><input id="name" name="name" required maxlength="200">
<fieldset class="checks"><legend>Scopes</legend>${SCOPES.map((sc) => html`<label><input type="checkbox" name="scopes" value="${sc}"${DEFAULT_SCOPES.has(sc) ? html` checked` : ''}> ${sc}</label>`)}</fieldset>
<label for="expires_days">Expires</label><select id="expires_days" name="expires_days"><option value="">never</option><option value="30">in 30 days</option><option value="90">in 90 days</option><option value="365">in a year</option></select>
<button type="submit">Create key</button></form></section>`;
  sendHtml(ctx, 200, page(s, { title: 'API keys', active: 'keys', body: html`${list}${create}` }));
};

export const keyCreate: UserHandler = async (ctx, app, s) => {
  await act(ctx, app, s, '/keys', async () => {
    const days = Number(field(ctx, 'expires_days'));
    const scopes = ctx.form.getAll('scopes').filter((x) => SCOPES.includes(x));
    const r = await app.api.post<ApiKey & { key: string }>(s.caller, '/v1/api_keys', {
      name: field(ctx, 'name'), scopes, ...(days > 0 ? { expires_at: new Date(Date.now() + days * 86_400_000).toISOString() } : {}),
    });
    return { kind: 'ok', text: `Key "${r.name}" created.`, secret: { label: `New API key ${r.key_prefix}…`, value: r.key } };
  });
};

export const keyRotate: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  await act(ctx, app, s, '/keys', async () => {
    if (!UUID.test(id)) return { kind: 'error', text: 'That is not a key id.' };
    const grace = Number(field(ctx, 'grace_seconds'));
    const r = await app.api.post<ApiKey & { key: string }>(s.caller, `/v1/api_keys/${id}/rotate`, { grace_seconds: Number.isInteger(grace) && grace >= 0 ? grace : 259_200 });
    return { kind: 'ok', text: `Key rotated: "${r.name}".`, secret: { label: `Rotated API key ${r.key_prefix}…`, value: r.key } };
  });
};

export const keyRevoke: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  await act(ctx, app, s, '/keys', async () => {
    if (!UUID.test(id)) return { kind: 'error', text: 'That is not a key id.' };
    await app.api.request(s.caller, 'DELETE', `/v1/api_keys/${id}`);
    return { kind: 'ok', text: 'Key revoked: clients using it are refused from now on.' };
  });
};
