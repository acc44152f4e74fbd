// Budgets (SPEC §12, §8.3): each budget's spend (or call count) in its current window against its
// limit, as a chart and a table; the budget monitor keeps the numbers current.
import type { UserHandler } from '../app.js';
import { limitChart } from '../charts.js';
import { emptyRow, pageLinks, paginate, section } from '../components.js';
import { fmtUsd } from '../format.js';
import { html } from '../http/html.js';
import { queryParam, sendHtml } from '../http/request.js';
import { page } from '../layout.js';
import { budgetLimitText, listBudgets } from './shared.js';

export const budgetsPage: UserHandler = async (ctx, app, s) => {
  const body = await section(async () => {
    const all = await listBudgets(app, s);
    const p = paginate(all, queryParam(ctx, 'page'), 25);
    const chart = p.items.length ? limitChart({
      id: 'budget-chart', title: 'Spend vs limit in the current window',
      description: p.items.map((b) => `${b.name}: ${budgetLimitText(b).text}`).join('; '),
      bars: p.items.map((b) => ({ label: b.name, ...budgetLimitText(b) })),
    }) : html``;
    return html`${chart}<table id="budgets"><caption>Budgets</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Scope</th><th scope="col">Type</th><th scope="col">Window</th>
<th scope="col" class="num">Used</th><th scope="col" class="num">Limit</th><th scope="col">On breach</th><th scope="col">State</th></tr></thead>
<tbody>${p.items.length ? p.items.map((b) => {
    const used = budgetLimitText(b);
    return html`<tr><th scope="row">${b.name}</th><td>${b.scope}${b.scope_value ? `: ${b.scope_value}` : ''}</td><td>${b.budget_type}</td>
<td>${b.budget_duration} ${b.window_type}</td>
<td class="num">${b.budget_type === 'cost' ? fmtUsd(b.spent_usd) : used.value}</td>
<td class="num">${b.budget_type === 'cost' ? fmtUsd(b.max_spend_usd) : used.limit}</td><td>${b.action}</td>
<td>${!b.is_active ? 'inactive' : b.auto_halted ? html`<span class="status-error">halted</span>` : used.value > used.limit ? html`<span class="status-error">exceeded</span>` : html`<span class="status-ok">within limit</span>`}</td></tr>`;
  }) : emptyRow(8, 'No budgets yet (create them with the API or the CLI).')}</tbody></table>
${pageLinks('/budgets', new URLSearchParams(), p.page, p.pages)}`;
  });
  sendHtml(ctx, 200, page(s, { title: 'Budgets', active: 'budgets', body }));
};
