// Effective model prices (built-in defaults merged with a project's overrides) and the upsert.
import { sql } from 'kysely';
import type { Db } from '../db/db.js';
import { inTransaction, recordChange, type AccessDeps, type ChangeContext } from '../access/change.js';

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

/**
 * Insert or replace a project's price for one model, audited in the same transaction (SPEC §10:
 * the audit row carries the previous and the new price); returns the stored row.
 */
export async function upsertProjectPrice(
  deps: AccessDeps, change: ChangeContext, model: string, input: string, output: string,
): Promise<PriceRow> {
  const projectId = change.principal.projectId;
  return inTransaction(deps.pool, async (tx) => {
    const before = await tx.query<{ input: string; output: string }>(
      `SELECT trim_scale(input_usd_per_million)::text AS input, trim_scale(output_usd_per_million)::text AS output
       FROM core.model_prices WHERE project_id = $1 AND model = $2 FOR UPDATE`, [projectId, model]);
    const r = await tx.query<Omit<PriceRow, 'source'>>(
      `INSERT INTO core.model_prices (project_id, model, input_usd_per_million, output_usd_per_million)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (project_id, model) DO UPDATE
         SET input_usd_per_million = EXCLUDED.input_usd_per_million, output_usd_per_million = EXCLUDED.output_usd_per_million, updated_at = now()
       RETURNING model, trim_scale(input_usd_per_million)::text AS input_usd_per_million, trim_scale(output_usd_per_million)::text AS output_usd_per_million, updated_at`,
      [projectId, model, input, output]);
    const row = r.rows[0];
    if (!row) throw new Error('model price upsert returned no row');
    const previous = before.rows[0];
    await recordChange(tx, deps, change, {
      projectId, action: 'model_price.update', resource: { type: 'model_price', id: model },
      details: {
        input_usd_per_million: row.input_usd_per_million, output_usd_per_million: row.output_usd_per_million,
        previous: previous ? { input_usd_per_million: previous.input, output_usd_per_million: previous.output } : null,
      },
    });
    return { ...row, source: 'project' };
  });
}
