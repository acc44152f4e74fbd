// Workers (SPEC §12, §11): the receiver's /ready checks, each replica's heartbeat from
// core.worker_status, and (for admins, like GET /v1/workers) each worker's last runs.
import { hasRole, type UserHandler } from '../app.js';
import { emptyRow, notice, section } from '../components.js';
import { recentRuns, workerStatus, type WorkerRunRow } from '../db/queries.js';
import { fmtDuration, fmtInt, fmtTime } from '../format.js';
import { html } from '../http/html.js';
import { sendHtml } from '../http/request.js';
import { page } from '../layout.js';
import { readyTable } from './shared.js';

const RUNS_PER_WORKER = 20;

export const workersPage: UserHandler = async (ctx, app, s) => {
  const admin = hasRole(s, 'admin');
  const [ready, status] = await Promise.all([
    section(async () => readyTable(await app.api.ready(), 'Readiness (GET /ready)')),
    section(async () => {
      const rows = await workerStatus(app.db);
      const runs = admin && rows.length ? await recentRuns(app.db, [...new Set(rows.map((r) => r.worker))], RUNS_PER_WORKER) : [];
      const byWorker = new Map<string, WorkerRunRow[]>();
      for (const r of runs) byWorker.set(r.worker, [...(byWorker.get(r.worker) ?? []), r]);
      const heartbeat = html`<table id="heartbeats"><caption>Heartbeats, one row per worker and receiver replica</caption>
<thead><tr><th scope="col">Worker</th><th scope="col">Replica</th><th scope="col">Enabled</th><th scope="col" class="num">Interval</th><th scope="col">Last success</th>
<th scope="col">Last error</th><th scope="col" class="num">Failures in a row</th><th scope="col" class="num">Runs / failures / skipped</th><th scope="col" class="num">Last duration</th></tr></thead>
<tbody>${rows.length ? rows.map((w) => html`<tr><th scope="row">${w.worker}</th><td><code>${w.replica_id}</code></td><td>${w.enabled ? 'yes' : html`<span class="status-disabled">disabled</span>`}</td>
<td class="num">${fmtDuration(w.interval_seconds * 1000)}</td><td>${fmtTime(w.last_succeeded_at)}</td>
<td>${w.last_error ? html`<span class="status-error">${w.last_error}</span> ${fmtTime(w.last_error_at)}` : '–'}</td>
<td class="num">${w.consecutive_failures}</td><td class="num">${fmtInt(w.runs)} / ${fmtInt(w.failures)} / ${fmtInt(w.skips)}</td><td class="num">${fmtDuration(w.last_duration_ms)}</td></tr>`)
  : emptyRow(9, 'No worker has reported yet.')}</tbody></table>`;
      if (!admin) return html`${heartbeat}${notice('info', 'The run history of each worker requires role admin.')}`;
      const history = [...byWorker.entries()].map(([worker, list]) => html`<details class="span"><summary>${worker}: last ${list.length} runs</summary>
<table><caption>Runs of ${worker}, newest first</caption><thead><tr><th scope="col">Started</th><th scope="col">Replica</th><th scope="col">Outcome</th><th scope="col" class="num">Duration</th><th scope="col">Error</th></tr></thead>
<tbody>${list.map((r) => html`<tr><td>${fmtTime(r.started_at)}</td><td><code>${r.replica_id}</code></td><td class="status-${r.outcome === 'succeeded' ? 'ok' : 'failed'}">${r.outcome}</td>
<td class="num">${fmtDuration(r.duration_ms)}</td><td>${r.error ?? '–'}</td></tr>`)}</tbody></table></details>`);
      return html`${heartbeat}<h2>Last runs</h2>${history.length ? history : html`<p class="muted">No runs recorded yet.</p>`}`;
    }),
  ]);
  sendHtml(ctx, 200, page(s, { title: 'Workers', active: 'workers', body: html`${ready}<h2>Replicas</h2>${status}${admin ? html`<p class="muted">Database access: ${app.db.describe}.</p>` : ''}` }));
};
