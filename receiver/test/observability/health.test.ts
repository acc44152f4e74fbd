// /health, /ready (bounded even when Postgres hangs), /metrics, security headers, request ids, logs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestReceiver, createTestDatabase, memoryLogger, testConfig, hex } from '../helpers.js';
import { startReceiver } from '../../src/receiver.js';
import { startTcpProxy } from '../tcp-proxy.js';
import { freePort } from '../../src/db/embedded.js';

const r = await startTestReceiver({ STRATHON_LOG_LEVEL: 'debug' });

test('/health is liveness only, with Strathon shape', async () => {
  const res = await fetch(`${r.url}/health`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body.status, 'ok');
  assert.equal(body.service, 'strathon-receiver');
  assert.equal(typeof body.version, 'string');
  assert.equal(typeof body.uptime_s, 'number');
});

test('/ready lists db, migrations and partitions checks', async () => {
  const res = await fetch(`${r.url}/ready`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { status: string; checks: Record<string, Record<string, unknown>> };
  assert.equal(body.status, 'ready');
  assert.equal(body.checks.db?.status, 'ok');
  assert.equal(typeof body.checks.db?.latency_ms, 'number');
  assert.equal(body.checks.migrations?.status, 'ok');
  assert.equal(body.checks.migrations?.current, body.checks.migrations?.head);
  assert.equal(body.checks.partitions?.status, 'ok');
  const now = new Date();
  assert.equal(body.checks.partitions?.current_partition, `spans_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`);
});

test('/ready fails the partitions check when this month\'s partition is missing', async () => {
  const url = await createTestDatabase();
  const { log } = memoryLogger('error');
  const r2 = await startReceiver(testConfig(url), log);
  try {
    const now = new Date();
    const name = `spans_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    await r2.pool.query(`ALTER TABLE telemetry.spans DETACH PARTITION telemetry.${name}`);
    const res = await fetch(`${r2.url}/ready`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: { partitions: { status: string; reason: string } } };
    assert.equal(body.checks.partitions.status, 'failed');
    assert.match(body.checks.partitions.reason, /missing/);
  } finally {
    await r2.close();
  }
});

test('/ready answers within 1 s with the db reason when Postgres hangs; /health stays 200', async () => {
  const url = await createTestDatabase();
  const u = new URL(url);
  const proxy = await startTcpProxy(u.hostname, Number(u.port));
  const { log } = memoryLogger('error');
  const r2 = await startReceiver(testConfig(proxy.url(url)), log);
  try {
    assert.equal((await fetch(`${r2.url}/ready`)).status, 200);
    proxy.set('hang');
    const t0 = performance.now();
    const res = await fetch(`${r2.url}/ready`);
    const elapsed = performance.now() - t0;
    assert.equal(res.status, 503);
    assert.ok(elapsed < 1000, `answered in ${Math.round(elapsed)} ms`);
    const body = (await res.json()) as { status: string; checks: { db: { status: string; reason: string } } };
    assert.equal(body.status, 'not_ready');
    assert.equal(body.checks.db.status, 'failed');
    assert.match(body.checks.db.reason, /timed out/);
    assert.equal((await fetch(`${r2.url}/health`)).status, 200);
    proxy.set('up');
  } finally {
    proxy.set('down');
    await r2.close();
    await proxy.close();
  }
});

test('/metrics exposes Prometheus metrics for requests, spans and the queue', async () => {
  const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: hex(16), spanId: hex(8), name: 'm', startTimeUnixNano: '1700000000000000000' }, { traceId: 'zz', spanId: hex(8) }] }] }] });
  await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': r.key }, body });
  const res = await fetch(`${r.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  for (const name of ['strathon_http_requests_total', 'strathon_http_request_duration_seconds', 'strathon_spans_accepted_total', 'strathon_spans_rejected_total',
    'strathon_spans_sampled_out_total', 'strathon_ingest_queue_spans', 'strathon_ingest_queue_bytes', 'strathon_ingest_batch_spans', 'strathon_ingest_commit_duration_seconds',
    'strathon_db_pool_connections', 'strathon_process_cpu_seconds_total']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} present`);
  }
  assert.match(text, /strathon_spans_accepted_total\{protocol="otlp"\} [1-9]/);
  assert.match(text, /strathon_spans_rejected_total\{reason="[^"]+"\} 1/);
  assert.match(text, /strathon_http_requests_total\{route="\/v1\/traces",method="POST",status="200"\}/);
});

test('security headers on every response, no X-Powered-By, X-Request-Id echoed or generated', async () => {
  for (const [path, init] of [['/health', {}], ['/nope', {}], ['/v1/traces', { method: 'POST' }]] as const) {
    const res = await fetch(`${r.url}${path}`, { ...init, headers: { 'x-request-id': 'req-123' } });
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    assert.equal(res.headers.get('referrer-policy'), 'strict-origin-when-cross-origin', path);
    assert.equal(res.headers.get('cache-control'), 'no-store', path);
    assert.equal(res.headers.get('x-powered-by'), null, path);
    assert.equal(res.headers.get('x-request-id'), 'req-123', path);
  }
  const gen = await fetch(`${r.url}/health`, { headers: { 'x-request-id': 'bad id with spaces' } });
  assert.match(gen.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  const nf = await fetch(`${r.url}/nope`);
  assert.equal(nf.status, 404);
  assert.deepEqual(await nf.json(), { detail: 'no route for GET /nope' });
});

test('the logger redacts credentials by its own configuration', async () => {
  const before = r.lines.length;
  const { log, lines } = memoryLogger('debug');
  log.info({ req: { headers: { authorization: `Bearer ${r.key}`, cookie: 'strathon_session=abc', 'x-api-key': r.key } }, password: 'hunter2', token: 't0k3n' }, 'request');
  const line = lines.join('');
  assert.ok(!line.includes(r.key), 'API key redacted');
  assert.ok(!line.includes('hunter2'));
  assert.ok(!line.includes('t0k3n'));
  assert.ok(!line.includes('strathon_session=abc'));
  assert.match(line, /\[REDACTED\]/);
  // The receiver's own request logs never carry the key either.
  assert.ok(!r.lines.slice(before).join('').includes(r.key));
});

test('STRATHON_METRICS_LISTEN serves /metrics on its own listener instead of the main port', async () => {
  const url = await createTestDatabase();
  const port = await freePort();
  const { log } = memoryLogger('error');
  const r2 = await startReceiver(testConfig(url, { STRATHON_METRICS_LISTEN: `127.0.0.1:${port}` }), log);
  try {
    assert.equal((await fetch(`${r2.url}/metrics`)).status, 404);
    const m = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /strathon_http_requests_total/);
  } finally {
    await r2.close();
  }
});

void pg;
