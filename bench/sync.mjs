// Issue 7 / SPEC §7.3, §8.2: POST /v1/intervention/sync latency, the call every agent makes once a
// second. 1 000 agents (each exists because it sent spans, as the product defines agents), 100 active
// agent halts, a project halt in a second project; a few concurrent SDK clients poll through the
// real receiver process. Bounds in the same run: the same lookup SQL sent straight to Postgres with
// the same concurrency, and the receiver's GET /health round trip (HTTP + auth-free floor).
import path from 'node:path';
import { rmSync } from 'node:fs';
import { createApiKey, DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { DEFAULT_DECIDED_WINDOW_SECONDS, interventionState } from '../receiver/dist/governance/sync.js';
import { connect, migrate, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter } from './lib/proc.mjs';
import { spawnReceiver } from './lib/receiver.mjs';
import { addProject, agentSpansRequest, concurrentLoops, jsonClient, latencyStats } from './lib/governance-data.mjs';
import { envSeconds, fmtInt, OUT, progress, table, writeResult } from './lib/report.mjs';

const AGENTS = 1000;
const HALTED = 100;
const CLIENTS = 4;
const PER_CLIENT = Math.round(envSeconds('BENCH_SYNC_REQUESTS', 1500));
const WARMUP = 50;
const TARGET_MS = 5;
const P = DEFAULT_PROJECT_ID;
const agentName = (i) => `agent-${String(i).padStart(4, '0')}`;
const ms2 = (n) => (Number.isFinite(n) ? `${n.toFixed(2)} ms` : 'n/a');
const x = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');

async function ok(reply, what) {
  const r = await reply;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`);
  return r.text ? JSON.parse(r.text) : undefined;
}

await benchMain(async () => {
  const server = await startPostgres('sync');
  const url = await server.createDatabase('sync');
  await migrate(url);
  const db = await connect(url);
  db.on('error', () => undefined);
  const admin = await createApiKey(db, { projectId: P, name: 'bench-admin', scopes: ['*'] });
  const sdk = await createApiKey(db, { projectId: P, name: 'bench-sdk', scopes: ['halts:read'] });
  // A second project with a project-scoped halt: every agent of it is halted by one row.
  const { id: other, key: otherAdminKey } = await addProject(db, 'bench-other', createApiKey, P);
  const otherSdk = await createApiKey(db, { projectId: other, name: 'bench-sdk', scopes: ['halts:read'] });

  const logPath = path.join(OUT, 'sync-receiver.log');
  rmSync(logPath, { force: true });
  const receiver = await spawnReceiver({ env: { DATABASE_URL: url }, logPath });
  const setup = jsonClient(receiver.url, admin.key);

  // 1. The agents: spans from 1 000 agent names (and 50 in the other project), then the halts.
  const names = Array.from({ length: AGENTS }, (_, i) => agentName(i));
  for (let i = 0; i < AGENTS; i += 250) await ok(setup('POST', '/v1/traces', agentSpansRequest('bench-agents', names.slice(i, i + 250))), 'spans');
  const otherSetup = jsonClient(receiver.url, otherAdminKey);
  await ok(otherSetup('POST', '/v1/traces', agentSpansRequest('bench-agents', names.slice(0, 50))), 'spans (other project)');
  const halted = names.filter((_, i) => i % (AGENTS / HALTED) === 0);
  for (const a of halted) await ok(setup('POST', '/v1/halts', { scope: 'agent', scope_value: a, reason: 'bench' }), 'halt');
  await ok(otherSetup('POST', '/v1/halts', { scope: 'project', reason: 'bench project halt' }), 'project halt');
  const agentsSeen = Number((await db.query('SELECT count(DISTINCT agent_name) AS n FROM telemetry.spans WHERE project_id = $1', [P])).rows[0].n);
  const activeHalts = Number((await db.query('SELECT count(*) AS n FROM core.halts WHERE project_id = $1 AND cleared_at IS NULL', [P])).rows[0].n);
  progress(`${agentsSeen} agents with spans, ${activeHalts} active agent halts (+1 project halt in a second project)`);
  await db.query('VACUUM ANALYZE core.halts, core.budgets, core.approvals');

  // 2. The receiver: each client polls as one agent per request, halted and not halted in turn.
  const kindOf = (c, i) => (i % 3 === 0 ? 'halted' : i % 3 === 1 ? 'not halted' : 'project halt');
  const agentFor = (c, i) => (kindOf(c, i) === 'halted' ? halted[(c * 7 + i) % HALTED] : names[((c * 31 + i) % HALTED) * (AGENTS / HALTED) + 1 + (i % (AGENTS / HALTED - 1))]);
  const sdkClients = Array.from({ length: CLIENTS }, () => ({ mine: jsonClient(receiver.url, sdk.key), other: jsonClient(receiver.url, otherSdk.key) }));
  const wrong = [];
  const meter = cpuMeter({ receiverPid: receiver.pid, postmasterPid: server.postmasterPid });
  const b = meter.begin();
  const viaHttp = await concurrentLoops({
    clients: CLIENTS, perClient: PER_CLIENT, warmup: WARMUP,
    once: async (c, i) => {
      const kind = kindOf(c, i);
      const agent = agentFor(c, i);
      const send = kind === 'project halt' ? sdkClients[c].other : sdkClients[c].mine;
      const r = await send('POST', '/v1/intervention/sync', { agents: [agent] });
      const body = JSON.parse(r.text);
      const expected = kind === 'not halted' ? 0 : 1;
      if (r.status !== 200 || body.halts.length !== expected) wrong.push({ kind, agent, status: r.status, halts: body.halts?.length });
      return { ms: r.ms, kind };
    },
  });
  const cpu = meter.end(b, viaHttp.seconds);
  if (wrong.length) throw new Error(`sync answered wrongly ${wrong.length} times, e.g. ${JSON.stringify(wrong[0])}`);
  const requests = CLIENTS * PER_CLIENT;
  progress(`HTTP: ${fmtInt(requests)} syncs in ${viaHttp.seconds.toFixed(1)} s`);

  // 3. Bounds, same concurrency: the receiver's own lookup straight in Postgres, and GET /health.
  const pgClients = await Promise.all(Array.from({ length: CLIENTS }, async () => {
    const c = await connect(url);
    c.on('error', () => undefined);
    return c;
  }));
  const viaSql = await concurrentLoops({
    clients: CLIENTS, perClient: PER_CLIENT, warmup: WARMUP,
    once: async (c, i) => {
      const kind = kindOf(c, i);
      const since = new Date(Date.now() - DEFAULT_DECIDED_WINDOW_SECONDS * 1000);
      const t0 = performance.now();
      await interventionState(pgClients[c], kind === 'project halt' ? other : P, [agentFor(c, i)], since);
      return { ms: performance.now() - t0, kind };
    },
  });
  const healthClients = Array.from({ length: CLIENTS }, () => jsonClient(receiver.url, sdk.key));
  const viaHealth = await concurrentLoops({
    clients: CLIENTS, perClient: PER_CLIENT, warmup: WARMUP,
    once: async (c) => ({ ms: (await healthClients[c]('GET', '/health')).ms, kind: 'health' }),
  });
  for (const c of pgClients) await c.end().catch(() => undefined);
  await receiver.stop();

  const all = latencyStats([...viaHttp.byKind.values()].flat());
  const sql = latencyStats([...viaSql.byKind.values()].flat());
  const health = latencyStats(viaHealth.byKind.get('health'));
  const kinds = ['halted', 'not halted', 'project halt'].map((k) => ({ kind: k, http: latencyStats(viaHttp.byKind.get(k)), sql: latencyStats(viaSql.byKind.get(k)) }));
  const cpuMsPerSync = ((cpu.receiverCpu ?? NaN) * viaHttp.seconds * 1000) / requests;
  const pgCpuMsPerSync = ((cpu.pgCpu ?? NaN) * viaHttp.seconds * 1000) / requests;
  const figures = [
    {
      label: `intervention sync p95 (${AGENTS} agents, ${HALTED} halts, ${CLIENTS} clients)`, value: ms2(all.p95),
      bound: `${ms2(sql.p95)} same SQL in Postgres; ${ms2(health.p95)} GET /health`, ratio: x(all.p95, sql.p95),
      target: `p95 < ${TARGET_MS} ms`, met: all.p95 < TARGET_MS,
    },
    { label: 'intervention sync p99', value: ms2(all.p99), bound: `${ms2(sql.p99)} SQL; ${ms2(health.p99)} /health`, ratio: x(all.p99, sql.p99) },
    { label: 'receiver CPU per sync', value: ms2(cpuMsPerSync), bound: `Postgres CPU ${ms2(pgCpuMsPerSync)} per sync` },
  ];
  const markdown = [
    `## Intervention sync (\`POST /v1/intervention/sync\`)`,
    '',
    table(['measure', 'value', 'bound (same run)', 'ratio', 'target'], figures.map((f) => [f.label, f.value, f.bound ?? '', f.ratio ?? '', f.target ?? ''])),
    '',
    table(['agent', 'HTTP p50', 'HTTP p95', 'HTTP p99', 'SQL p50', 'SQL p95', 'SQL p99'],
      kinds.map((k) => [k.kind, ms2(k.http.p50), ms2(k.http.p95), ms2(k.http.p99), ms2(k.sql.p50), ms2(k.sql.p95), ms2(k.sql.p99)])),
    '',
    `${CLIENTS} closed-loop clients (one kept-alive connection each, as an SDK), ${fmtInt(requests)} syncs of one agent each after ${WARMUP} warm-up syncs per client, ` +
      `${(requests / viaHttp.seconds).toFixed(0)} syncs/s (every one checked: halted agents see their halt, the others none). ` +
      `${agentsSeen} agents sent spans; ${activeHalts} agent halts are active; "project halt" polls a second project whose one project-scoped halt applies to every agent. ` +
      `CPU during the HTTP phase: receiver ${((cpu.receiverCpu ?? NaN) * 100).toFixed(0)} %, Postgres ${((cpu.pgCpu ?? NaN) * 100).toFixed(0)} %, load generator ${(cpu.clientCpu * 100).toFixed(0)} %, others on the machine ${(cpu.otherCpu * 100).toFixed(0)} % of one core.`,
  ].join('\n');
  writeResult('sync', {
    title: 'Intervention sync latency',
    figures,
    markdown,
    raw: { agents: agentsSeen, activeHalts, clients: CLIENTS, requests, all, sql, health, kinds, cpu, cpuMsPerSync, pgCpuMsPerSync, seconds: viaHttp.seconds },
  });
});
