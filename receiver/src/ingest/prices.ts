// Per-project price tables (defaults + project overrides), cached briefly: pricing is read per
// span on the hot path, edits are rare and take effect within the TTL on every replica.
import type pg from 'pg';
import { priceLookupFrom, type Price, type PriceLookup } from './genai.js';

const TTL_MS = 30_000;

const micros = (s: string): bigint => {
  const [i = '0', f = ''] = s.split('.');
  return BigInt(i) * 1_000_000n + BigInt((f + '000000').slice(0, 6));
};

export class PriceBook {
  private cache = new Map<string, { at: number; lookup: PriceLookup }>();
  private loading = new Map<string, Promise<PriceLookup>>();

  constructor(private readonly pool: pg.Pool) {}

  async forProject(projectId: string): Promise<PriceLookup> {
    const hit = this.cache.get(projectId);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.lookup;
    let p = this.loading.get(projectId);
    if (!p) {
      p = this.load(projectId).finally(() => this.loading.delete(projectId));
      this.loading.set(projectId, p);
    }
    try {
      return await p;
    } catch (err) {
      if (hit) return hit.lookup; // stale prices beat refusing spans
      throw err;
    }
  }

  invalidate(projectId: string) {
    this.cache.delete(projectId);
  }

  private async load(projectId: string): Promise<PriceLookup> {
    const r = await this.pool.query<{ model: string; i: string; o: string }>(
      `SELECT model, input_usd_per_million::text AS i, output_usd_per_million::text AS o FROM core.default_model_prices
       WHERE model NOT IN (SELECT model FROM core.model_prices WHERE project_id = $1)
       UNION ALL
       SELECT model, input_usd_per_million::text, output_usd_per_million::text FROM core.model_prices WHERE project_id = $1`,
      [projectId],
    );
    const table = new Map<string, Price>();
    for (const row of r.rows) table.set(row.model.toLowerCase(), { inputMicros: micros(row.i), outputMicros: micros(row.o) });
    const lookup = priceLookupFrom(table);
    this.cache.set(projectId, { at: Date.now(), lookup });
    return lookup;
  }
}
