// SPEC §9 / issue 8: webhook delivery by the real receiver process. (1) End-to-end latency: halts
// created through the REST API at a fixed rate (each commit writes a halt.created event to the
// outbox and NOTIFYs the sweeper), timed from the API request to the signed POST arriving at a
// loopback endpoint in this process. (2) Deliveries/s at saturation: a backlog of events committed
// at once, drained by the sweeper. Bounds measured in the same run: for latency, the API call alone
// plus a plain loopback HTTP POST (new connection, like the sweeper's); for throughput, plain POSTs
// at the sweeper's batch concurrency.
import http from 'node:http';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { createApiKey, DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { emitEvent } from '../receiver/dist/webhooks/outbox.js';
import { connect, migrate, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuSeconds, sleep } from './lib/proc.mjs';
import { spawnReceiver } from './lib/receiver.mjs';
import { fmtInt, fmtMs, OUT, percentile, progress, table, writeResult } from './lib/report.mjs';
import { startWebhookSink } from './lib/webhook-sink.mjs';

const RATE = Number(process.env.BENCH_WEBHOOKS_RATE ?? 20); // events/s in the latency phase
const LATENCY_EVENTS = Number(process.env.BENCH_WEBHOOKS_LATENCY_EVENTS ?? 300);
const BACKLOG = Number(process.env.BENCH_WEBHOOKS_BACKLOG ?? 3000);
const BATCH = 25; // the sweeper's default claim batch (receiver/src/webhooks/sweeper.ts)
const BOUND_REQUESTS = 500;

/** One POST with a fresh connection (as the sweeper sends: agent false); resolves when answered. */
function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'webhook-id': 'msg_bound', 'webhook-timestamp': '0', 'webhook-signature': `v1,${'A'.repeat(43)}=` },
    }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Loopback POSTs to the sink: round-trip times one at a time, and requests/s at `concurrency`. */
async function loopbackBound(sink, body, concurrency) {
  const url = sink.url('/bound');
  const rtts = [];
  for (let i = 0; i < BOUND_REQUESTS; i++) {
    const t0 = performance.now();
    await post(url, body);
    rtts.push(performance.now() - t0);
  }
  let left = BOUND_REQUESTS * 2;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) await post(url, body);
  }));
  return { rttP50: percentile(rtts, 50), rttP99: percentile(rtts, 99), perSecond: (BOUND_REQUESTS * 2) / ((performance.now() - t0) / 1000) };
}

