// Monthly partitions for spans, span events and links (the SQL function lives in the migration).
import type pg from 'pg';

export async function ensurePartitions(db: Pick<pg.Pool, 'query'>, monthsAhead: number): Promise<number> {
  const r = await db.query<{ created: number }>('SELECT telemetry.ensure_month_partitions($1) AS created', [monthsAhead]);
  return r.rows[0]?.created ?? 0;
}
