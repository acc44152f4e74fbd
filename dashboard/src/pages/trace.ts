// Trace detail (SPEC §12): the waterfall of spans on the trace's time axis with nesting, errors
// marked, tokens and cost per span and in total; each span's attributes, events, links, resource.
import type { UserHandler } from '../app.js';
import { ApiError } from '../api.js';
import { failure, notice } from '../components.js';
import { fmtDuration, fmtInt, fmtTime, fmtUsd, fmtValue } from '../format.js';
import { html, type Html } from '../http/html.js';
import { sendHtml } from '../http/request.js';
import { page } from '../layout.js';
import { waterfall, type WaterfallRow } from '../waterfall.js';
import type { TraceSummary } from './traces.js';

export interface ApiSpan {
  trace_id: string; span_id: string; parent_span_id: string | null; name: string; kind: string;
  start_time: string; end_time: string; start_time_unix_nano: number | string; end_time_unix_nano: number | string; duration_ms: number;
  status_code: 'UNSET' | 'OK' | 'ERROR'; status_message: string | null; service_name: string | null; agent_name: string | null;
  tool_name: string | null; request_model: string | null; is_llm: boolean; is_tool: boolean;
  input_tokens: number | string | null; output_tokens: number | string | null; cost_usd: string | null;
  attributes: Record<string, unknown>; resource?: { attributes?: Record<string, unknown> };
  scope?: { name: string | null; version: string | null };
  events?: { name: string; time: string; attributes: Record<string, unknown> }[];
  links?: { trace_id: string; span_id: string; attributes: Record<string, unknown> }[];
}

const MAX_DEPTH_CLASS = 30;
/** Span details beyond this many are left to the API (GET /v1/spans?trace_id=…): the page stays light. */
const MAX_DETAILS = 2000;
const TICKS = [0, 0.25, 0.5, 0.75, 1];

