// GET /v1/model_prices (defaults merged with overrides) and PUT /v1/model_prices/{model}: the
// upsert is validated, scoped to the project, and prices the very next ingested span.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver, makeKey, makeProject } from '../helpers.js';
import { av, getJson, ns, postSpans, traceId } from './otlp-json.js';

const r = await startTestReceiver();

async function put(key: string | undefined, model: string, body: unknown) {
  const res = await fetch(`${r.url}/v1/model_prices/${encodeURIComponent(model)}`, {
    method: 'PUT', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function costOfNewSpan(model: string): Promise<string | null> {
  const tid = traceId();
  await postSpans(r.url, r.key, 'pricing', [{
    traceId: tid, name: 'chat', startNs: ns('2024-08-01T00:00:00Z'),
    attrs: { 'gen_ai.request.model': av.s(model), 'gen_ai.usage.input_tokens': av.i(1000), 'gen_ai.usage.output_tokens': av.i(100) },
  }]);
  const s = await getJson(r.url, r.key, '/v1/spans', { trace_id: tid });
  return s.body.data[0].cost_usd;
}

test('GET lists the built-in prices as decimal strings, source "default"', async () => {
  const res = await getJson(r.url, r.key, '/v1/model_prices');
  assert.equal(res.status, 200);
  const defaults = await r.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM core.default_model_prices');
  assert.equal(res.body.data.length, defaults.rows[0]?.n);
  const gpt = res.body.data.find((p: any) => p.model === 'gpt-4o');
  assert.deepEqual(gpt, { model: 'gpt-4o', input_usd_per_million: '2.5', output_usd_per_million: '10', source: 'default', updated_at: null });
  assert.ok(res.body.data.every((p: any) => p.source === 'default'));
  const names = res.body.data.map((p: any) => p.model);
  assert.deepEqual(names, [...names].sort(), 'sorted by model');
});

test('PUT overrides a price for this project only and the next span is priced with it', async () => {
  assert.equal(await costOfNewSpan('gpt-4o'), '0.0035', 'default price (and the ingest cache is warm)');
  const writer = await makeKey(r.pool, ['policies:write']);
  const res = await put(writer, 'gpt-4o', { input_usd_per_million: 5, output_usd_per_million: '20.5' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.model, 'gpt-4o');
  assert.equal(res.body.input_usd_per_million, '5');
  assert.equal(res.body.output_usd_per_million, '20.5');
  assert.equal(res.body.source, 'project');
  assert.ok(!Number.isNaN(Date.parse(res.body.updated_at)));
  // 1000 × 5 + 100 × 20.5 per million: the cached default price was invalidated.
  assert.equal(await costOfNewSpan('gpt-4o'), '0.00705');

  const list = (await getJson(r.url, r.key, '/v1/model_prices')).body.data;
  const gpt = list.filter((p: any) => p.model === 'gpt-4o');
  assert.equal(gpt.length, 1, 'the override replaces the default in the merged list');
  assert.equal(gpt[0].source, 'project');
  assert.equal(gpt[0].input_usd_per_million, '5');

  // Upsert again: replaced, not duplicated.
  assert.equal((await put(writer, 'gpt-4o', { input_usd_per_million: '0.000001', output_usd_per_million: 0 })).status, 200);
  const again = (await getJson(r.url, r.key, '/v1/model_prices')).body.data.filter((p: any) => p.model === 'gpt-4o');
  assert.deepEqual([again.length, again[0].input_usd_per_million, again[0].output_usd_per_million], [1, '0.000001', '0']);

  // Each PUT is audited with the price it replaced.
  const audited = await r.pool.query<{ action: string; resource_id: string; details: any }>(
    `SELECT action, resource_id, details FROM audit.events WHERE action = 'model_price.update' ORDER BY sequence_no`);
  assert.deepEqual(audited.rows.map((a) => [a.resource_id, a.details.input_usd_per_million, a.details.previous?.input_usd_per_million ?? null]),
    [['gpt-4o', '5', null], ['gpt-4o', '0.000001', '5']]);

  // A new model (names are case-insensitive, stored lowercase) is priced at ingest too.
  const created = await put(writer, 'Acme/Model-X', { input_usd_per_million: 100, output_usd_per_million: 1000 });
  assert.equal(created.status, 200);
  assert.equal(created.body.model, 'acme/model-x');
  assert.equal(await costOfNewSpan('ACME/Model-X'), '0.2');

  // Another project still sees the defaults.
  const other = await makeKey(r.pool, ['traces:read'], await makeProject(r.pool));
  const otherList = (await getJson(r.url, other, '/v1/model_prices')).body.data;
  assert.equal(otherList.find((p: any) => p.model === 'gpt-4o').source, 'default');
  assert.ok(!otherList.some((p: any) => p.model === 'acme/model-x'));
});

test('PUT validation: numbers or decimal strings ≥ 0, both fields, at most 6 decimals', async () => {
  const cases: [unknown, (string | number)[]][] = [
    [{ input_usd_per_million: -1, output_usd_per_million: 1 }, ['body', 'input_usd_per_million']],
    [{ input_usd_per_million: '1', output_usd_per_million: '-0.5' }, ['body', 'output_usd_per_million']],
    [{ input_usd_per_million: 'cheap', output_usd_per_million: 1 }, ['body', 'input_usd_per_million']],
    [{ input_usd_per_million: 1 }, ['body', 'output_usd_per_million']],
    [{ input_usd_per_million: true, output_usd_per_million: 1 }, ['body', 'input_usd_per_million']],
    [{ input_usd_per_million: '0.0000001', output_usd_per_million: 1 }, ['body', 'input_usd_per_million']],
    [{ input_usd_per_million: 1e15, output_usd_per_million: 1 }, ['body', 'input_usd_per_million']],
    [[1, 2], ['body']],
  ];
  for (const [body, loc] of cases) {
    const res = await put(r.key, 'gpt-4o-mini', body);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.deepEqual(res.body.detail[0].loc, loc, JSON.stringify(body));
  }
  for (const model of ['x'.repeat(201), 'a\u0000b']) {
    const res = await put(r.key, model, { input_usd_per_million: 1, output_usd_per_million: 1 });
    assert.equal(res.status, 422);
    assert.deepEqual(res.body.detail[0].loc, ['path', 'model']);
  }
  const stored = await r.pool.query(`SELECT 1 FROM core.model_prices WHERE model = 'gpt-4o-mini'`);
  assert.equal(stored.rowCount, 0, 'nothing stored by a refused request');
});

test('PUT needs policies:write, GET needs traces:read, both need a key', async () => {
  const reader = await makeKey(r.pool, ['traces:read']);
  const writer = await makeKey(r.pool, ['policies:write']);
  const denied = await put(reader, 'gpt-4o', { input_usd_per_million: 1, output_usd_per_million: 1 });
  assert.equal(denied.status, 403);
  assert.deepEqual(denied.body, { detail: 'missing required scope: policies:write' });
  assert.equal((await put(undefined, 'gpt-4o', { input_usd_per_million: 1, output_usd_per_million: 1 })).status, 401);
  assert.equal((await getJson(r.url, writer, '/v1/model_prices')).status, 403);
  assert.equal((await getJson(r.url, reader, '/v1/model_prices')).status, 200);
});
