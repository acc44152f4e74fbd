// Pure parts (escaping, waterfall layout, formats, configuration) and the dashboard's answers to a
// receiver that lacks a feature, fails, or is gone — against a stub receiver, so every case is exact.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { html, escapeHtml } from '../src/http/html.js';
import { waterfall } from '../src/waterfall.js';
import { fmtDuration, fmtInt, fmtUsd } from '../src/format.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startDashboard } from '../src/server.js';
import { silentLogger } from '../src/log.js';
import { Client } from './support.js';

test('html`` escapes every interpolated value once; Html and arrays compose', () => {
  const evil = `<script>alert("x")</script>&'`;
  assert.equal(html`<p title="${evil}">${evil}</p>`.value,
    '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>');
  const inner = html`<b>${'a<b'}</b>`;
  assert.equal(html`<i>${inner}${[inner, 'x>y', null, undefined, false, 0]}</i>`.value, '<i><b>a&lt;b</b><b>a&lt;b</b>x&gt;y0</i>');
  assert.equal(escapeHtml('"\'&<>'), '&quot;&#39;&amp;&lt;&gt;');
});

const span = (id: string, parent: string | null, startMs: number, endMs: number) => ({
  span_id: id, parent_span_id: parent, name: id, start_time_unix_nano: String(1_700_000_000_000_000_000n + BigInt(startMs) * 1_000_000n),
  end_time_unix_nano: String(1_700_000_000_000_000_000n + BigInt(endMs) * 1_000_000n),
});

test('waterfall: depth-first from the roots, children by start time, offsets on the trace axis', () => {
  const spans = [span('d', 'a', 50, 80), span('c', 'b', 20, 40), span('a', null, 0, 100), span('b', 'a', 10, 45), span('e', 'b', 15, 16)];
  const { rows, totalMs } = waterfall(spans);
  assert.deepEqual(rows.map((r) => [r.span.span_id, r.depth]), [['a', 0], ['b', 1], ['e', 2], ['c', 2], ['d', 1]]);
  assert.equal(totalMs, 100);
  assert.deepEqual(rows.map((r) => [r.offsetMs, r.durationMs]), [[0, 100], [10, 35], [15, 1], [20, 20], [50, 30]]);
});

test('waterfall: orphans become roots, a parent cycle is shown once, nothing is lost', () => {
  const { rows } = waterfall([span('root', null, 0, 10), span('orphan', 'missing', 5, 6), span('x', 'y', 7, 8), span('y', 'x', 8, 9), span('self', 'self', 9, 9)]);
  assert.deepEqual(rows.map((r) => [r.span.span_id, r.depth]), [['root', 0], ['orphan', 0], ['self', 0], ['x', 0], ['y', 1]]);
  assert.equal(new Set(rows.map((r) => r.span.span_id)).size, 5);
  assert.deepEqual(waterfall([]), { rows: [], totalMs: 0 });
});

test('formats: exact int64, money never rounded to zero, durations', () => {
  assert.equal(fmtInt('9007199254740993123'), '9,007,199,254,740,993,123');
  assert.equal(fmtInt(null), '–');
  assert.equal(fmtUsd('0.0000123'), '$0.000012');
  assert.equal(fmtUsd('0.00000001'), '<$0.000001');
  assert.equal(fmtUsd('12.5'), '$12.5');
  assert.equal(fmtUsd('0'), '$0');
  assert.equal(fmtDuration(0), '0 ms');
  assert.equal(fmtDuration(0.25), '250 µs');
  assert.equal(fmtDuration(1234), '1.23 s');
  assert.equal(fmtDuration(125_000), '2 min 5 s');
});

test('configuration: where the read-only connection comes from, secrets from files, clear errors', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dash-cfg-'));
  assert.deepEqual(loadConfig({ STRATHON_DATA_DIR: dir }).database, { kind: 'embedded', passwordFile: path.join(dir, 'pg-password'), port: 5433, database: 'strathon' });
  assert.deepEqual(loadConfig({ DATABASE_URL: 'postgres://o:p@h/db' }).database, { kind: 'derived', url: 'postgres://o:p@h/db' });
  assert.deepEqual(loadConfig({ DASHBOARD_DATABASE_URL: 'postgres://strathon_dashboard:x@h/db', DATABASE_URL: 'postgres://o:p@h/db' }).database,
    { kind: 'dedicated', url: 'postgres://strathon_dashboard:x@h/db', provisionWith: 'postgres://o:p@h/db' });
  const file = path.join(dir, 'url');
  writeFileSync(file, 'postgres://strathon_dashboard:f@h/db\n');
  assert.deepEqual(loadConfig({ DASHBOARD_DATABASE_URL_FILE: file }).database, { kind: 'dedicated', url: 'postgres://strathon_dashboard:f@h/db' });
  const c = loadConfig({ STRATHON_ENV: 'production', STRATHON_RECEIVER_URL: 'http://receiver:4318/', DASHBOARD_PORT: '3001' });
  assert.equal(c.cookieSecure, true);
  assert.equal(c.receiverUrl, 'http://receiver:4318');
  assert.equal(c.port, 3001);
  assert.throws(() => loadConfig({ DASHBOARD_DATABASE_URL: 'postgres://a@b/c', DASHBOARD_DATABASE_URL_FILE: file, DASHBOARD_PORT: 'x', DASHBOARD_TRUSTED_PROXIES: '0.0.0.0/0' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 3, err.message);
    assert.ok(!err.message.includes('postgres://a@b/c'), 'no secret in the message');
    return true;
  });
});

