// Budget part of GET /v1/costs/forecast (SPEC §7.3, §8.3): for each active cost budget, what it has
// spent in its current window and when it runs out at the recent burn rate (the budget scope's
// spend of the last 24 hours), if that happens before the window ends.
import { decimalText } from './budgets.js';
import { BUDGET_SPEND_LATERAL } from './budget-monitor.js';
import type { Queryable } from './change.js';

export interface BudgetForecast { budget_id: string; budget_name: string; spent_usd: string; limit_usd: string; projected_exhaustion_date: string | null }

const FORECAST_SQL = `
SELECT b.id, b.name, b.max_spend_usd::text AS limit_usd, s.spent::text AS spent, r.burn::text AS burn_24h, w.window_end, now() AS now
FROM core.budgets b
CROSS JOIN LATERAL core.budget_window(b.budget_duration, b.window_type, now()) w
${BUDGET_SPEND_LATERAL}
CROSS JOIN LATERAL (
  SELECT coalesce(sum(sp.cost_usd), 0) AS burn FROM telemetry.spans sp
  WHERE sp.project_id = b.project_id AND sp.cost_usd IS NOT NULL AND sp.start_time > now() - interval '24 hours' AND sp.start_time <= now()
    AND (b.scope <> 'agent' OR sp.agent_name = b.scope_value) AND (b.scope <> 'model' OR sp.model = b.scope_value)
) r
WHERE b.project_id = $1 AND b.is_active AND b.budget_type = 'cost'
ORDER BY b.created_at, b.id
LIMIT 1000`;

interface Row { id: string; name: string; limit_usd: string; spent: string; burn_24h: string; window_end: Date; now: Date }

export async function budgetForecasts(db: Queryable, projectId: string, alertThresholdHours: number): Promise<{ forecasts: BudgetForecast[]; alerts: BudgetForecast[] }> {
  const r = await db.query<Row>(FORECAST_SQL, [projectId]);
  const forecasts: BudgetForecast[] = [];
  const alerts: BudgetForecast[] = [];
  for (const row of r.rows) {
    const limit = Number(row.limit_usd);
    const spent = Number(row.spent);
    const perHour = Number(row.burn_24h) / 24;
    let at: Date | null = null;
    if (spent >= limit) at = row.now;
    else if (perHour > 0) {
      const ms = ((limit - spent) / perHour) * 3_600_000;
      const when = row.now.getTime() + ms;
      if (Number.isFinite(when) && when <= row.window_end.getTime()) at = new Date(when);
    }
    const f: BudgetForecast = {
      budget_id: row.id, budget_name: row.name, spent_usd: decimalText(row.spent) ?? '0', limit_usd: decimalText(row.limit_usd) ?? '0',
      projected_exhaustion_date: at ? at.toISOString() : null,
    };
    forecasts.push(f);
    if (at && at.getTime() <= row.now.getTime() + alertThresholdHours * 3_600_000) alerts.push(f);
  }
  return { forecasts, alerts };
}
