// Receiver API shapes the pages read (SPEC §7.3, §8), and small renderers several pages share.
import type { ReadyBody } from '../api.js';
import type { App, Session } from '../app.js';
import { emptyRow } from '../components.js';
import { html, type Html } from '../http/html.js';

export interface Halt {
  id: number; scope: 'project' | 'agent'; scope_value: string | null; agent_name?: string | null; state: 'active' | 'cleared'; reason: string;
  actor?: { type: string; id: string | null; display: string | null } | null; budget_id?: string | null; policy_id?: string | null;
  set_at: string; cleared_at: string | null;
}

export interface Budget {
  id: string; name: string; scope: string; scope_value: string | null; budget_type: 'cost' | 'iteration';
  max_spend_usd: string | null; max_repeated_calls: number | null; loop_window_seconds?: number | null;
  budget_duration: string; window_type: string; spent_usd: string | null; current_count: number | null; action: string;
  thresholds?: (number | string)[]; is_active: boolean; auto_halted: boolean;
}

export const listHalts = (app: App, s: Session, all: boolean) =>
  app.api.get<{ halts: Halt[] }>(s.caller, '/v1/halts', all ? { state: 'all' } : undefined).then((r) => r.halts ?? []);

export const listBudgets = (app: App, s: Session) => app.api.get<{ budgets: Budget[] }>(s.caller, '/v1/budgets', { limit: 500 }).then((r) => r.budgets ?? []);

export function budgetLimitText(b: Budget): { value: number; limit: number; text: string } {
  if (b.budget_type === 'iteration') {
    const value = Number(b.current_count ?? 0);
    const limit = Number(b.max_repeated_calls ?? 0);
    return { value, limit, text: `${value} / ${limit} calls` };
  }
  const value = Number(b.spent_usd ?? 0);
  const limit = Number(b.max_spend_usd ?? 0);
  return { value, limit, text: `$${value.toFixed(4)} / $${limit.toFixed(2)}` };
}

export function haltTarget(h: Halt): string {
  return h.scope === 'project' ? 'whole project' : `agent ${h.scope_value ?? h.agent_name ?? '?'}`;
}

/** The /ready checks as a table (status words, not colour alone). */
export function readyTable(ready: ReadyBody, caption: string): Html {
  const rows = Object.entries(ready.checks ?? {});
  return html`<table>
<caption>${caption}: <span class="status-${ready.status}">${ready.status === 'ready' ? 'ready' : 'not ready'}</span></caption>
<thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Detail</th></tr></thead>
<tbody>${rows.length ? rows.map(([name, c]) => html`<tr><th scope="row">${name}</th><td class="status-${c.status}">${c.status}</td><td>${c.reason ?? checkDetail(c)}</td></tr>`) : emptyRow(3, 'No checks reported.')}</tbody>
</table>`;
}

function checkDetail(c: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(c)) if (k !== 'status' && k !== 'reason' && (typeof v === 'string' || typeof v === 'number')) parts.push(`${k}: ${v}`);
  return parts.join(', ');
}
