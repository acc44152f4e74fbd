// Helpers of bench/dashboard.mjs: the real dashboard as its own process, a signed-in browser-like
// client (cookie jar, one kept-alive connection, time to the last body byte), the receiver calls
// a page corresponds to, and the fixtures every page shows (budgets, halts, keys, a big trace …).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { URLSearchParams } from 'node:url';
import { freePort } from '../../receiver/dist/db/embedded.js';
import { onCleanup, sleep, spawnNode, stopChild } from './proc.mjs';
import { ROOT } from './report.mjs';

export const DASHBOARD_MAIN = path.join(ROOT, 'dashboard', 'dist', 'server.js');
export const BENCH_PASSWORD = 'correct-horse-battery-staple-42';

/** GET/POST over one kept-alive connection with a cookie jar; each answer carries its time to the last byte. */
export function cookieClient(baseUrl, extraHeaders = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  onCleanup(() => agent.destroy());
  const jar = new Map();
  const send = (method, p, body, headers = {}) => new Promise((resolve, reject) => {
    const h = { ...extraHeaders, ...headers };
    if (jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const t0 = performance.now();
    const req = http.request(`${baseUrl}${p}`, { method, agent, headers: h, timeout: 30_000 }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        for (const c of res.headers['set-cookie'] ?? []) {
          const [pair] = c.split(';');
          const eq = pair.indexOf('=');
          const name = pair.slice(0, eq);
          const value = pair.slice(eq + 1);
          if (/Max-Age=0/i.test(c) || value === '') jar.delete(name);
          else jar.set(name, value);
        }
        const buf = Buffer.concat(parts);
        resolve({ status: res.statusCode, ms, bytes: buf.length, text: buf.toString('utf8'), headers: res.headers });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
  return {
    jar,
    get: (p, headers) => send('GET', p, undefined, headers),
    post: (p, form, headers) => send('POST', p, new URLSearchParams(form).toString(), { 'content-type': 'application/x-www-form-urlencoded', ...headers }),
    json: (method, p, body, headers) => send(method, p, body === undefined ? undefined : JSON.stringify(body), { 'content-type': 'application/json', accept: 'application/json', ...headers }),
  };
}

/** The dashboard process (`node dashboard/dist/server.js`) on 127.0.0.1, reading `databaseUrl` as strathon_dashboard. */
export async function spawnDashboard({ receiverUrl, databaseUrl, logPath, readyTimeoutMs = 30_000 }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnNode([DASHBOARD_MAIN], {
    cwd: tmpdir(), logPath,
    env: {
      ...process.env, DASHBOARD_HOST: '127.0.0.1', DASHBOARD_PORT: String(port), STRATHON_RECEIVER_URL: receiverUrl,
      DATABASE_URL: databaseUrl, DASHBOARD_DATABASE_URL: '', STRATHON_LOG_LEVEL: 'warn', STRATHON_ENV: 'development',
    },
  });
  const t0 = performance.now();
  while (performance.now() - t0 < readyTimeoutMs) {
    if (child.exitInfo) throw new Error(`dashboard exited before listening (${JSON.stringify(child.exitInfo)}); see ${logPath}`);
    try {
      if ((await fetch(`${url}/health`)).status === 200) return { child, pid: child.pid, url, port, stop: (graceMs) => stopChild(child, graceMs) };
    } catch {
      // not listening yet
    }
    await sleep(20);
  }
  await stopChild(child, 2000);
  throw new Error(`dashboard not listening within ${readyTimeoutMs} ms; see ${logPath}`);
}

/** Register the first user (owner of the default project) at the receiver; returns its session token. */
export async function registerOwner(receiverUrl) {
  const email = `bench-${randomBytes(4).toString('hex')}@example.com`;
  const res = await fetch(`${receiverUrl}/v1/auth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: BENCH_PASSWORD, display_name: 'Bench Owner' }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${JSON.stringify(body)}`);
  return { email, token: body.token };
}

/** Sign in through the dashboard's own login form; the client's jar then holds the session cookie. */
export async function dashboardLogin(client, email) {
  const form = await client.get('/login');
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)?.[1];
  if (!csrf) throw new Error(`GET /login: no CSRF field (HTTP ${form.status})`);
  const r = await client.post('/login', { csrf, email, password: BENCH_PASSWORD, next: '/' });
  if (r.status !== 303 && r.status !== 302) throw new Error(`POST /login: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  const home = await client.get('/');
  if (home.status !== 200) throw new Error(`GET / after login: HTTP ${home.status}`);
}

/** A receiver API caller with the user's session (what the dashboard sends), for the floors. */
export function apiCaller(receiverUrl, token) {
  const c = cookieClient(receiverUrl, { authorization: `Bearer ${token}`, accept: 'application/json' });
  const call = async (method, p, body) => {
    const r = await c.json(method, p, body);
    if (r.status >= 300) throw new Error(`${method} ${p}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    return { ...r, body: r.text ? JSON.parse(r.text) : null };
  };
  return { call, get: (p) => call('GET', p) };
}

const attr = (key, v) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: String(v) } });

