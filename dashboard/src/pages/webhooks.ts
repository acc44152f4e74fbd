// Webhooks (SPEC §12, §9): endpoints (create with a one-time secret, enable/disable, rotate the
// secret, send a test, delete) and each endpoint's deliveries, where dead ones can be re-queued.
import { act, type UserHandler } from '../app.js';
import { csrfInput, cursorPager, emptyRow, pageLinks, paginate, section } from '../components.js';
import { fmtTime } from '../format.js';
import { html } from '../http/html.js';
import { field, queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';

interface Channel { id: string; name: string; url: string; description: string | null; events: string[]; enabled: boolean; created_at: string }
interface Delivery {
  id: string; event_type: string; webhook_id: string; status: string; attempts: number; next_attempt_at: string | null;
  last_status_code: number | null; last_error: string | null; last_attempt_at: string | null; delivered_at: string | null; created_at: string;
}

const EVENT_TYPES = ['halt.created', 'halt.cleared', 'budget.threshold', 'budget.exceeded', 'policy.matched', 'approval.requested',
  'approval.decided', 'api_key.created', 'api_key.revoked', 'audit.verification_failed', 'webhook.test'];
const STATUSES = ['pending', 'delivering', 'succeeded', 'dead'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const webhooksPage: UserHandler = async (ctx, app, s) => {
  const list = await section(async () => {
    const r = await app.api.get<{ data: Channel[] }>(s.caller, '/v1/notification-channels');
    const p = paginate(r.data, queryParam(ctx, 'page'));
    return html`<table id="channels"><caption>Webhook endpoints</caption>
<thead><tr><th scope="col">Name</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">State</th><th scope="col">Created</th></tr></thead>
<tbody>${p.items.length ? p.items.map((c) => html`<tr><th scope="row"><a href="/webhooks/${c.id}">${c.name}</a></th><td><code>${c.url}</code></td>
<td>${c.events.length ? c.events.join(', ') : 'every event'}</td><td>${c.enabled ? 'enabled' : 'disabled'}</td><td>${fmtTime(c.created_at)}</td></tr>`)
  : emptyRow(5, 'No webhook endpoints yet.')}</tbody></table>${pageLinks('/webhooks', new URLSearchParams(), p.page, p.pages)}`;
  });
  const create = html`<section aria-labelledby="h-new" class="panel"><h2 id="h-new">Add an endpoint</h2>
<form method="post" action="/webhooks" class="stack">${csrfInput(s.csrf)}
<label for="name">Name</label><input id="name" name="name" required maxlength="200">
<label for="url">URL</label><input id="url" name="url" type="url" required placeholder="https://example.com/strathon-webhook">
<label for="description">Description <span class="muted">(optional)</span></label><input id="description" name="description" maxlength="2000">
<fieldset class="checks"><legend>Events <span class="muted">(none checked: every event)</span></legend>${EVENT_TYPES.map((e) => html`<label><input type="checkbox" name="events" value="${e}"> ${e}</label>`)}</fieldset>
<button type="submit">Add endpoint</button></form></section>`;
  sendHtml(ctx, 200, page(s, { title: 'Webhooks', active: 'webhooks', body: html`${list}${create}` }));
};

export const webhookCreate: UserHandler = async (ctx, app, s) => {
  await act(ctx, app, s, '/webhooks', async () => {
    const r = await app.api.post<Channel & { secret: string }>(s.caller, '/v1/notification-channels', {
      name: field(ctx, 'name'), url: field(ctx, 'url'), description: field(ctx, 'description') || undefined,
      events: ctx.form.getAll('events').filter((e) => EVENT_TYPES.includes(e)),
    });
    return { kind: 'ok', text: `Endpoint "${r.name}" added.`, secret: { label: 'Signing secret', value: r.secret } };
  });
};

export const webhookPage: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  const status = STATUSES.includes(queryParam(ctx, 'status')) ? queryParam(ctx, 'status') : '';
  const cursor = queryParam(ctx, 'cursor');
  const body = await section(async () => {
    if (!UUID.test(id)) return html`<p>There is no such endpoint. <a href="/webhooks">All endpoints</a></p>`;
    const [c, d] = await Promise.all([
      app.api.get<Channel>(s.caller, `/v1/notification-channels/${id}`),
      app.api.get<{ data: Delivery[]; next_cursor: string | null }>(s.caller, `/v1/notification-channels/${id}/deliveries`, { status, cursor, limit: 50 }),
    ]);
    const keep = new URLSearchParams(status ? { status } : {});
    const action = (path: string, label: string, cls = 'secondary', confirm?: string, extra = html``) =>
      html`<form method="post" action="/webhooks/${id}/${path}" class="inline"${confirm ? html` data-confirm="${confirm}"` : ''}>${csrfInput(s.csrf)}${extra}<button type="submit" class="${cls}">${label}</button></form>`;
    return html`<p><a href="/webhooks">« All endpoints</a></p>
<dl class="facts panel"><dt>Name</dt><dd>${c.name}</dd><dt>URL</dt><dd><code>${c.url}</code></dd><dt>Events</dt><dd>${c.events.length ? c.events.join(', ') : 'every event'}</dd>
<dt>State</dt><dd>${c.enabled ? 'enabled' : 'disabled'}</dd>${c.description ? html`<dt>Description</dt><dd>${c.description}</dd>` : ''}<dt>Created</dt><dd>${fmtTime(c.created_at)}</dd></dl>
<div class="actions">${action('test', 'Send test event', '')}${action('enabled', c.enabled ? 'Disable' : 'Enable', 'secondary', undefined, html`<input type="hidden" name="enabled" value="${c.enabled ? 'false' : 'true'}">`)}
${action('rotate', 'Rotate secret', 'secondary', 'Rotate the signing secret? The old one keeps signing for 24 hours.')}${action('delete', 'Delete endpoint', 'danger', 'Delete this endpoint and its deliveries?')}</div>
<h2>Deliveries</h2>
<form method="get" action="/webhooks/${id}" class="filters" aria-label="Filter deliveries"><div class="f"><label for="status">Status</label>
<select id="status" name="status"><option value="">Any</option>${STATUSES.map((x) => html`<option value="${x}"${x === status ? html` selected` : ''}>${x}</option>`)}</select></div>
<div class="f"><button type="submit">Show</button></div></form>
<table id="deliveries"><caption>Deliveries, newest first</caption>
<thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Last answer</th><th scope="col">Next attempt</th><th scope="col">Action</th></tr></thead>
<tbody>${d.data.length ? d.data.map((x) => html`<tr><td>${fmtTime(x.created_at)}</td><td>${x.event_type}</td><td class="status-${x.status}">${x.status}</td><td class="num">${x.attempts}</td>
<td>${x.last_status_code ? `HTTP ${x.last_status_code}` : ''}${x.last_error ? ` ${x.last_error}` : ''}${!x.last_status_code && !x.last_error ? '–' : ''}</td><td>${x.status === 'pending' ? fmtTime(x.next_attempt_at) : '–'}</td>
<td>${x.status === 'dead' ? html`<form method="post" action="/webhooks/${id}/deliveries/${x.id}/retry" class="inline">${csrfInput(s.csrf)}<button type="submit" class="secondary">Re-queue</button></form>` : ''}</td></tr>`)
  : emptyRow(7, 'No deliveries.')}</tbody></table>${cursorPager(`/webhooks/${id}`, keep, d.next_cursor, Boolean(cursor))}`;
  });
  sendHtml(ctx, 200, page(s, { title: 'Webhook endpoint', active: 'webhooks', body }));
};

/** The actions of one endpoint: test, enable/disable, rotate, delete, re-queue a dead delivery. */
export const webhookAction: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  const verb = ctx.params.action ?? '';
  const base = `/v1/notification-channels/${id}`;
  await act(ctx, app, s, verb === 'delete' ? '/webhooks' : `/webhooks/${id}`, async () => {
    if (!UUID.test(id)) return { kind: 'error', text: 'That is not an endpoint id.' };
    switch (verb) {
      case 'test':
        await app.api.post(s.caller, `${base}/test`, {});
        return { kind: 'ok', text: 'Test event queued; its delivery appears below.' };
      case 'enabled': {
        const c = await app.api.request<Channel>(s.caller, 'PATCH', base, { body: { enabled: field(ctx, 'enabled') === 'true' } });
        return { kind: 'ok', text: `Endpoint ${c.enabled ? 'enabled' : 'disabled'}.` };
      }
      case 'rotate': {
        const r = await app.api.post<{ secret: string }>(s.caller, `${base}/rotate-secret`, {});
        return { kind: 'ok', text: 'Secret rotated; the previous one keeps signing for 24 hours.', secret: { label: 'New signing secret', value: r.secret } };
      }
      case 'delete':
        await app.api.request(s.caller, 'DELETE', base);
        return { kind: 'ok', text: 'Endpoint deleted.' };
      default:
        return { kind: 'error', text: 'Unknown action.' };
    }
  });
};

export const deliveryRetry: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  const delivery = ctx.params.delivery ?? '';
  await act(ctx, app, s, `/webhooks/${UUID.test(id) ? id : ''}`, async () => {
    if (!UUID.test(delivery)) return { kind: 'error', text: 'That is not a delivery id.' };
    await app.api.post(s.caller, `/v1/notification-deliveries/${delivery}/retry`, {});
    return { kind: 'ok', text: 'Delivery re-queued.' };
  });
};
