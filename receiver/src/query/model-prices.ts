// Effective model prices (built-in defaults merged with a project's overrides) and the upsert.
import { sql } from 'kysely';
import type { Db } from '../db/db.js';

export interface PriceRow { model: string; input_usd_per_million: string; output_usd_per_million: string; source: 'default' | 'project'; updated_at: Date | null }

/** Defaults the project has not overridden, plus its overrides, by model name. */
export async function effectivePrices(db: Db, projectId: string): Promise<PriceRow[]> {
  const r = await sql<PriceRow>`
    SELECT d.model, d.input_usd_per_million::text AS input_usd_per_million, d.output_usd_per_million::text AS output_usd_per_million,
           'default' AS source, NULL::timestamptz AS updated_at
    FROM core.default_model_prices d
    WHERE NOT EXISTS (SELECT 1 FROM core.model_prices p WHERE p.project_id = ${projectId} AND p.model = d.model)
    UNION ALL
    SELECT model, input_usd_per_million::text, output_usd_per_million::text, 'project', updated_at
    FROM core.model_prices WHERE project_id = ${projectId}
    ORDER BY model`.execute(db);
  return r.rows;
}

/** Insert or replace a project's price for one model; returns the stored row. */
export async function upsertProjectPrice(db: Db, projectId: string, model: string, input: string, output: string): Promise<PriceRow> {
  const row = await db.insertInto('core.model_prices')
    .values({ project_id: projectId, model, input_usd_per_million: input, output_usd_per_million: output })
    .onConflict((oc) => oc.columns(['project_id', 'model']).doUpdateSet({
      input_usd_per_million: input, output_usd_per_million: output, updated_at: sql<Date>`now()`,
    }))
    .returning([
      'model', sql<string>`input_usd_per_million::text`.as('input_usd_per_million'),
      sql<string>`output_usd_per_million::text`.as('output_usd_per_million'), 'updated_at',
    ])
    .executeTakeFirstOrThrow();
  return { ...row, source: 'project' };
}
