// Cost rollups over priced/LLM spans, and the spend of the last 24 hours for the forecast.
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/db.js';
import { microsText, type NsRange } from './time.js';

export type CostGroupBy = 'model' | 'agent' | 'service' | 'day';

// Fixed expressions per grouping (never caller text in SQL).
const GROUP_KEY: Record<CostGroupBy, RawBuilder<string | null>> = {
  model: sql`model`,
  agent: sql`agent_name`,
  service: sql`service_name`,
  day: sql`to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
};

export interface CostRow { key: string | null; cost_usd: string; input_tokens: string; output_tokens: string; spans: string }

/**
 * Cost, tokens and span count per group over spans that carry a cost or are LLM calls, in
 * [since, until). Days ascend; other groupings are ordered by cost, largest first.
 */
export async function costsBy(db: Db, projectId: string, groupBy: CostGroupBy, range: Required<NsRange>): Promise<CostRow[]> {
  const key = GROUP_KEY[groupBy];
  const order = groupBy === 'day' ? sql`1 ASC` : sql`sum(cost_usd) DESC NULLS LAST, 1 ASC NULLS LAST`;
  const r = await sql<CostRow>`
    SELECT ${key} AS key,
      coalesce(sum(cost_usd), 0)::text AS cost_usd,
      coalesce(sum(input_tokens), 0)::text AS input_tokens,
      coalesce(sum(output_tokens), 0)::text AS output_tokens,
      count(*)::text AS spans
    FROM telemetry.spans
    WHERE project_id = ${projectId}
      AND (is_llm OR cost_usd IS NOT NULL)
      AND start_time >= ${microsText(range.sinceNs)}::timestamptz AND start_time_unix_nano >= ${range.sinceNs.toString()}::bigint
      AND start_time <= ${microsText(range.untilNs)}::timestamptz AND start_time_unix_nano < ${range.untilNs.toString()}::bigint
    GROUP BY 1
    ORDER BY ${order}
    LIMIT 10000`.execute(db);
  return r.rows;
}

export interface BurnRow { total_24h: string; per_hour: string; per_day: string; per_week: string; per_month: string }

/** Spend of spans started in the last 24 h, and the burn rate it implies (exact numeric arithmetic). */
export async function lastDayBurn(db: Db, projectId: string): Promise<BurnRow> {
  const r = await sql<BurnRow>`
    WITH s AS (
      SELECT coalesce(sum(cost_usd), 0) AS total FROM telemetry.spans
      WHERE project_id = ${projectId} AND start_time > now() - interval '24 hours'
    )
    SELECT total::text AS total_24h,
      round(total / 24, 10)::text AS per_hour,
      total::text AS per_day,
      round(total * 7, 10)::text AS per_week,
      round(total * 30, 10)::text AS per_month
    FROM s`.execute(db);
  const row = r.rows[0];
  if (!row) throw new Error('aggregate returned no row');
  return row;
}
