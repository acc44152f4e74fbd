// Overview (SPEC §12): ingest rate, spans today, spend today vs budgets, active halts, worker health.
// Counts come from trace summaries through the read-only role; halts and budgets from the API.
import type { UserHandler } from '../app.js';
import { barChart, limitChart } from '../charts.js';
import { notice, section } from '../components.js';
import { spansPerMinute, todayTotals } from '../db/queries.js';
import { fmtInt, fmtUsd } from '../format.js';
import { html } from '../http/html.js';
import { sendHtml } from '../http/request.js';
import { page } from '../layout.js';
import { budgetLimitText, haltTarget, listBudgets, listHalts, readyTable } from './shared.js';

export const overviewPage: UserHandler = async (ctx, app, s) => {
  const projectId = s.me.project_id;
  const [cards, rate, halts, budgets, workers] = await Promise.all([
    section(async () => {
      const t = await todayTotals(app.db, projectId);
      return html`<ul class="cards" aria-label="Today (UTC)">
<li class="card"><span class="label">Spans today</span><span class="value" id="spans-today">${fmtInt(t.spans)}</span></li>
<li class="card"><span class="label">Traces today</span><span class="value">${fmtInt(t.traces)}</span></li>
<li class="card"><span class="label">Failed spans today</span><span class="value">${fmtInt(t.errors)}</span></li>
<li class="card"><span class="label">Spend today</span><span class="value" id="spend-today">${fmtUsd(t.cost_usd)}</span></li>
<li class="card"><span class="label">Tokens today</span><span class="value">${fmtInt(t.tokens)}</span></li>
</ul>`;
    }),
    section(async () => {
      const rows = await spansPerMinute(app.db, projectId);
      const byMinute = new Map(rows.map((r) => [new Date(r.minute).toISOString().slice(11, 16), r.spans]));
      const now = Date.now();
      const points = Array.from({ length: 60 }, (_, i) => {
        const label = new Date(now - (59 - i) * 60_000).toISOString().slice(11, 16);
        return { label, value: byMinute.get(label) ?? 0 };
      });
      const total = points.reduce((a, p) => a + p.value, 0);
      return barChart({
        id: 'ingest', title: 'Ingest rate: spans per minute, last hour (UTC, by trace start)',
        description: `${fmtInt(total)} spans in the last 60 minutes, ${fmtInt(Math.round(total / 60))} per minute on average.`,
        points, format: (v) => fmtInt(v), labelEvery: 10,
      });
    }),
    section(async () => {
      const active = await listHalts(app, s, false);
      if (!active.length) return notice('ok', 'No active halts: every agent may run.');
      return html`<p><strong>${fmtInt(active.length)}</strong> active ${active.length === 1 ? 'halt' : 'halts'} — <a href="/halts">review and resolve</a>.</p>
<ul>${active.slice(0, 10).map((h) => html`<li>${haltTarget(h)}: ${h.reason || 'no reason given'}</li>`)}</ul>`;
    }),
    section(async () => {
      const list = (await listBudgets(app, s)).filter((b) => b.is_active);
      if (!list.length) return html`<p class="muted">No active budgets. <a href="/budgets">Budgets</a></p>`;
      return limitChart({
        id: 'budgets', title: 'Spend in the current window vs budget', description: list.map((b) => `${b.name}: ${budgetLimitText(b).text}`).join('; '),
        bars: list.slice(0, 12).map((b) => ({ label: b.name, ...budgetLimitText(b) })),
      });
    }),
    section(async () => readyTable(await app.api.ready(), 'Receiver readiness')),
  ]);
  sendHtml(ctx, 200, page(s, {
    title: 'Overview', active: 'overview',
    body: html`${cards}
<section aria-labelledby="h-rate"><h2 id="h-rate">Ingest rate</h2>${rate}</section>
<div class="grid2">
<section aria-labelledby="h-halts" class="panel"><h2 id="h-halts">Active halts</h2>${halts}</section>
<section aria-labelledby="h-budgets" class="panel"><h2 id="h-budgets">Spend vs budgets</h2>${budgets}</section>
</div>
<section aria-labelledby="h-workers"><h2 id="h-workers">Worker health</h2>${workers}<p><a href="/workers">Workers and their last runs</a></p></section>`,
  }));
};
