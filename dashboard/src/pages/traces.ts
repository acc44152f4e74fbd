// Traces (SPEC §12): filters (time range, service, agent, model, status, min cost, text in name),
// newest first, keyset pages — the receiver's GET /v1/traces, which reads trace summaries by index.
import type { UserHandler } from '../app.js';
import { cursorPager, emptyRow, section } from '../components.js';
import { fmtDuration, fmtInt, fmtTime, fmtUsd } from '../format.js';
import { html } from '../http/html.js';
import { queryParam, sendHtml, type RequestContext } from '../http/request.js';
import { page } from '../layout.js';

export interface TraceSummary {
  trace_id: string; start_time: string; end_time: string; duration_ms: number; agent_name: string | null; root_name: string | null;
  service_name: string | null; span_count: number; error_count: number; status: 'ok' | 'error';
  input_tokens: number | string | null; output_tokens: number | string | null; total_cost_usd: string | null; models?: string[];
}

const RANGES: [string, string, number | undefined][] = [
  ['15m', 'Last 15 minutes', 15 * 60_000], ['1h', 'Last hour', 3600_000], ['6h', 'Last 6 hours', 6 * 3600_000],
  ['24h', 'Last 24 hours', 86_400_000], ['7d', 'Last 7 days', 7 * 86_400_000], ['30d', 'Last 30 days', 30 * 86_400_000],
  ['all', 'All time', undefined], ['custom', 'Custom (below, UTC)', undefined],
];

/** `datetime-local` (no zone) read as UTC → RFC 3339, or undefined. */
function utc(v: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(v)) return undefined;
  const iso = `${v.length === 16 ? `${v}:00` : v}Z`;
  return Number.isNaN(Date.parse(iso)) ? undefined : iso;
}

const FILTERS = ['service', 'agent', 'model', 'status', 'min_cost', 'q', 'since', 'until'] as const;

function filterForm(ctx: RequestContext, range: string) {
  const v = (n: string) => queryParam(ctx, n);
  return html`<form method="get" action="/traces" class="filters" role="search" aria-label="Filter traces">
<div class="f"><label for="range">Time range</label><select id="range" name="range">${RANGES.map(([k, label]) => html`<option value="${k}"${k === range ? html` selected` : ''}>${label}</option>`)}</select></div>
<div class="f"><label for="since">From (UTC)</label><input id="since" name="since" type="datetime-local" value="${v('since')}"></div>
<div class="f"><label for="until">To (UTC)</label><input id="until" name="until" type="datetime-local" value="${v('until')}"></div>
<div class="f"><label for="service">Service</label><input id="service" name="service" value="${v('service')}"></div>
<div class="f"><label for="agent">Agent</label><input id="agent" name="agent" value="${v('agent')}"></div>
<div class="f"><label for="model">Model</label><input id="model" name="model" value="${v('model')}"></div>
<div class="f"><label for="status">Status</label><select id="status" name="status">
  <option value="">Any</option><option value="ok"${v('status') === 'ok' ? html` selected` : ''}>OK</option><option value="error"${v('status') === 'error' ? html` selected` : ''}>Error</option></select></div>
<div class="f"><label for="min_cost">Min cost (USD)</label><input id="min_cost" name="min_cost" inputmode="decimal" size="8" value="${v('min_cost')}"></div>
<div class="f"><label for="q">Name contains</label><input id="q" name="q" value="${v('q')}"></div>
<div class="f"><button type="submit">Apply filters</button></div>
<div class="f"><a href="/traces">Reset</a></div>
</form>`;
}

export const tracesPage: UserHandler = async (ctx, app, s) => {
  const range = RANGES.some(([k]) => k === queryParam(ctx, 'range')) ? queryParam(ctx, 'range') : '24h';
  const span = RANGES.find(([k]) => k === range)?.[2];
  const query = {
    service: queryParam(ctx, 'service'), agent_name: queryParam(ctx, 'agent'), model: queryParam(ctx, 'model'),
    status: queryParam(ctx, 'status'), min_cost_usd: queryParam(ctx, 'min_cost'), q: queryParam(ctx, 'q'),
    since: range === 'custom' ? utc(queryParam(ctx, 'since')) : span ? new Date(Date.now() - span).toISOString() : undefined,
    until: range === 'custom' ? utc(queryParam(ctx, 'until')) : undefined,
    cursor: queryParam(ctx, 'cursor'), limit: 50,
  };
  const keep = new URLSearchParams();
  keep.set('range', range);
  for (const f of FILTERS) if (queryParam(ctx, f)) keep.set(f, queryParam(ctx, f));
  if (query.cursor) keep.set('cursor', query.cursor);

  const results = await section(async () => {
    const r = await app.api.get<{ data: TraceSummary[]; next_cursor: string | null }>(s.caller, '/v1/traces', query);
    return html`<table id="traces">
<caption>Traces, newest first${range === 'all' ? '' : ` (${RANGES.find(([k]) => k === range)?.[1].toLowerCase()})`}</caption>
<thead><tr><th scope="col">Started</th><th scope="col">Name</th><th scope="col">Service</th><th scope="col">Agent</th>
<th scope="col" class="num">Spans</th><th scope="col" class="num">Errors</th><th scope="col" class="num">Tokens in/out</th>
<th scope="col" class="num">Cost</th><th scope="col" class="num">Duration</th></tr></thead>
<tbody>${r.data.length ? r.data.map((t) => html`<tr${t.error_count > 0 ? html` class="error"` : ''}>
<td>${fmtTime(t.start_time)}</td>
<td><a href="/traces/${t.trace_id}">${t.root_name ?? t.trace_id}</a>${t.error_count > 0 ? html`<span class="badge badge-error">error</span>` : ''}</td>
<td>${t.service_name ?? '–'}</td><td>${t.agent_name ? html`<a href="/traces?range=${range}&amp;agent=${encodeURIComponent(t.agent_name)}">${t.agent_name}</a>` : '–'}</td>
<td class="num">${fmtInt(t.span_count)}</td><td class="num">${fmtInt(t.error_count)}</td>
<td class="num">${fmtInt(t.input_tokens)} / ${fmtInt(t.output_tokens)}</td><td class="num">${fmtUsd(t.total_cost_usd)}</td>
<td class="num">${fmtDuration(t.duration_ms)}</td></tr>`) : emptyRow(9, 'No traces match these filters.')}</tbody>
</table>
${cursorPager('/traces', keep, r.next_cursor, Boolean(query.cursor))}`;
  });
  sendHtml(ctx, 200, page(s, { title: 'Traces', active: 'traces', body: html`${filterForm(ctx, range)}${results}` }));
};
