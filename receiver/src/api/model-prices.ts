// GET /v1/model_prices (defaults merged with project overrides) · PUT /v1/model_prices/{model}.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { Unprocessable } from '../errors.js';
import { effectivePrices, upsertProjectPrice, type PriceRow } from '../query/model-prices.js';
import { principalOf } from './app.js';
import { accessDeps, changeContext } from './keys.js';
import { scope, type Route } from './routes.js';
import { money } from './serialize.js';

const MAX_MODEL_NAME = 200;

function priceJson(p: PriceRow) {
  return {
    model: p.model,
    input_usd_per_million: money(p.input_usd_per_million),
    output_usd_per_million: money(p.output_usd_per_million),
    source: p.source,
    updated_at: p.updated_at ? p.updated_at.toISOString() : null,
  };
}

/** A price from JSON (number or decimal string), ≥ 0, fitting numeric(20,6) without rounding. */
export function parsePrice(v: unknown, field: string): string {
  const loc = ['body', field];
  if (v === undefined || v === null) throw new Unprocessable(`${field} is required`, loc, 'missing');
  let s: string;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Unprocessable(`${field} must be a finite number`, loc, 'decimal_parsing');
    s = /e/i.test(String(v)) ? v.toFixed(20).replace(/0+$/, '').replace(/\.$/, '') : String(v);
  } else if (typeof v === 'string') {
    s = v.trim();
  } else {
    throw new Unprocessable(`${field} must be a number or a decimal string`, loc, 'decimal_parsing');
  }
  if (/^-\d*\.?\d+$/.test(s) && Number(s) !== 0) throw new Unprocessable(`${field} must be greater than or equal to 0`, loc, 'greater_than_equal');
  if (s.startsWith('-')) s = s.slice(1);
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) throw new Unprocessable(`${field} must be a non-negative decimal number`, loc, 'decimal_parsing');
  const [, int = '', frac = ''] = m;
  if (int.replace(/^0+/, '').length > 14) throw new Unprocessable(`${field} must be less than 100000000000000`, loc, 'less_than');
  if (frac.replace(/0+$/, '').length > 6) throw new Unprocessable(`${field} allows at most 6 decimal places`, loc, 'decimal_max_places');
  return s;
}

export function modelPriceRoutes(ctx: ReceiverContext): Route[] {
  const list = async (_req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    res.json({ data: (await effectivePrices(ctx.db, projectId)).map(priceJson) });
  };

  const put = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    // Lowercased: ingest looks prices up case-insensitively, so "GPT-4o" and "gpt-4o" are one model.
    const model = String(req.params.model ?? '').trim().toLowerCase();
    if (model === '' || model.length > MAX_MODEL_NAME || model.includes('\u0000')) {
      throw new Unprocessable(`model must be 1 to ${MAX_MODEL_NAME} characters, without NUL`, ['path', 'model']);
    }
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Unprocessable('body must be a JSON object', ['body'], 'model_type');
    const b = body as Record<string, unknown>;
    const input = parsePrice(b.input_usd_per_million, 'input_usd_per_million');
    const output = parsePrice(b.output_usd_per_million, 'output_usd_per_million');
    const row = await upsertProjectPrice(accessDeps(ctx), changeContext(ctx, req, res), model, input, output);
    // This replica prices the next span with the new value at once; others within the cache TTL.
    ctx.ingest.prices.invalidate(projectId);
    res.json(priceJson(row));
  };

  return [
    { method: 'GET', path: '/v1/model_prices', auth: scope('traces:read'), body: 'none', handler: list },
    { method: 'PUT', path: '/v1/model_prices/:model', auth: scope('policies:write'), body: 'json', handler: put },
  ];
}
