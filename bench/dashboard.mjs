// SPEC §12 / issue 9: every dashboard page answers in < 200 ms (p95) with 1M spans stored. The real
// receiver and the real dashboard (`node dashboard/dist/server.js`, reading as strathon_dashboard)
// run as their own processes; a user registered at the receiver signs in through the dashboard's
// form; each page's time to its full HTML body is measured against its floor (the receiver calls
// and dashboard SQL the page waits for, made directly in the same run), and every dashboard
// statement and trace-list filter is EXPLAINed at 1M spans.
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { URLSearchParams } from 'node:url';
import { DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { containsPattern } from '../receiver/dist/api/params.js';
import { agentStats } from '../receiver/dist/query/agents.js';
import { runAgentRollup } from '../receiver/dist/workers/agent-rollup.js';
import { listTraces } from '../receiver/dist/query/traces.js';
import { createReadDb } from '../dashboard/dist/db/pool.js';
import { projectsOfSession, recentRuns, spansPerMinute, todayTotals, workerStatus } from '../dashboard/dist/db/queries.js';
import { silentLogger } from '../dashboard/dist/log.js';
import { apiCaller, cookieClient, createFixtures, dashboardLogin, registerOwner, sendBigTrace, spawnDashboard } from './lib/dashboard-stack.mjs';
import { connect, migrate, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter } from './lib/proc.mjs';
import { spawnReceiver } from './lib/receiver.mjs';
import { loadTraces, RARE_MODEL } from './lib/query-data.mjs';
import { explain, sqlRecorder, stats } from './lib/query-measure.mjs';
import { envSeconds, fmtInt, fmtMB, fmtPct, OUT, progress, table, writeResult } from './lib/report.mjs';

// Every knob from the environment (a positive number, else the default), as bench/lib/report.mjs reads durations.
const knob = (name, dflt) => Math.round(envSeconds(name, dflt));
const opts = {
  spans: knob('BENCH_DASHBOARD_SPANS', 1_000_000), days: knob('BENCH_DASHBOARD_DAYS', 30),
  requests: knob('BENCH_DASHBOARD_REQUESTS', 60), warmup: knob('BENCH_DASHBOARD_WARMUP', 5),
  seconds: knob('BENCH_DASHBOARD_SECONDS', 12), deepPages: 10,
};
const TARGET_MS = 200;
const P = DEFAULT_PROJECT_ID;
const ms1 = (n) => (Number.isFinite(n) ? `${n < 100 ? n.toFixed(1) : Math.round(n)} ms` : 'n/a');
const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(1)}×` : 'n/a');
const fmtKB = (b) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KB` : 'n/a');
const fmtS = (s) => `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
const quiet = (client) => client.on('error', () => undefined);
const iso = (ms) => new Date(ms).toISOString();
/** `datetime-local` value (UTC, minutes) of a time. */
const local = (ms) => iso(ms).slice(0, 16);

await benchMain(async () => {
  const loadAvgStart = os.loadavg();
  const server = await startPostgres('dashboard');
  progress(`Postgres ${server.version}; ${fmtInt(opts.spans)} spans over ${opts.days} days`);
  const url = await server.createDatabase('d');
  await migrate(url);
  const db = quiet(await connect(url));

  // 1. The query benchmark's data set (bench/lib/query-data.mjs), then statistics as autovacuum would leave them.
  let lastReport = 0;
  const load = await loadTraces({
    url, spans: opts.spans, days: opts.days,
    onChunk: (done, total, inserted) => {
      if (done === total || done - lastReport >= total / 5) {
        lastReport = done;
        progress(`loaded ${fmtInt(done)} / ${fmtInt(total)} traces (${fmtInt(inserted)} spans)`);
      }
    },
  });
  progress(`load: ${fmtInt(load.spans)} spans in ${fmtS(load.loadS)}`);

  // 2. The receiver, the first user, what the pages list, one big trace; then the dashboard.
  const rlog = path.join(OUT, 'dashboard-receiver.log');
  const dlog = path.join(OUT, 'dashboard-dashboard.log');
  rmSync(rlog, { force: true });
  rmSync(dlog, { force: true });
  const receiver = await spawnReceiver({ env: { DATABASE_URL: url, STRATHON_ENCRYPTION_KEY: randomBytes(32).toString('base64url') }, logPath: rlog });
  const owner = await registerOwner(receiver.url);
  const api = apiCaller(receiver.url, owner.token);
  const fixtures = await createFixtures(api);
  const big = await sendBigTrace(receiver.url, fixtures.ingestKey);
  // The writer acknowledges after commit; the summary row is there once the API finds the trace.
  const bigDetail = (await api.get(`/v1/traces/${big.traceId}`)).body;
  if (bigDetail.spans.length !== big.spans) throw new Error(`big trace: ${bigDetail.spans.length} spans stored, ${big.spans} sent`);
  // What agent_rollup_task does on its first tick (the receiver's own runs start minutes later):
  // roll up the complete days loaded, so the Agents pages read the rollup as in steady state.
  const rollupStart = process.hrtime.bigint();
  const rollup = await runAgentRollup({ client: db, signal: new AbortController().signal }, { defaultRetentionDays: 30, retentionEnabled: true });
  const rollupS = Number(process.hrtime.bigint() - rollupStart) / 1e9;
  progress(`agent rollup: ${rollup.days_rolled_up} days, ${rollup.rows} rows in ${fmtS(rollupS)}`);
  await db.query('VACUUM ANALYZE telemetry.spans, telemetry.span_events, telemetry.span_links, telemetry.traces, telemetry.agent_daily, telemetry.agent_daily_days');
  await db.query('CHECKPOINT');
  const dbSize = Number((await db.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b);
  const dashboard = await spawnDashboard({ receiverUrl: receiver.url, databaseUrl: url, logPath: dlog });
  const browser = cookieClient(dashboard.url);
  await dashboardLogin(browser, owner.email);
  progress(`receiver ${receiver.url}, dashboard ${dashboard.url}; signed in as ${owner.email}`);

  // The dashboard's own statements, run directly through its read-only pool (same role and options).
  const readDb = createReadDb({ kind: 'derived', url }, silentLogger);
  const counts = (await db.query(`SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY cost_usd) AS cost_p99,
      (SELECT encode(trace_id, 'hex') FROM telemetry.traces WHERE span_count < 20 ORDER BY start_time DESC OFFSET 50 LIMIT 1) AS typical
    FROM telemetry.traces`)).rows[0];
  const costP99 = Number(counts.cost_p99).toFixed(4);
  const weekAgo = Date.now() - 7 * 86_400_000;
  const dayBefore = weekAgo - 86_400_000;

  // 3. Pages: the dashboard path, and its floor (what the page waits for, made directly, in parallel as the page does).
  const sqlFloor = (fn) => async () => fn();
  const apiFloor = (p) => async () => api.get(p);
  const par = (...fns) => async () => Promise.all(fns.map((f) => f()));
  const listPath = (q) => `/v1/traces?limit=50${q ? `&${q}` : ''}`;
  const pages = [
    { key: 'overview', label: 'Overview `/`', path: '/', floor: par(sqlFloor(() => todayTotals(readDb, P)), sqlFloor(() => spansPerMinute(readDb, P)), apiFloor('/v1/halts'), apiFloor('/v1/budgets'), apiFloor('/ready')), floorText: 'todayTotals + spansPerMinute SQL, GET /v1/halts, /v1/budgets, /ready' },
    { key: 'traces24h', label: 'Traces `/traces` (default: last 24 h)', path: '/traces', floor: () => api.get(listPath(`since=${iso(Date.now() - 86_400_000)}`)), floorText: 'GET /v1/traces?since=…' },
    { key: 'tracesAll', label: 'Traces, all time, no filter', path: '/traces?range=all', floor: apiFloor(listPath('')), floorText: 'GET /v1/traces' },
    { key: 'service', label: 'Traces, service = support-svc', path: '/traces?range=all&service=support-svc', floor: apiFloor(listPath('service=support-svc')), filters: { service: 'support-svc' } },
    { key: 'agent', label: 'Traces, agent = audit-agent (1 %)', path: '/traces?range=all&agent=audit-agent', floor: apiFloor(listPath('agent_name=audit-agent')), filters: { agentName: 'audit-agent' } },
    { key: 'model', label: `Traces, model = ${RARE_MODEL.model} (rare)`, path: `/traces?range=all&model=${RARE_MODEL.model}`, floor: apiFloor(listPath(`model=${RARE_MODEL.model}`)), filters: { model: RARE_MODEL.model } },
    { key: 'status', label: 'Traces, status = error', path: '/traces?range=all&status=error', floor: apiFloor(listPath('status=error')), filters: { status: 'error' } },
    { key: 'minCost', label: `Traces, min cost = ${costP99} (p99)`, path: `/traces?range=all&min_cost=${costP99}`, floor: apiFloor(listPath(`min_cost_usd=${costP99}`)), filters: { minCostUsd: costP99 } },
    { key: 'text', label: 'Traces, name contains "audit"', path: '/traces?range=all&q=audit', floor: apiFloor(listPath('q=audit')), filters: { qPattern: containsPattern('audit') } },
    { key: 'textNone', label: 'Traces, name contains "no-such-text" (matches nothing)', path: '/traces?range=all&q=no-such-text', floor: apiFloor(listPath('q=no-such-text')), filters: { qPattern: containsPattern('no-such-text') } },
    {
      key: 'timeRange', label: 'Traces, custom time range (one day a week ago)', path: `/traces?range=custom&since=${local(dayBefore)}&until=${local(weekAgo)}`,
      floor: apiFloor(listPath(`since=${local(dayBefore)}:00Z&until=${local(weekAgo)}:00Z`)),
      filters: { sinceNs: BigInt(Date.parse(`${local(dayBefore)}:00Z`)) * 1_000_000n, untilNs: BigInt(Date.parse(`${local(weekAgo)}:00Z`)) * 1_000_000n },
    },
    { key: 'page2', label: 'Traces, page 2 (the "Next page" link)', path: undefined, floor: undefined },
    { key: 'pageDeep', label: `Traces, page ${opts.deepPages + 1} (following "Next page")`, path: undefined, floor: undefined },
    { key: 'bigTrace', label: `Trace detail, big trace (${fmtInt(big.spans)} spans, 3 levels)`, path: `/traces/${big.traceId}`, floor: apiFloor(`/v1/traces/${big.traceId}`), floorText: 'GET /v1/traces/{id}' },
    { key: 'trace', label: 'Trace detail, typical trace (6–14 spans)', path: `/traces/${counts.typical}`, floor: apiFloor(`/v1/traces/${counts.typical}`), floorText: 'GET /v1/traces/{id}' },
    { key: 'agents', label: 'Agents (default: last 30 days)', path: '/agents', floor: apiFloor('/v1/agents?lookback_days=30'), floorText: 'GET /v1/agents?lookback_days=30' },
    { key: 'agents1', label: 'Agents, last day', path: '/agents?days=1', floor: apiFloor('/v1/agents?lookback_days=1'), floorText: 'GET /v1/agents?lookback_days=1', warmup: 2, min: 5 },
    { key: 'agents7', label: 'Agents, last 7 days', path: '/agents?days=7', floor: apiFloor('/v1/agents?lookback_days=7'), floorText: 'GET /v1/agents?lookback_days=7', warmup: 2, min: 5 },
    { key: 'agents90', label: 'Agents, last 90 days', path: '/agents?days=90', floor: apiFloor('/v1/agents?lookback_days=90'), floorText: 'GET /v1/agents?lookback_days=90', warmup: 1, min: 5 },
    { key: 'budgets', label: 'Budgets', path: '/budgets', floor: apiFloor('/v1/budgets'), floorText: 'GET /v1/budgets' },
    { key: 'halts', label: 'Halts', path: '/halts', floor: par(apiFloor('/v1/halts?limit=200'), apiFloor('/v1/halts?state=all&limit=50')), floorText: 'GET /v1/halts, ?state=all' },
    { key: 'policies', label: 'Policies', path: '/policies', floor: par(apiFloor('/v1/policies'), apiFloor('/v1/policies/evaluations?shadow=true&limit=50')), floorText: 'GET /v1/policies, /v1/policies/evaluations?shadow=true' },
    { key: 'keys', label: 'API keys', path: '/keys', floor: apiFloor('/v1/api_keys'), floorText: 'GET /v1/api_keys' },
    { key: 'webhooks', label: 'Webhooks', path: '/webhooks', floor: apiFloor('/v1/notification-channels'), floorText: 'GET /v1/notification-channels' },
    { key: 'webhook', label: 'Webhook endpoint (deliveries)', path: `/webhooks/${fixtures.channelId}`, floor: par(apiFloor(`/v1/notification-channels/${fixtures.channelId}`), apiFloor(`/v1/notification-channels/${fixtures.channelId}/deliveries?limit=50`)), floorText: 'GET channel + deliveries' },
    { key: 'audit', label: 'Audit log', path: '/audit', floor: apiFloor('/v1/audit/events?limit=50'), floorText: 'GET /v1/audit/events' },
    { key: 'members', label: 'Members', path: '/members', floor: apiFloor('/v1/members'), floorText: 'GET /v1/members' },
    {
      key: 'workers', label: 'Workers', path: '/workers',
      floor: par(apiFloor('/ready'), async () => recentRuns(readDb, [...new Set((await workerStatus(readDb)).map((w) => w.worker))], 20)), floorText: 'GET /ready, workerStatus → recentRuns SQL',
    },
  ];
  for (const p of pages) if (p.filters) p.floorText = 'GET /v1/traces with the same filter';

  // Page 2 and a deep page: the "Next page" link of the previous page, as a browser follows it.
  const nextLink = (htmlText) => /<a href="([^"]+)" rel="next">/.exec(htmlText)?.[1]?.replace(/&amp;/g, '&');
  let link = '/traces?range=all';
  const pageLinks = [];
  for (let i = 0; i < opts.deepPages; i++) {
    const r = await browser.get(link);
    link = nextLink(r.text);
    if (!link) throw new Error(`no "Next page" link on traces page ${i + 1}`);
    pageLinks.push(link);
  }
  const cursorOf = (l) => new URLSearchParams(l.split('?')[1]).get('cursor');
  for (const [key, l] of [['page2', pageLinks[0]], ['pageDeep', pageLinks[opts.deepPages - 1]]]) {
    const p = pages.find((x) => x.key === key);
    p.path = l;
    p.floor = apiFloor(listPath(`cursor=${encodeURIComponent(cursorOf(l))}`));
    p.floorText = 'GET /v1/traces?cursor=…';
  }

  // The session gate every signed-in page passes first: GET /v1/me and the projects of the session.
  const tokenHash = createHash('sha256').update(owner.token).digest();
  const gate = { key: 'gate', label: 'Session gate alone (GET /v1/me, projectsOfSession SQL)', floor: async () => { await api.get('/v1/me'); await projectsOfSession(readDb, tokenHash); } };

  const meter = cpuMeter({ receiverPid: receiver.pid, postmasterPid: server.postmasterPid });
  const dashMeter = cpuMeter({ receiverPid: dashboard.pid });
  const loadAvgMeasure = os.loadavg();
  const check = (r, p) => {
    if (r.status !== 200) throw new Error(`GET ${p}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    if (!r.text.includes('</html>')) throw new Error(`GET ${p}: not a whole page`);
    return r;
  };
  for (const p of [...pages, gate]) {
    const ms = { page: [], floor: [] };
    let bytes = 0;
    const deadline = performance.now() + opts.seconds * 1000;
    const b = meter.begin();
    const bd = dashMeter.begin();
    const t0 = performance.now();
    let n = 0;
    const warmup = p.warmup ?? opts.warmup;
    for (let i = 0; i < warmup + opts.requests && (i < warmup + (p.min ?? 10) || performance.now() < deadline); i++) {
      const r = p.path ? check(await browser.get(p.path), p.path) : undefined;
      const f0 = performance.now();
      await p.floor();
      const fMs = performance.now() - f0;
      if (i < warmup) {
        if (i === 0 && r) p.firstBody = r.text;
        continue;
      }
      n++;
      if (r) {
        ms.page.push(r.ms);
        bytes += r.bytes;
      }
      ms.floor.push(fMs);
    }
    const elapsed = (performance.now() - t0) / 1000;
    p.result = {
      n, page: p.path ? stats(ms.page) : undefined, floor: stats(ms.floor), bytes: bytes / (n || 1),
      cpu: meter.end(b, elapsed), dashboardCpuMs: ((dashMeter.end(bd, elapsed).receiverCpu ?? 0) * elapsed * 1000) / (n || 1),
    };
    progress(`${p.key}: ${n} × page p50 ${ms1(p.result.page?.p50)} p95 ${ms1(p.result.page?.p95)}; floor p50 ${ms1(p.result.floor.p50)} p95 ${ms1(p.result.floor.p95)}`);
  }
  const loadAvgEnd = os.loadavg();

  // Checks that the pages show what they should (a fast empty page would be no result).
  const must = {
    overview: /id="spans-today"/, tracesAll: /<table id="traces">/, bigTrace: new RegExp(`Total \\(${fmtInt(big.spans)} spans\\)`), agents: /research-agent/,
    budgets: /daily cap/, halts: /email-agent/, policies: /no email/, keys: /bench key 1/, webhooks: /ops hook/, members: /invitee|Bench Owner|owner/i, workers: /id="heartbeats"/,
    text: /audit-agent/, model: /audit-agent/,
  };
  for (const [k, re] of Object.entries(must)) {
    const p = pages.find((x) => x.key === k);
    if (!re.test(p.firstBody ?? '')) throw new Error(`page ${k} (${p.path}) does not show ${re}`);
  }
  await dashboard.stop(10_000);
  await receiver.stop(15_000);

  // 4. Plans: every dashboard statement and the receiver statements behind the trace list and agents.
  const rec = sqlRecorder(url);
  const wanted = [...new Set((await workerStatus(readDb)).map((w) => w.worker))];
  // The dashboard's statements as its query functions send them (text and parameters), through a recording pool.
  const dashSql = [];
  const recording = (label) => ({ query: (name, text, values) => { dashSql.push({ label, statement: { text, values } }); return readDb.query(name, text, values); } });
  await todayTotals(recording('dashboard `todayTotals` (overview)'), P);
  await spansPerMinute(recording('dashboard `spansPerMinute` (overview)'), P);
  await workerStatus(recording('dashboard `workerStatus` (workers)'));
  await recentRuns(recording('dashboard `recentRuns` (workers)'), wanted, 20);
  await projectsOfSession(recording('dashboard `projectsOfSession` (every page)'), tokenHash);
  const listPlans = [];
  for (const p of pages.filter((x) => x.filters || x.key === 'tracesAll')) {
    const cap = await rec.capture((d) => listTraces(d, P, p.filters ?? {}, undefined, 50));
    listPlans.push({ label: `receiver \`listTraces\`, ${p.label}`, statement: cap.statements[0] });
  }
  const agentPlans = [];
  for (const days of [1, 30]) {
    const cap = await rec.capture((d) => agentStats(d, P, days));
    agentPlans.push({ label: `receiver \`agentStats\` (agents page, ${days === 1 ? 'last day' : `${days} days`})`, statement: cap.statements[0] });
  }
  const plans = [...dashSql, ...listPlans, ...agentPlans];
  for (const p of plans) p.plan = await explain(db, p.statement);
  await readDb.close();

  // 5. Report.
  const measured = pages.filter((p) => p.result.page);
  const rows = measured.map((p) => [
    p.label, p.result.n, ms1(p.result.page.p50), ms1(p.result.page.p95), `${ms1(p.result.floor.p50)} / ${ms1(p.result.floor.p95)}`,
    ratio(p.result.page.p95, p.result.floor.p95), fmtKB(p.result.bytes), ms1(p.result.dashboardCpuMs), fmtPct(p.result.cpu.otherCpu),
    p.result.page.p95 < TARGET_MS ? '✓' : '✗',
  ]);
  // A sequential scan of an empty partition reads nothing (the planner prefers it there): only scans of tables with rows count.
  const relRows = new Map((await db.query(`SELECT relname, reltuples FROM pg_class WHERE relnamespace IN ('telemetry'::regnamespace, 'core'::regnamespace) AND relkind = 'r'`)).rows.map((r) => [r.relname, Number(r.reltuples)]));
  const seqOf = (p) => p.plan.scans.filter((s) => s.node === 'Seq Scan').map((s) => s.relation);
  // reltuples is 0 for a table VACUUM ANALYZE found empty, -1 for one never analyzed (counted as having rows).
  const isEmpty = (r) => relRows.get(r) === 0;
  const rowsText = (r) => (relRows.get(r) >= 0 ? `${fmtInt(relRows.get(r))} rows` : 'not analyzed');
  const scanLine = (p) => {
    const uniq = [...new Set(p.plan.scans.filter((s) => s.node !== 'Seq Scan' || !isEmpty(s.relation)).map((s) => `${s.node}${s.index ? ` using \`${s.index}\`` : ''} on \`${s.relation}\``))];
    const empty = seqOf(p).filter(isEmpty);
    const seq = seqOf(p).filter((r) => !isEmpty(r));
    return `- ${p.label}: ${uniq.join('; ') || 'no scan node'}${empty.length ? ` (plus sequential scans of ${empty.length} empty partition${empty.length === 1 ? '' : 's'})` : ''}${seq.length ? ` — **sequential scan of ${seq.map((r) => `${r} (${rowsText(r)})`).join(', ')}**` : ''}; execution ${ms1(p.plan.execMs)}, buffers ${p.plan.buffers || 'n/a'}.`;
  };
  const spanSeq = plans.filter((p) => seqOf(p).some((r) => r.startsWith('spans') && !isEmpty(r)));
  const missed = measured.filter((p) => !(p.result.page.p95 < TARGET_MS));
  const md = [];
  md.push(`**${fmtInt(load.spans)} spans** in ${fmtInt(load.traces)} traces over ${opts.days} days (the data set of \`bench/query\`, \`bench/lib/query-data.mjs\`), plus one big trace of ${fmtInt(big.spans)} spans sent over OTLP/HTTP, and through the API: 3 budgets, 3 halts (1 resolved), 2 policies (1 shadow), 5 API keys (1 revoked), a webhook endpoint, an invitation. Database ${fmtMB(dbSize)}. The real receiver and the real dashboard (\`node dashboard/dist/server.js\`, reading as \`strathon_dashboard\`, derived mode) run as their own processes on 127.0.0.1; the first user registered at the receiver signs in through the dashboard's login form; one kept-alive connection with the session cookie, as a browser tab.`);
  md.push('');
  md.push(`**Measurement**: per page ${opts.warmup} warm-up requests, then up to ${opts.requests} (at least 10, at most ${opts.seconds} s), each followed by its **floor**: the receiver calls (with the user's session token) and dashboard SQL (the dashboard's own query functions, through its read-only pool) that the page waits for, made directly, in parallel where the page makes them in parallel. Page time runs from the request to the last byte of the HTML. Every page also passes the session gate first (\`GET /v1/me\` at the receiver, then the session's projects in SQL): alone it takes p50 ${ms1(gate.result.floor.p50)} / p95 ${ms1(gate.result.floor.p95)}. Load average ${loadAvgStart.map((x) => x.toFixed(2)).join(' / ')} at start, ${loadAvgMeasure.map((x) => x.toFixed(2)).join(' / ')} → ${loadAvgEnd.map((x) => x.toFixed(2)).join(' / ')} during the pages, ${os.cpus().length} cores (shared).`);
  md.push('');
  md.push(table(['page', 'requests', 'page p50', 'page p95', 'floor p50 / p95', 'ratio p95', 'HTML', 'dashboard CPU per page', 'other processes CPU', `p95 < ${TARGET_MS} ms`], rows));
  md.push('');
  md.push(`Floors (trace-list filters: \`GET /v1/traces\` with the same filter): ${measured.filter((p) => !p.filters).map((p) => `${p.key} = ${p.floorText}`).join('; ')}. "Dashboard CPU per page": the dashboard process's CPU time over the row divided by the pages served (rendering, cookies, calling the receiver). ${missed.length ? `**Over the target**: ${missed.map((p) => `${p.label} (p95 ${ms1(p.result.page.p95)}, floor p95 ${ms1(p.result.floor.p95)})`).join('; ')}.` : `Every page is under ${TARGET_MS} ms at p95.`}`);
  const a30 = pages.find((p) => p.key === 'agents');
  const a30Plan = plans.find((p) => p.label.includes('30 days'));
  md.push('');
  md.push(`**Agents**: the page is the receiver's \`GET /v1/agents\` (\`agentStats\`: ${ms1(a30Plan.plan.execMs)} inside Postgres for 30 days, ${spanSeq.includes(a30Plan) ? 'sequential scans of the spans partitions' : 'no sequential scan of spans'}; floor p95 ${ms1(a30.result.floor.p95)} over HTTP). Complete UTC days come from \`telemetry.agent_daily\`, the per-agent daily rollup kept by \`agent_rollup_task\` (its first tick, run before the pages: ${rollup.days_rolled_up} days, ${fmtInt(rollup.rows)} rows in ${fmtS(rollupS)}); only the partial first day and today are aggregated from spans, so 7, 30 and 90 days cost about the same.`);
  md.push('');
  md.push(`**Plans at ${fmtInt(load.spans)} spans** (EXPLAIN (ANALYZE, BUFFERS) after the measurement; the receiver's statements captured from its own query functions). ${spanSeq.length ? `**Sequential scans of spans**: ${spanSeq.map((p) => p.label).join(', ')}.` : 'No statement scans spans sequentially.'}`);
  md.push('');
  for (const p of plans) md.push(scanLine(p));
  for (const p of plans) {
    md.push('');
    md.push(`<details><summary>${p.label}</summary>`, '', '```', p.plan.text, '```', '', '</details>');
  }
  md.push('');
  md.push(`Knobs: \`BENCH_DASHBOARD_SPANS\` (1,000,000), \`BENCH_DASHBOARD_DAYS\` (30), \`BENCH_DASHBOARD_REQUESTS\` (60), \`BENCH_DASHBOARD_WARMUP\` (5), \`BENCH_DASHBOARD_SECONDS\` (12). Logs: \`bench/out/dashboard-receiver.log\`, \`bench/out/dashboard-dashboard.log\`.`);

  const figures = measured.map((p) => ({
    label: `Dashboard ${p.label.replace(/`/g, '')}, ${fmtInt(load.spans)} spans`,
    value: `p95 ${ms1(p.result.page.p95)} (p50 ${ms1(p.result.page.p50)})`, bound: `floor p95 ${ms1(p.result.floor.p95)}`,
    ratio: ratio(p.result.page.p95, p.result.floor.p95), target: `p95 < ${TARGET_MS} ms`, met: p.result.page.p95 < TARGET_MS,
  }));
  writeResult('dashboard', {
    title: `Dashboard pages at ${fmtInt(load.spans)} spans (SPEC §12)`, figures, markdown: md.join('\n'),
    raw: {
      opts, load, bigTrace: big, dbSize, gate: gate.result,
      pages: pages.map((p) => ({ key: p.key, label: p.label, path: p.path, floor: p.floorText, ...p.result, cpu: p.result.cpu })),
      plans: plans.map((p) => ({ label: p.label, sql: p.statement.text, plan: p.plan.text, scans: p.plan.scans, execMs: p.plan.execMs })),
    },
  });
  progress(`wrote bench/out/dashboard.json; ${missed.length} of ${measured.length} pages over ${TARGET_MS} ms at p95`);
});
