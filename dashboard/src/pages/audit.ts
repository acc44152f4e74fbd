// Audit log (SPEC §12, §10): filtered, newest first with keyset pages; a button that has the
// receiver recompute the hash chain and says whether it is intact.
import { act, type UserHandler } from '../app.js';
import { csrfInput, cursorPager, emptyRow, section } from '../components.js';
import { fmtTime } from '../format.js';
import { html } from '../http/html.js';
import { queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';

interface AuditEvent {
  id: string; sequence_no: number; occurred_at: string; actor: { type: string; id: string | null; display: string | null };
  action: string; outcome: string; resource: { type: string | null; id: string | null }; request_id: string | null; source_ip: string | null;
  details: Record<string, unknown>;
}
interface Verification { valid: boolean; checked: number; first_bad_sequence: number | null; reason: string | null }

const FILTERS = ['action', 'actor', 'resource_type', 'outcome', 'since', 'until'] as const;
const utc = (v: string) => (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v) ? `${v}:00Z` : undefined);

export const auditPage: UserHandler = async (ctx, app, s) => {
  const v = (n: string) => queryParam(ctx, n);
  const cursor = v('cursor');
  const keep = new URLSearchParams();
  for (const f of FILTERS) if (v(f)) keep.set(f, v(f));
  const list = await section(async () => {
    const r = await app.api.get<{ data: AuditEvent[]; next_cursor: string | null }>(s.caller, '/v1/audit/events', {
      action: v('action'), actor: v('actor'), resource_type: v('resource_type'), outcome: v('outcome'),
      since: utc(v('since')), until: utc(v('until')), cursor, limit: 50,
    });
    return html`<table id="audit-events"><caption>Audit events, newest first</caption>
<thead><tr><th scope="col" class="num">Seq</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Outcome</th>
<th scope="col">Resource</th><th scope="col">From</th><th scope="col">Details</th></tr></thead>
<tbody>${r.data.length ? r.data.map((e) => html`<tr><td class="num">${e.sequence_no}</td><td>${fmtTime(e.occurred_at)}</td>
<td>${e.actor.type}${e.actor.display ? ` ${e.actor.display}` : ''}</td><td><code>${e.action}</code></td>
<td class="status-${e.outcome === 'success' ? 'ok' : 'error'}">${e.outcome}</td><td>${e.resource.type ?? '–'}${e.resource.id ? html` <code>${e.resource.id}</code>` : ''}</td>
<td>${e.source_ip ?? '–'}</td><td>${Object.keys(e.details ?? {}).length ? html`<details><summary>details</summary><pre class="mono">${JSON.stringify(e.details, null, 2)}</pre></details>` : '–'}</td></tr>`)
  : emptyRow(8, 'No audit events match these filters.')}</tbody></table>${cursorPager('/audit', keep, r.next_cursor, Boolean(cursor))}`;
  });
  const filters = html`<form method="get" action="/audit" class="filters" role="search" aria-label="Filter audit events">
<div class="f"><label for="action">Action</label><input id="action" name="action" value="${v('action')}" placeholder="api_key.create"></div>
<div class="f"><label for="actor">Actor</label><input id="actor" name="actor" value="${v('actor')}"></div>
<div class="f"><label for="resource_type">Resource type</label><input id="resource_type" name="resource_type" value="${v('resource_type')}"></div>
<div class="f"><label for="outcome">Outcome</label><select id="outcome" name="outcome"><option value="">Any</option>${['success', 'failure'].map((o) => html`<option value="${o}"${o === v('outcome') ? html` selected` : ''}>${o}</option>`)}</select></div>
<div class="f"><label for="since">From (UTC)</label><input id="since" name="since" type="datetime-local" value="${v('since')}"></div>
<div class="f"><label for="until">To (UTC)</label><input id="until" name="until" type="datetime-local" value="${v('until')}"></div>
<div class="f"><button type="submit">Apply filters</button></div><div class="f"><a href="/audit">Reset</a></div></form>`;
  const verify = html`<section aria-labelledby="h-verify" class="panel"><h2 id="h-verify">Integrity</h2>
<p>Recompute this project's hash chain and check it against its anchors (detects modified, deleted, reordered or truncated events).</p>
<form method="post" action="/audit/verify">${csrfInput(s.csrf)}<button type="submit">Verify chain</button></form></section>`;
  sendHtml(ctx, 200, page(s, { title: 'Audit log', active: 'audit', body: html`${verify}${filters}${list}` }));
};

export const auditVerify: UserHandler = async (ctx, app, s) => {
  await act(ctx, app, s, '/audit', async () => {
    const r = await app.api.get<Verification>(s.caller, '/v1/audit/verify');
    return r.valid
      ? { kind: 'ok', text: `Audit chain verified: valid (${r.checked} events checked).` }
      : { kind: 'error', text: `Audit chain verification FAILED at sequence ${r.first_bad_sequence ?? '?'}: ${r.reason ?? 'unknown reason'} (${r.checked} events checked).` };
  });
};