// ---- a stub receiver --------------------------------------------------------------------------------

type Answer = { status: number; body: unknown };
const answers = new Map<string, Answer>();
const noRoute = (method: string, p: string): Answer => ({ status: 404, body: { detail: `no route for ${method} ${p}` } });
const stub = http.createServer((req, res) => {
  const p = (req.url ?? '/').split('?')[0] as string;
  const a = answers.get(`${req.method} ${p}`) ?? (p === '/v1/me'
    ? { status: 200, body: { kind: 'user', id: '11111111-1111-1111-1111-111111111111', email: 'v@example.com', display_name: null, project_id: '00000000-0000-0000-0000-000000000001', role: 'admin', scopes: [] } }
    : p === '/ready' ? { status: 200, body: { status: 'ready', checks: {} } } : noRoute(req.method ?? 'GET', p));
  res.statusCode = a.status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(a.body));
});
await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
after(() => new Promise<void>((r) => stub.close(() => r())));
const base = { ...loadConfig({}), host: '127.0.0.1', port: 0, database: { kind: 'none' } as const };
const d = await startDashboard({ config: { ...base, receiverUrl: `http://127.0.0.1:${(stub.address() as AddressInfo).port}` }, log: silentLogger });
after(() => d.close());

function signedIn(): Client {
  const c = new Client(d.url);
  c.jar.set('strathon_session', 'stub-session-token');
  return c;
}

test('a page whose API this receiver lacks says "not available in this version" and still renders', async () => {
  const c = signedIn();
  for (const p of ['/halts', '/budgets', '/policies', '/webhooks', '/agents', '/traces', '/keys', '/members', '/audit']) {
    const res = await c.get(p);
    assert.equal(res.status, 200, p);
    assert.match(res.text, /class="notice notice-unavailable" role="status"><p>Not available in this version of the receiver\.<\/p>/, p);
    assert.doesNotMatch(res.text, /at .+\.(js|ts):\d+/, `${p}: no stack trace`);
  }
  const overview = await c.get('/');
  assert.equal(overview.status, 200);
  assert.match(overview.text, /Not available in this version of the receiver/, 'halts and budgets sections');
  assert.match(overview.text, /Not shown: no database is configured for the dashboard/, 'database sections fail alone');
  // A form whose API is missing: the same sentence, after the redirect.
  const csrf = Client.csrfOf((await c.get('/halts')).text);
  const post = await c.post('/halts/7/resolve', { csrf });
  assert.equal(post.status, 303);
  assert.match((await c.get('/halts')).text, /role="alert"><p>Not available in this version of the receiver\.<\/p>/);
});

test('receiver failures are readable sentences; 401 → sign-in; password change and project choice redirect', async () => {
  const c = signedIn();
  answers.set('GET /v1/traces', { status: 500, body: { error: { code: 'internal', message: 'internal error', request_id: 'req-42' } } });
  let res = await c.get('/traces');
  assert.equal(res.status, 200);
  assert.match(res.text, /The receiver is unavailable: the receiver failed \(internal error; request id req-42\)\./);
  answers.set('GET /v1/traces', { status: 422, body: { detail: [{ loc: ['query', 'min_cost_usd'], msg: 'min_cost_usd must be a non-negative decimal number', type: 'decimal_parsing' }] } });
  assert.match((await c.get('/traces?min_cost=abc')).text, /min_cost_usd: min_cost_usd must be a non-negative decimal number\./);
  answers.set('GET /v1/traces', { status: 403, body: { detail: 'requires role operator' } });
  assert.match((await c.get('/traces')).text, /Not allowed: requires role operator\./);
  answers.delete('GET /v1/traces');

  answers.set('GET /v1/me', { status: 403, body: { detail: 'password change required: POST /v1/auth/change-password' } });
  res = await c.get('/audit');
  assert.equal(res.status, 302);
  assert.equal(res.location, '/account/password');
  answers.set('GET /v1/me', { status: 400, body: { detail: 'X-Project-Id required' } });
  res = await c.get('/audit');
  assert.equal(res.location, '/projects');
  answers.set('GET /v1/me', { status: 401, body: { detail: 'token expired' } });
  res = await c.get('/audit');
  assert.equal(res.location, '/login?expired=1&next=%2Faudit');
  answers.delete('GET /v1/me');
});

