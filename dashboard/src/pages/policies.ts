// Policies (SPEC §12, §8.1): the list (enable/disable), what shadow policies would have done, and
// a simulator that runs a CEL expression against recent spans (POST /v1/policies/simulate).
import { act, hasRole, type Session, type UserHandler, type App } from '../app.js';
import { ApiError } from '../api.js';
import { csrfInput, emptyRow, failure, pageLinks, paginate, section } from '../components.js';
import { fmtInt, fmtTime } from '../format.js';
import { html, type Html } from '../http/html.js';
import { field, queryParam, sendHtml, type RequestContext } from '../http/request.js';
import { page } from '../layout.js';

interface Policy {
  id: string; name: string; description: string | null; match_expression: string; action: string; applies_to: string[];
  enabled: boolean; priority: number; shadow: boolean; match_count: number; last_matched_at: string | null;
}
interface Evaluation {
  id: number; policy_id: string; policy_name: string | null; outcome: string; action: string; shadow: boolean; would_have_acted: string | null;
  trace_id: string; span_id: string; span_name: string | null; agent_name: string | null; tool_name: string | null; error?: string | null; evaluated_at: string;
}
interface Simulation { matches: { trace_id: string; span_id: string; span_name: string; tool_name: string | null; agent_name: string | null; timestamp: string }[]; traces_tested: number; spans_tested: number }

function simulateForm(s: Session, expression: string, hours: number): Html {
  return html`<form method="post" action="/policies/simulate" class="stack">${csrfInput(s.csrf)}
<label for="match_expression">CEL expression</label>
<textarea id="match_expression" name="match_expression" required maxlength="4000" spellcheck="false">${expression}</textarea>
<label for="hours">Spans of the last … hours</label><input id="hours" name="hours" type="number" min="1" max="720" value="${hours}">
<button type="submit">Simulate</button></form>`;
}

async function render(ctx: RequestContext, app: App, s: Session, simulation: Html, expression: string, hours: number): Promise<void> {
  const ecursor = queryParam(ctx, 'ecursor');
  const [list, shadow] = await Promise.all([
    section(async () => {
      const r = await app.api.get<{ policies: Policy[] }>(s.caller, '/v1/policies');
      const p = paginate(r.policies, queryParam(ctx, 'page'));
      const canWrite = hasRole(s, 'admin');
      return html`<table id="policies"><caption>${fmtInt(r.policies.length)} policies, highest priority first</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Action</th><th scope="col">Expression</th><th scope="col">Applies to</th>
<th scope="col" class="num">Matches</th><th scope="col">Last match</th><th scope="col">State</th>${canWrite ? html`<th scope="col">Change</th>` : ''}</tr></thead>
<tbody>${p.items.length ? p.items.map((x) => html`<tr><th scope="row">${x.name}${x.shadow ? html`<span class="badge badge-shadow">shadow</span>` : ''}</th>
<td>${x.action}</td><td><code>${x.match_expression}</code></td><td>${x.applies_to.length ? x.applies_to.join(', ') : 'all agents'}</td>
<td class="num">${fmtInt(x.match_count)}</td><td>${fmtTime(x.last_matched_at)}</td><td>${x.enabled ? 'enabled' : 'disabled'}</td>
${canWrite ? html`<td><form method="post" action="/policies/${x.id}/enabled" class="inline">${csrfInput(s.csrf)}<input type="hidden" name="enabled" value="${x.enabled ? 'false' : 'true'}"><button type="submit" class="secondary">${x.enabled ? 'Disable' : 'Enable'}</button></form></td>` : ''}</tr>`)
  : emptyRow(canWrite ? 8 : 7, 'No policies yet (create them with the API, the CLI, or from a template).')}</tbody></table>
${pageLinks('/policies', new URLSearchParams(), p.page, p.pages)}`;
    }),
    section(async () => {
      const r = await app.api.get<{ evaluations: Evaluation[]; next_cursor: string | null }>(s.caller, '/v1/policies/evaluations', { shadow: true, cursor: ecursor, limit: 50 });
      return html`<table id="shadow-results"><caption>Shadow policies: what they would have done</caption>
<thead><tr><th scope="col">When</th><th scope="col">Policy</th><th scope="col">Outcome</th><th scope="col">Would have</th><th scope="col">Agent</th><th scope="col">Span</th></tr></thead>
<tbody>${r.evaluations.length ? r.evaluations.map((e) => html`<tr><td>${fmtTime(e.evaluated_at)}</td><td>${e.policy_name ?? e.policy_id}</td>
<td>${e.outcome}${e.error ? `: ${e.error}` : ''}</td><td>${e.would_have_acted ?? '–'}</td><td>${e.agent_name ?? '–'}</td>
<td><a href="/traces/${e.trace_id}#span-${e.span_id}">${e.span_name ?? e.span_id}</a>${e.tool_name ? html` <span class="muted">(${e.tool_name})</span>` : ''}</td></tr>`)
  : emptyRow(6, 'No shadow matches recorded.')}</tbody></table>
${shadowPager(r.next_cursor, ecursor)}`;
    }),
  ]);
  sendHtml(ctx, 200, page(s, {
    title: 'Policies', active: 'policies',
    body: html`<section aria-labelledby="h-list"><h2 id="h-list">Policies</h2>${list}</section>
<section aria-labelledby="h-shadow"><h2 id="h-shadow">Shadow results</h2>${shadow}</section>
<section aria-labelledby="h-sim" class="panel"><h2 id="h-sim">Simulate an expression</h2>
<p class="muted">Runs the expression against this project's recent spans without saving anything. Example: <code>attrs["gen_ai.tool.name"] == "shell_exec"</code></p>
${simulateForm(s, expression, hours)}${simulation}</section>`,
  }));
}

