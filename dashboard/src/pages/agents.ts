// Agents (SPEC §12): the receiver's inventory (GET /v1/agents) over a lookback window, paged here.
import type { UserHandler } from '../app.js';
import { emptyRow, pageLinks, paginate, section } from '../components.js';
import { fmtInt, fmtTime, fmtUsd } from '../format.js';
import { html } from '../http/html.js';
import { queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';

interface Agent {
  agent_name: string; first_seen: string; last_active: string; total_spans: number; error_spans?: number; total_cost_usd: string | null;
  total_tool_calls: number; tools_used: string[]; models_used: string[]; is_halted: boolean; has_budget: boolean;
  policies_covering: number; risk_score: string; risk_factors: string[];
}

const LOOKBACKS = [1, 7, 30, 90];
/**
 * The receiver reads complete days from its per-agent daily rollup (agent_rollup_task) and
 * aggregates only the partial first day and today from spans, so every window costs about one
 * day of spans (bench/dashboard at 1M spans): the page opens on 30 days, the API's default.
 */
const DEFAULT_LOOKBACK = 30;

export const agentsPage: UserHandler = async (ctx, app, s) => {
  const days = LOOKBACKS.includes(Number(queryParam(ctx, 'days'))) ? Number(queryParam(ctx, 'days')) : DEFAULT_LOOKBACK;
  const body = await section(async () => {
    const r = await app.api.get<{ agents: Agent[]; count: number }>(s.caller, '/v1/agents', { lookback_days: days });
    const p = paginate(r.agents, queryParam(ctx, 'page'));
    const keep = new URLSearchParams({ days: String(days) });
    return html`<table id="agents">
<caption>${fmtInt(r.count)} agents seen in the last ${days} ${days === 1 ? 'day' : 'days'}</caption>
<thead><tr><th scope="col">Agent</th><th scope="col">Risk</th><th scope="col">Last active</th><th scope="col" class="num">Spans</th>
<th scope="col" class="num">Tool calls</th><th scope="col" class="num">Cost</th><th scope="col">Models</th><th scope="col">Tools</th><th scope="col">Halted</th></tr></thead>
<tbody>${p.items.length ? p.items.map((a) => html`<tr>
<th scope="row"><a href="/traces?range=${days <= 1 ? '24h' : days <= 7 ? '7d' : days <= 30 ? '30d' : 'all'}&amp;agent=${encodeURIComponent(a.agent_name)}">${a.agent_name}</a></th>
<td><span class="risk-${a.risk_score}">${a.risk_score}</span>${a.risk_factors.length ? html`<details><summary>why</summary><ul>${a.risk_factors.map((f) => html`<li>${f}</li>`)}</ul></details>` : ''}</td>
<td>${fmtTime(a.last_active)}</td><td class="num">${fmtInt(a.total_spans)}</td><td class="num">${fmtInt(a.total_tool_calls)}</td>
<td class="num">${fmtUsd(a.total_cost_usd)}</td><td>${a.models_used.join(', ') || '–'}</td><td>${a.tools_used.join(', ') || '–'}</td>
<td>${a.is_halted ? html`<span class="status-error">halted</span>` : 'no'}</td></tr>`) : emptyRow(9, 'No agents in this window.')}</tbody>
</table>${pageLinks('/agents', keep, p.page, p.pages)}`;
  });
  const filter = html`<form method="get" action="/agents" class="filters" aria-label="Lookback window">
<div class="f"><label for="days">Seen in the last</label><select id="days" name="days">${LOOKBACKS.map((d) => html`<option value="${d}"${d === days ? html` selected` : ''}>${d} ${d === 1 ? 'day' : 'days'}</option>`)}</select></div>
<div class="f"><button type="submit">Show</button></div></form>`;
  sendHtml(ctx, 200, page(s, { title: 'Agents', active: 'agents', body: html`${filter}${body}` }));
};
