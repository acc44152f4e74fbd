// Helpers of bench/sync.mjs and bench/policies.mjs: a keep-alive JSON client timed to the last body
// byte, OTLP/JSON spans from many named agents, and closed-loop concurrent request runners.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { onCleanup } from './proc.mjs';
import { percentile } from './report.mjs';

/** Another project in the default project's organization, with a `*` key; returns { id, key }. */
export async function addProject(db, slug, createApiKey, defaultProjectId) {
  const id = (await db.query(
    `INSERT INTO core.projects (organization_id, name, slug) SELECT organization_id, $2, $2 FROM core.projects WHERE id = $1 RETURNING id`,
    [defaultProjectId, slug])).rows[0].id;
  const { key } = await createApiKey(db, { projectId: id, name: 'bench-admin', scopes: ['*'] });
  return { id, key };
}

/** One kept-alive connection (an SDK's session): `send(method, path, body?)` → { status, ms, body }. */
export function jsonClient(baseUrl, key) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  onCleanup(() => agent.destroy());
  return (method, path, body) => new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { authorization: `Bearer ${key}`, accept: 'application/json' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
    const t0 = performance.now();
    const req = http.request(`${baseUrl}${path}`, { method, agent, headers, timeout: 30_000 }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode, ms, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** An OTLP/JSON export request: one span per agent name (gen_ai.agent.name), all started a second ago. */
export function agentSpansRequest(service, agents) {
  const start = BigInt(Date.now() - 1000) * 1_000_000n;
  const spans = agents.map((agent) => ({
    traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), name: `${agent}.step`, kind: 1,
    startTimeUnixNano: start.toString(), endTimeUnixNano: (start + 5_000_000n).toString(),
    attributes: [{ key: 'gen_ai.agent.name', value: { stringValue: agent } }, { key: 'gen_ai.operation.name', value: { stringValue: 'invoke_agent' } }],
  }));
  return { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'bench' }, spans }] }] };
}

/**
 * `clients` concurrent closed loops, each calling `once(client, i)` `perClient` times (after
 * `warmup` untimed calls); `once` returns { ms, kind }. Latencies are grouped by kind.
 */
export async function concurrentLoops({ clients, perClient, warmup, once }) {
  const byKind = new Map();
  const loop = async (c) => {
    for (let i = 0; i < warmup; i++) await once(c, i);
    for (let i = 0; i < perClient; i++) {
      const { ms, kind } = await once(c, i);
      if (!byKind.has(kind)) byKind.set(kind, []);
      byKind.get(kind).push(ms);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
  return { byKind, seconds: (performance.now() - t0) / 1000 };
}

export function latencyStats(ms) {
  return { n: ms.length, p50: percentile(ms, 50), p95: percentile(ms, 95), p99: percentile(ms, 99) };
}
