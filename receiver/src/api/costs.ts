// GET /v1/costs (rollup by model | agent | service | day) and GET /v1/costs/forecast.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { costsBy, lastDayBurn, type CostGroupBy } from '../query/costs.js';
import { budgetForecasts } from '../governance/governance.js';
import { principalOf } from './app.js';
import { scope, type Route } from './routes.js';
import { parseEnum, parseIntParam, parseTimeRange } from './params.js';
import { jsonInt, money, rfc3339 } from './serialize.js';

const GROUPS = ['model', 'agent', 'service', 'day'] as const satisfies readonly CostGroupBy[];
const DEFAULT_WINDOW_NS = 30n * 86_400n * 1_000_000_000n;
const INT64_MAX = (1n << 63n) - 1n;

export function costRoutes(ctx: ReceiverContext): Route[] {
  const read = scope('traces:read');

  const rollup = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const groupBy = parseEnum(req, 'group_by', GROUPS) ?? 'model';
    const range = parseTimeRange(req);
    // Without a range: the last 30 days (an unbounded scan of every span is never what a report wants).
    const untilNs = range.untilNs ?? INT64_MAX;
    const sinceNs = range.sinceNs ?? (range.untilNs ?? BigInt(Date.now()) * 1_000_000n) - DEFAULT_WINDOW_NS;
    const rows = await costsBy(ctx.db, projectId, groupBy, { sinceNs: sinceNs < 0n ? 0n : sinceNs, untilNs });
    let totalPico = 0n;
    const data = rows.map((r) => {
      totalPico += toScaled(r.cost_usd);
      return { key: r.key, cost_usd: money(r.cost_usd), input_tokens: jsonInt(r.input_tokens), output_tokens: jsonInt(r.output_tokens), spans: jsonInt(r.spans) };
    });
    res.json({
      data, total_cost_usd: fromScaled(totalPico), group_by: groupBy,
      since: rfc3339(sinceNs < 0n ? 0n : sinceNs), until: range.untilNs === undefined ? null : rfc3339(untilNs),
    });
  };

  const forecast = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const alertThresholdHours = parseIntParam(req, 'alert_threshold_hours', 24, 1, 8760);
    const [b, budgets] = await Promise.all([lastDayBurn(ctx.db, projectId), budgetForecasts(ctx.pool, projectId, alertThresholdHours)]);
    res.json({
      burn_rate_usd_per_hour: money(b.per_hour),
      total_cost_last_24h: money(b.total_24h),
      projected_daily_cost: money(b.per_day),
      projected_weekly_cost: money(b.per_week),
      projected_monthly_cost: money(b.per_month),
      budget_forecasts: budgets.forecasts,
      budget_alerts: budgets.alerts,
      alert_threshold_hours: alertThresholdHours,
    });
  };

  return [
    { method: 'GET', path: '/v1/costs', auth: read, body: 'none', handler: rollup },
    { method: 'GET', path: '/v1/costs/forecast', auth: read, body: 'none', handler: forecast },
  ];
}

// Exact sums of numeric(20,10) strings: scaled to 1e-10 USD units as bigints.
const SCALE = 10;
function toScaled(v: string): bigint {
  const neg = v.startsWith('-');
  const [i = '0', f = ''] = (neg ? v.slice(1) : v).split('.');
  const n = BigInt(i) * 10n ** BigInt(SCALE) + BigInt((f + '0'.repeat(SCALE)).slice(0, SCALE));
  return neg ? -n : n;
}
function fromScaled(n: bigint): string {
  const s = (n < 0n ? -n : n).toString().padStart(SCALE + 1, '0');
  return money(`${n < 0n ? '-' : ''}${s.slice(0, -SCALE)}.${s.slice(-SCALE)}`) ?? '0';
}