function shadowPager(next: string | null, current: string): Html {
  return html`<nav class="pager" aria-label="Shadow results pages">${current ? html`<a href="/policies#h-shadow">« First page</a>` : ''}${next ? html`<a href="/policies?ecursor=${encodeURIComponent(next)}#h-shadow" rel="next">Next page »</a>` : html`<span class="muted">No more results</span>`}</nav>`;
}

export const policiesPage: UserHandler = async (ctx, app, s) => render(ctx, app, s, html``, '', 24);

export const policySimulate: UserHandler = async (ctx, app, s) => {
  const expression = field(ctx, 'match_expression');
  const hours = Math.min(720, Math.max(1, Number(field(ctx, 'hours')) || 24));
  let result: Html;
  try {
    const r = await app.api.post<Simulation>(s.caller, '/v1/policies/simulate', { match_expression: expression, hours });
    result = html`<h3 id="simulation">Result</h3><p role="status">${fmtInt(r.matches.length)} matching spans out of ${fmtInt(r.spans_tested)} spans in ${fmtInt(r.traces_tested)} traces.</p>
<table><caption>Matches</caption><thead><tr><th scope="col">When</th><th scope="col">Agent</th><th scope="col">Span</th><th scope="col">Tool</th></tr></thead>
<tbody>${r.matches.length ? r.matches.slice(0, 200).map((m) => html`<tr><td>${fmtTime(m.timestamp)}</td><td>${m.agent_name ?? '–'}</td><td><a href="/traces/${m.trace_id}#span-${m.span_id}">${m.span_name}</a></td><td>${m.tool_name ?? '–'}</td></tr>`) : emptyRow(4, 'Nothing matched.')}</tbody></table>`;
  } catch (err) {
    if (err instanceof ApiError && (err.kind === 'session' || err.kind === 'password_change' || err.kind === 'project_required')) throw err;
    result = failure(err);
  }
  await render(ctx, app, s, result, expression, hours);
};

export const policyEnabled: UserHandler = async (ctx, app, s) => {
  const id = ctx.params.id ?? '';
  await act(ctx, app, s, '/policies', async () => {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return { kind: 'error', text: 'That is not a policy id.' };
    const enabled = field(ctx, 'enabled') === 'true';
    const p = await app.api.request<Policy>(s.caller, 'PATCH', `/v1/policies/${id}`, { body: { enabled } });
    return { kind: 'ok', text: `Policy "${p.name}" ${p.enabled ? 'enabled' : 'disabled'}.` };
  });
};