async function createHalt(url, key, n) {
  const res = await fetch(`${url}/v1/halts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ scope: 'agent', agent_name: `bench-agent-${n}`, reason: `bench ${n}` }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`POST /v1/halts: ${res.status} ${JSON.stringify(body)}`);
  return String(body.id);
}

await benchMain(async () => {
  const server = await startPostgres('webhooks');
  const url = await server.createDatabase('w');
  await migrate(url);
  const db = await connect(url);
  const { key } = await createApiKey(db, { projectId: DEFAULT_PROJECT_ID, name: 'bench-webhooks', scopes: ['halts:read', 'halts:write', 'notifications:read', 'notifications:write'] });
  const sink = await startWebhookSink();
  const logPath = path.join(OUT, 'webhooks-receiver.log');
  rmSync(logPath, { force: true });
  const receiver = await spawnReceiver({
    env: { DATABASE_URL: url, STRATHON_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url'), STRATHON_WEBHOOK_ALLOW_PRIVATE: 'true' },
    logPath,
  });
  progress(`receiver ready in ${fmtMs(receiver.readyMs)}`);

  const channel = await fetch(`${receiver.url}/v1/notification-channels`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', url: sink.url('/hook'), events: ['halt.created', 'budget.threshold'] }),
  });
  if (channel.status !== 201) throw new Error(`create channel: ${channel.status} ${await channel.text()}`);

  // 1. Latency: halts through the REST API at RATE/s; each event timed from its request start.
  progress(`latency: ${LATENCY_EVENTS} halts at ${RATE}/s`);
  const sentAt = new Map();
  const answeredAt = new Map();
  const started = performance.now();
  const requests = [];
  for (let i = 0; i < LATENCY_EVENTS; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    requests.push(createHalt(receiver.url, key, i).then((id) => {
      sentAt.set(id, t0);
      answeredAt.set(id, performance.now());
    }));
  }
  await Promise.all(requests);
  await sink.waitForCount(LATENCY_EVENTS, 60_000);
  const halts = sink.arrivals.filter((a) => a.body?.type === 'halt.created');
  const latencies = halts.map((a) => a.at - sentAt.get(String(a.body.data.halt.id)));
  // The API call alone (request → 201, the commit included), and delivery after the 201 was read.
  const apiMs = [...answeredAt].map(([id, at]) => at - sentAt.get(id));
  const afterAnswer = halts.map((a) => a.at - answeredAt.get(String(a.body.data.halt.id)));
  const latencyIds = new Set(sink.arrivals.map((a) => a.webhookId));
  if (latencies.length !== LATENCY_EVENTS || latencyIds.size !== LATENCY_EVENTS || latencies.some((x) => !Number.isFinite(x))) {
    throw new Error(`latency phase: ${latencies.length} deliveries, ${latencyIds.size} distinct webhook-ids for ${LATENCY_EVENTS} halts`);
  }
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  const api = { p50: percentile(apiMs, 50), p99: percentile(apiMs, 99) };
  const afterAnswerP50 = percentile(afterAnswer, 50);
  progress(`latency p50 ${fmtMs(p50)}, p99 ${fmtMs(p99)} (POST /v1/halts alone: p50 ${fmtMs(api.p50)}, p99 ${fmtMs(api.p99)})`);

  // 2. Saturation: BACKLOG events committed in one transaction (one NOTIFY), drained by the sweeper.
  progress(`saturation: backlog of ${BACKLOG} events`);
  const sampleBody = JSON.stringify(sink.arrivals[0].body);
  const before = sink.arrivals.length;
  await db.query('BEGIN');
  for (let i = 0; i < BACKLOG; i++) await emitEvent(db, { projectId: DEFAULT_PROJECT_ID, type: 'budget.threshold', data: { budget_id: `b${i}`, spent_usd: i } });
  const cpu0 = cpuSeconds(receiver.pid);
  await db.query('COMMIT');
  const t0 = performance.now();
  await sink.waitForCount(before + BACKLOG, 300_000);
  const drainS = (performance.now() - t0) / 1000;
  const receiverCpuS = cpuSeconds(receiver.pid) - cpu0;
  const drained = sink.arrivals.slice(before);
  if (new Set(drained.map((a) => a.webhookId)).size !== BACKLOG) throw new Error('saturation phase: a webhook-id arrived twice');
  const perSecond = BACKLOG / drainS;
  const cpuPerDeliveryMs = (receiverCpuS / BACKLOG) * 1000;
  progress(`saturation: ${fmtInt(perSecond)} deliveries/s, ${cpuPerDeliveryMs.toFixed(2)} ms receiver CPU per delivery`);
  await sleep(500);
  const succeeded = Number((await db.query(`SELECT count(*) AS n FROM core.webhook_deliveries WHERE status = 'succeeded'`)).rows[0].n);

  // 3. Bounds, on the same machine in the same run.
  progress('bound: plain loopback POSTs');
  const bound = await loopbackBound(sink, sampleBody, BATCH);
  await receiver.stop(10_000);

  // Latency bound: what the event cannot be faster than, the API change itself plus one loopback POST.
  const floorP50 = api.p50 + bound.rttP50;
  const floorP99 = api.p99 + bound.rttP99;
  const rateRatio = perSecond / bound.perSecond;
  const figures = [
    { label: 'webhook latency p50 (REST change → POST at endpoint)', value: fmtMs(p50), bound: `${fmtMs(floorP50)} = API call ${fmtMs(api.p50)} + loopback POST ${fmtMs(bound.rttP50)}`, ratio: `${(p50 / floorP50).toFixed(2)}×` },
    { label: 'webhook latency p99', value: fmtMs(p99), bound: `${fmtMs(floorP99)} = API call p99 + loopback POST p99`, ratio: `${(p99 / floorP99).toFixed(2)}×` },
    { label: 'webhook deliveries/s at saturation', value: fmtInt(perSecond), bound: `${fmtInt(bound.perSecond)} POST/s at concurrency ${BATCH}`, ratio: `${(rateRatio * 100).toFixed(0)} %` },
    { label: 'receiver CPU per webhook delivery', value: `${cpuPerDeliveryMs.toFixed(2)} ms` },
  ];
  const markdown = [
    `Receiver process with LISTEN/NOTIFY wake-ups, default sweeper (batch ${BATCH}); endpoint on loopback in the bench process, answering 200 at once.`,
    '',
    table(['measure', 'value', 'bound (same run)', 'ratio'], figures.map((f) => [f.label, f.value, f.bound ?? '', f.ratio ?? ''])),
    '',
    `Latency: ${LATENCY_EVENTS} halts via \`POST /v1/halts\` at ${RATE}/s, timed from the request start (includes the API call and its commit). ` +
      `The API call alone (request → 201) took p50 ${fmtMs(api.p50)}, p99 ${fmtMs(api.p99)}; the POST reached the endpoint a median ${fmtMs(afterAnswerP50)} after the 201 was read (negative: before it). ` +
      `Saturation: ${fmtInt(BACKLOG)} events committed in one transaction, drained in ${drainS.toFixed(2)} s; ${succeeded} deliveries succeeded in all, every webhook-id once.`,
  ].join('\n');
  writeResult('webhooks', {
    title: 'Webhooks: event → delivery latency and deliveries/s',
    figures,
    markdown,
    raw: { rate: RATE, latencyEvents: LATENCY_EVENTS, backlog: BACKLOG, p50, p99, api, afterAnswerP50, perSecond, drainS, receiverCpuS, cpuPerDeliveryMs, bound, succeeded },
  });
});