/**
 * One big agent trace over OTLP/HTTP JSON: a root, `steps` agent steps under it, and under each step
 * `perStep` chat/tool spans (every 37th failing), so the waterfall has three levels. Returns its id.
 */
export async function sendBigTrace(receiverUrl, ingestKey, { steps = 50, perStep = 19, startMs = Date.now() - 3_600_000 } = {}) {
  const traceId = randomBytes(16).toString('hex');
  const id = () => randomBytes(8).toString('hex');
  const ns = (ms) => `${BigInt(Math.round(ms * 1000)) * 1000n}`;
  const rootId = id();
  const spans = [];
  const totalMs = steps * perStep * 120 + 100;
  spans.push({ traceId, spanId: rootId, name: 'invoke_agent big-agent', kind: 1, startTimeUnixNano: ns(startMs), endTimeUnixNano: ns(startMs + totalMs), attributes: [attr('gen_ai.operation.name', 'invoke_agent'), attr('gen_ai.agent.name', 'big-agent')], status: { code: 1 } });
  let n = 0;
  for (let s = 0; s < steps; s++) {
    const stepId = id();
    const s0 = startMs + 50 + s * perStep * 120;
    spans.push({ traceId, spanId: stepId, parentSpanId: rootId, name: `step ${s}`, kind: 1, startTimeUnixNano: ns(s0), endTimeUnixNano: ns(s0 + perStep * 120 - 10), attributes: [attr('gen_ai.agent.name', 'big-agent')], status: { code: 0 } });
    for (let k = 0; k < perStep; k++) {
      n++;
      const t = s0 + k * 120;
      const chat = k % 2 === 0;
      const failed = n % 37 === 0;
      spans.push({
        traceId, spanId: id(), parentSpanId: stepId, name: chat ? 'chat gpt-4o' : 'execute_tool web_search', kind: chat ? 3 : 1,
        startTimeUnixNano: ns(t), endTimeUnixNano: ns(t + 100),
        attributes: chat
          ? [attr('gen_ai.operation.name', 'chat'), attr('gen_ai.agent.name', 'big-agent'), attr('gen_ai.system', 'openai'), attr('gen_ai.request.model', 'gpt-4o'), attr('gen_ai.usage.input_tokens', 800 + k), attr('gen_ai.usage.output_tokens', 120 + k)]
          : [attr('gen_ai.operation.name', 'execute_tool'), attr('gen_ai.agent.name', 'big-agent'), attr('gen_ai.tool.name', 'web_search')],
        status: failed ? { code: 2, message: 'upstream timeout' } : { code: 0 },
      });
    }
  }
  for (let i = 0; i < spans.length; i += 250) {
    const body = { resourceSpans: [{ resource: { attributes: [attr('service.name', 'big-svc')] }, scopeSpans: [{ scope: { name: 'bench-dashboard' }, spans: spans.slice(i, i + 250) }] }] };
    const res = await fetch(`${receiverUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` }, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`POST /v1/traces (big trace): HTTP ${res.status} ${await res.text()}`);
  }
  return { traceId, spans: spans.length };
}

/** What the governance, keys, webhooks and members pages list: a few of each, created through the API. */
export async function createFixtures(api) {
  for (const [name, scope, scope_value, max] of [['daily cap', 'project', undefined, 500], ['research cap', 'agent', 'research-agent', 50], ['gpt-4o cap', 'model', 'gpt-4o', 80]]) {
    await api.call('POST', '/v1/budgets', { name, scope, ...(scope_value ? { scope_value } : {}), max_spend_usd: max, budget_duration: '1d' });
  }
  const halts = [];
  for (const agent_name of ['sql-agent', 'email-agent', 'audit-agent']) halts.push((await api.call('POST', '/v1/halts', { scope: 'agent', agent_name, reason: `bench halt of ${agent_name}` })).body.halt);
  await api.call('POST', `/v1/halts/${halts[0].id}/resolve`, {});
  await api.call('POST', '/v1/policies', { name: 'no email', match_expression: 'attrs["gen_ai.tool.name"] == "send_email"', action: 'block', priority: 5 });
  await api.call('POST', '/v1/policies', { name: 'shadow sql', match_expression: 'attrs["gen_ai.tool.name"] == "run_sql"', action: 'block', priority: 6, shadow: true });
  const keys = [];
  for (let i = 0; i < 5; i++) keys.push((await api.call('POST', '/v1/api_keys', { name: `bench key ${i}`, scopes: ['traces:write', 'traces:read'] })).body);
  await api.call('DELETE', `/v1/api_keys/${keys[4].id}`);
  const channel = (await api.call('POST', '/v1/notification-channels', { name: 'ops hook', url: 'https://hooks.example.com/strathon', events: ['budget.exceeded'] })).body;
  await api.call('POST', '/v1/members/invitations', { email: `invitee-${randomBytes(3).toString('hex')}@example.com`, role: 'viewer' });
  return { ingestKey: keys[0].key, channelId: channel.id };
}
