// Rate limit keyed on the credential (not the raw header), client IP from X-Forwarded-For only
// behind a trusted proxy; sampling by trace id counted, never an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver, makeKey, hex } from '../helpers.js';

const body = (traceId = hex(16)) => JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: hex(8), name: 'r', startTimeUnixNano: '1700000000000000000' }] }] }] });

async function post(url: string, headers: Record<string, string>, b = body()) {
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: b });
  await res.arrayBuffer();
  return res;
}

test('bucket per credential: the same key in either header shares a bucket, another key does not', async () => {
  const r = await startTestReceiver({ STRATHON_RATE_LIMIT_BURST: '2', STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND: '1' });
  const other = await makeKey(r.pool, ['traces:write']);
  assert.equal((await post(r.url, { authorization: `Bearer ${r.key}` })).status, 200);
  const second = await post(r.url, { 'x-api-key': r.key });
  assert.equal(second.status, 200);
  assert.equal(second.headers.get('x-ratelimit-limit'), '2');
  assert.equal(second.headers.get('x-ratelimit-remaining'), '0');
  const limited = await post(r.url, { authorization: `bearer   ${r.key}` });
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal((await post(r.url, { 'x-api-key': other })).status, 200, 'another credential has its own bucket');
  assert.equal((await fetch(`${r.url}/health`)).status, 200, 'health endpoints are exempt');
  assert.equal((await fetch(`${r.url}/ready`)).status, 200);
});

test('anonymous callers are limited by client IP; X-Forwarded-For counts only from a trusted proxy', async () => {
  const untrusted = await startTestReceiver({ STRATHON_RATE_LIMIT_BURST: '1', STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND: '1' });
  assert.equal((await post(untrusted.url, { 'x-forwarded-for': '1.1.1.1' })).status, 401);
  assert.equal((await post(untrusted.url, { 'x-forwarded-for': '2.2.2.2' })).status, 429, 'spoofed XFF ignored: same peer, same bucket');

  const trusted = await startTestReceiver({ STRATHON_RATE_LIMIT_BURST: '1', STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND: '1', STRATHON_TRUSTED_PROXIES: '127.0.0.1/32' });
  assert.equal((await post(trusted.url, { 'x-forwarded-for': '1.1.1.1' })).status, 401);
  assert.equal((await post(trusted.url, { 'x-forwarded-for': '2.2.2.2, 10.0.0.1' })).status, 401, 'leftmost XFF entry is the client');
  assert.equal((await post(trusted.url, { 'x-forwarded-for': '1.1.1.1' })).status, 429);
});

test('sampling drops whole traces by trace id, counts them, and is not an error', async () => {
  const r = await startTestReceiver({ STRATHON_SAMPLING_RATE: '0.5' });
  const traces = Array.from({ length: 40 }, () => hex(16));
  const spans = traces.flatMap((t) => [0, 1].map(() => ({ traceId: t, spanId: hex(8), name: 's', startTimeUnixNano: '1700000000000000000' })));
  const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': r.key }, body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {}, 'sampled-out spans are not rejections');
  const q = await r.pool.query(`SELECT encode(trace_id,'hex') t, count(*)::int n FROM telemetry.spans GROUP BY 1`);
  const kept = new Map(q.rows.map((x: { t: string; n: number }) => [x.t, x.n]));
  for (const n of kept.values()) assert.equal(n, 2, 'a trace is kept whole');
  assert.ok(kept.size > 5 && kept.size < 35, `about half kept (${kept.size}/40)`);
  const { keepTrace } = await import('../../src/ingest/sampling.js');
  for (const t of traces) assert.equal(kept.has(t), keepTrace(t, 0.5), 'decision is the pure function every replica computes');
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  const m = /strathon_spans_sampled_out_total (\d+)/.exec(metrics);
  assert.equal(Number(m?.[1]), 80 - kept.size * 2);
});