test('a receiver that is down: a 503 page with the reason, not a stack trace', async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const gone = await startDashboard({ config: { ...base, receiverUrl: `http://127.0.0.1:${port}` }, log: silentLogger });
  try {
    const c = new Client(gone.url);
    c.jar.set('strathon_session', 'x');
    const res = await c.get('/');
    assert.equal(res.status, 503);
    assert.match(res.text, /could not be reached \(ECONNREFUSED\)/);
    assert.match(res.text, /<h1>Receiver unavailable<\/h1>/);
    const login = await c.get('/login');
    assert.equal(login.status, 200, 'the sign-in form itself still renders');
    const post = await c.post('/login', { csrf: Client.csrfOf(login.text), email: 'a@b.c', password: 'x' });
    assert.equal(post.status, 400);
    assert.match(post.text, /The receiver is unavailable: the receiver at http:\/\/127\.0\.0\.1:\d+ could not be reached \(ECONNREFUSED\)/);
  } finally {
    await gone.close();
  }
});

test('unknown pages are 404, wrong methods 405, /health answers for the container healthcheck', async () => {
  const c = new Client(d.url);
  assert.equal((await c.get('/nope')).status, 404);
  const wrong = await c.post('/traces', {});
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'GET');
  const health = await c.get('/health');
  assert.deepEqual(JSON.parse(health.text), { status: 'ok', service: 'strathon-dashboard' });
  const big = await c.post('/login', { csrf: 'x', pad: 'y'.repeat(70_000) });
  assert.equal(big.status, 413);
});

test('trace detail: each distinct resource is shown once, and every span names its resource', async () => {
  const traceId = 'ab'.repeat(16);
  const resA = { 'service.name': 'svc-a', 'host.name': 'host-<1>' };
  const resB = { 'service.name': 'svc-b', 'host.name': 'host-2' };
  const apiSpan = (id: string, parent: string | null, attrs: Record<string, unknown>, startMs: number) => ({
    ...span(id, parent, startMs, startMs + 10), span_id: id, trace_id: traceId, kind: 'INTERNAL', start_time: new Date(1_700_000_000_000 + startMs).toISOString(),
    end_time: new Date(1_700_000_000_010 + startMs).toISOString(), duration_ms: 10, status_code: 'OK', status_message: null, service_name: String(attrs['service.name']),
    agent_name: null, tool_name: null, request_model: null, is_llm: false, is_tool: false, input_tokens: null, output_tokens: null, cost_usd: '0',
    attributes: { step: id }, resource: { attributes: attrs }, scope: { name: 'unit', version: null }, events: [], links: [],
  });
  answers.set(`GET /v1/traces/${traceId}`, {
    status: 200,
    body: {
      trace: { trace_id: traceId, start_time: new Date(1_700_000_000_000).toISOString(), end_time: new Date(1_700_000_000_040).toISOString(), duration_ms: 40, agent_name: null, root_name: 'root', service_name: 'svc-a', span_count: 3, error_count: 0, status: 'ok', input_tokens: 0, output_tokens: 0, total_cost_usd: '0' },
      spans: [apiSpan('1111111111111111', null, resA, 0), apiSpan('2222222222222222', '1111111111111111', resB, 5), apiSpan('3333333333333333', '1111111111111111', { ...resA }, 20)],
    },
  });
  try {
    const res = await signedIn().get(`/traces/${traceId}`);
    assert.equal(res.status, 200);
    const resources = res.text.slice(res.text.indexOf('<h2 id="h-resources">'));
    assert.equal(resources.match(/<table class="kv"><caption>Resource \d attributes<\/caption>/g)?.length, 2, 'two distinct resources, each once');
    assert.match(resources, /id="resource-1"><table class="kv"><caption>Resource 1 attributes<\/caption><tbody><tr><td><code>host\.name<\/code><\/td><td>host-&lt;1&gt;<\/td>/);
    assert.match(resources, /id="resource-2">[^]*svc-b/);
    assert.equal(res.text.match(/host-&lt;1&gt;/g)?.length, 1, 'resource attributes are not repeated per span');
    const resourceOf = (id: string) => new RegExp(`<details class="span" id="span-${id}">[^]*?Resource: <a href="#resource-(\\d)">`).exec(res.text)?.[1];
    assert.deepEqual(['1111111111111111', '2222222222222222', '3333333333333333'].map(resourceOf), ['1', '2', '1']);
  } finally {
    answers.delete(`GET /v1/traces/${traceId}`);
  }
});