function kvTable(caption: string, attrs: Record<string, unknown> | undefined): Html {
  const entries = Object.entries(attrs ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return html`<p class="muted">${caption}: none.</p>`;
  return html`<table class="kv"><caption>${caption}</caption><tbody>${entries.map(([k, v]) => html`<tr><td><code>${k}</code></td><td>${fmtValue(v)}</td></tr>`)}</tbody></table>`;
}

/** Tick labels at 0, ¼, ½, ¾ and the end of the trace (spread by flexbox, no positioning styles). */
function timelineAxis(totalMs: number): Html {
  return html`<span class="axis-ticks"><span class="visually-hidden">Timeline: </span>${TICKS.map((f) => html`<span>${fmtDuration(totalMs * f)}</span>`)}</span>`;
}

function bar(row: WaterfallRow<ApiSpan>, totalMs: number): Html {
  const scale = totalMs > 0 ? 1000 / totalMs : 0;
  const x = Math.min(999, row.offsetMs * scale);
  const w = Math.max(2, Math.min(1000 - x, row.durationMs * scale));
  const s = row.span;
  const kind = s.status_code === 'ERROR' ? 'error' : s.is_llm ? 'llm' : s.is_tool ? 'tool' : 'span';
  return html`<svg class="bar" viewBox="0 0 1000 12" preserveAspectRatio="none" aria-hidden="true"><rect class="${kind}" x="${x.toFixed(2)}" y="0" width="${w.toFixed(2)}" height="12"/></svg>`;
}

function badges(s: ApiSpan): Html {
  return html`${s.status_code === 'ERROR' ? html`<span class="badge badge-error">error</span>` : ''}${s.is_llm ? html`<span class="badge badge-llm">LLM</span>` : ''}${s.is_tool ? html`<span class="badge badge-tool">tool</span>` : ''}`;
}

function waterfallTable(rows: WaterfallRow<ApiSpan>[], totalMs: number, trace: TraceSummary): Html {
  return html`<table class="waterfall" id="waterfall">
<caption>Spans on the trace's time axis (${fmtDuration(totalMs)}); indentation shows nesting</caption>
<thead><tr><th scope="col">Span</th><th scope="col">Service</th><th scope="col" class="num">Start</th><th scope="col" class="num">Duration</th>
<th scope="col" class="num">Tokens in/out</th><th scope="col" class="num">Cost</th><th scope="col" class="timeline">${timelineAxis(totalMs)}</th></tr></thead>
<tbody>${rows.map((r) => html`<tr data-depth="${r.depth}" data-span-id="${r.span.span_id}"${r.span.status_code === 'ERROR' ? html` class="error"` : ''}>
<td class="name d${Math.min(r.depth, MAX_DEPTH_CLASS)}"><a href="#span-${r.span.span_id}">${r.span.name}</a>${badges(r.span)}</td>
<td>${r.span.service_name ?? '–'}</td><td class="num">+${fmtDuration(r.offsetMs)}</td><td class="num">${fmtDuration(r.durationMs)}</td>
<td class="num">${r.span.input_tokens === null && r.span.output_tokens === null ? '–' : html`${fmtInt(r.span.input_tokens ?? 0)} / ${fmtInt(r.span.output_tokens ?? 0)}`}</td>
<td class="num">${fmtUsd(r.span.cost_usd)}</td><td class="timeline">${bar(r, totalMs)}</td></tr>`)}</tbody>
<tfoot><tr><th scope="row">Total (${fmtInt(rows.length)} spans)</th><td></td><td></td><td class="num">${fmtDuration(trace.duration_ms)}</td>
<td class="num" id="total-tokens">${fmtInt(trace.input_tokens)} / ${fmtInt(trace.output_tokens)}</td><td class="num" id="total-cost">${fmtUsd(trace.total_cost_usd)}</td><td></td></tr></tfoot>
</table>`;
}

function spanDetails(s: ApiSpan, resource: number): Html {
  return html`<details class="span" id="span-${s.span_id}">
<summary>${s.name}${badges(s)} <span class="muted">${fmtDuration(s.duration_ms)}</span></summary>
<dl class="facts">
<dt>Span id</dt><dd><code>${s.span_id}</code></dd>
<dt>Parent</dt><dd>${s.parent_span_id ? html`<a href="#span-${s.parent_span_id}"><code>${s.parent_span_id}</code></a>` : 'none (root)'}</dd>
<dt>Kind</dt><dd>${s.kind}</dd>
<dt>Status</dt><dd class="status-${s.status_code === 'ERROR' ? 'error' : 'ok'}">${s.status_code}${s.status_message ? `: ${s.status_message}` : ''}</dd>
<dt>Start</dt><dd>${fmtTime(s.start_time)}</dd><dt>End</dt><dd>${fmtTime(s.end_time)}</dd>
<dt>Service</dt><dd>${s.service_name ?? '–'}</dd><dt>Agent</dt><dd>${s.agent_name ?? '–'}</dd>
${s.request_model ? html`<dt>Model</dt><dd>${s.request_model}</dd>` : ''}${s.tool_name ? html`<dt>Tool</dt><dd>${s.tool_name}</dd>` : ''}
<dt>Tokens</dt><dd>${fmtInt(s.input_tokens ?? 0)} in, ${fmtInt(s.output_tokens ?? 0)} out</dd><dt>Cost</dt><dd>${fmtUsd(s.cost_usd)}</dd>
${s.scope?.name ? html`<dt>Scope</dt><dd>${s.scope.name}${s.scope.version ? ` ${s.scope.version}` : ''}</dd>` : ''}
</dl>
${kvTable('Attributes', s.attributes)}
${s.events?.length ? html`<h3>Events</h3><ol>${s.events.map((e) => html`<li><strong>${e.name}</strong> at ${fmtTime(e.time)}${kvTable(`Attributes of ${e.name}`, e.attributes)}</li>`)}</ol>` : html`<p class="muted">Events: none.</p>`}
${s.links?.length ? html`<h3>Links</h3><ul>${s.links.map((l) => html`<li><a href="/traces/${l.trace_id}#span-${l.span_id}">trace <code>${l.trace_id}</code> span <code>${l.span_id}</code></a>${kvTable('Link attributes', l.attributes)}</li>`)}</ul>` : html`<p class="muted">Links: none.</p>`}
<p>Resource: <a href="#resource-${resource}">resource ${resource}</a></p>
</details>`;
}

/**
 * The trace's distinct resources (usually one per service and process), each shown once on the
 * page and referred to by number from its spans: repeating them per span made a 1,000-span
 * page several MB of identical tables.
 */
function distinctResources(spans: ApiSpan[]): { list: Record<string, unknown>[]; numberOf: Map<string, number> } {
  const byKey = new Map<string, number>();
  const list: Record<string, unknown>[] = [];
  const numberOf = new Map<string, number>();
  for (const s of spans) {
    const attrs = s.resource?.attributes ?? {};
    const key = JSON.stringify(attrs);
    let n = byKey.get(key);
    if (n === undefined) {
      list.push(attrs);
      n = list.length;
      byKey.set(key, n);
    }
    numberOf.set(s.span_id, n);
  }
  return { list, numberOf };
}

export const tracePage: UserHandler = async (ctx, app, s) => {
  const id = (ctx.params.id ?? '').toLowerCase();
  let data: { trace: TraceSummary; spans: ApiSpan[]; truncated?: boolean };
  try {
    if (!/^[0-9a-f]{32}$/.test(id)) throw new ApiError('not_found', 404, `trace ${id} not found`);
    data = await app.api.get(s.caller, `/v1/traces/${id}`);
  } catch (err) {
    if (err instanceof ApiError && err.kind === 'not_found') {
      sendHtml(ctx, 404, page(s, { title: 'Trace not found', active: 'traces', body: html`${notice('error', `There is no trace ${id} in this project.`)}<p><a href="/traces">All traces</a></p>` }));
      return;
    }
    if (err instanceof ApiError && (err.kind === 'session' || err.kind === 'password_change' || err.kind === 'project_required')) throw err;
    sendHtml(ctx, 502, page(s, { title: 'Trace', active: 'traces', body: failure(err) }));
    return;
  }
  const t = data.trace;
  const { rows, totalMs } = waterfall(data.spans);
  const resources = distinctResources(data.spans);
  const body = html`<p><a href="/traces">« All traces</a></p>
<dl class="facts panel">
<dt>Trace id</dt><dd><code>${t.trace_id}</code></dd>
<dt>Service</dt><dd>${t.service_name ?? '–'}</dd><dt>Agent</dt><dd>${t.agent_name ?? '–'}</dd>
<dt>Started</dt><dd>${fmtTime(t.start_time)}</dd><dt>Duration</dt><dd>${fmtDuration(t.duration_ms)}</dd>
<dt>Spans</dt><dd>${fmtInt(t.span_count)}${t.error_count ? html` — <span class="status-error">${fmtInt(t.error_count)} failed</span>` : ''}</dd>
<dt>Tokens</dt><dd>${fmtInt(t.input_tokens)} in, ${fmtInt(t.output_tokens)} out</dd>
<dt>Total cost</dt><dd>${fmtUsd(t.total_cost_usd)}</dd>
${t.models?.length ? html`<dt>Models</dt><dd>${t.models.join(', ')}</dd>` : ''}
</dl>
${data.truncated ? notice('info', `This trace is large: only its first ${fmtInt(data.spans.length)} spans (in start order) are shown.`) : ''}
<section aria-labelledby="h-wf"><h2 id="h-wf">Waterfall</h2><div class="panel">${waterfallTable(rows, totalMs, t)}</div></section>
<section aria-labelledby="h-spans"><h2 id="h-spans">Span details</h2>${rows.slice(0, MAX_DETAILS).map((r) => spanDetails(r.span, resources.numberOf.get(r.span.span_id) ?? 1))}
${rows.length > MAX_DETAILS ? notice('info', `Details are shown for the first ${fmtInt(MAX_DETAILS)} spans of the waterfall; the others are in the API (GET /v1/spans?trace_id=${t.trace_id}).`) : ''}</section>
<section aria-labelledby="h-resources"><h2 id="h-resources">Resources</h2>${resources.list.map((attrs, i) => html`<div class="panel" id="resource-${i + 1}">${kvTable(`Resource ${i + 1} attributes`, attrs)}</div>`)}</section>`;
  sendHtml(ctx, 200, page(s, { title: `Trace ${t.root_name ?? t.trace_id}`, active: 'traces', body }));
};
