// Issue 7 / SPEC §8.1: the cost of policy evaluation on ingest. One receiver process, two projects:
// one without policies, one with 20 enabled policies (realistic CEL on attrs and span fields, shadow
// and enforce log/alert actions that rarely match). Real OTLP exporters in closed loops alternate
// between the projects in the same run; figure: throughput with 20 policies / without (≥ 80 %),
// plus receiver CPU per span and, from the difference, per span-policy evaluation.
import path from 'node:path';
import { rmSync } from 'node:fs';
import { createApiKey, DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { buildTemplateBatch, closedLoop } from './lib/load.mjs';
import { connect, migrate, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter } from './lib/proc.mjs';
import { scrapeMetrics, spawnReceiver } from './lib/receiver.mjs';
import { addProject, jsonClient } from './lib/governance-data.mjs';
import { POLICY_EXPRESSIONS as EXPRESSIONS } from './lib/policy-expressions.mjs';
import { envSeconds, fmtInt, fmtPct, OUT, progress, table, writeResult } from './lib/report.mjs';

const SECONDS = envSeconds('BENCH_POLICIES_SECONDS', 15);
const ROUNDS = Math.round(envSeconds('BENCH_POLICIES_ROUNDS', 2));
const CLIENTS = 8;
const BATCH_SPANS = 100;
const TARGET = 0.8;

await benchMain(async () => {
  const server = await startPostgres('policies');
  const url = await server.createDatabase('policies');
  await migrate(url);
  const db = await connect(url);
  db.on('error', () => undefined);
  const plain = await createApiKey(db, { projectId: DEFAULT_PROJECT_ID, name: 'bench', scopes: ['*'] });
  const { id: governed, key: governedKey } = await addProject(db, 'bench-governed', createApiKey, DEFAULT_PROJECT_ID);

  const logPath = path.join(OUT, 'policies-receiver.log');
  rmSync(logPath, { force: true });
  const receiver = await spawnReceiver({ env: { DATABASE_URL: url }, logPath });
  const api = jsonClient(receiver.url, governedKey);
  for (const [i, expression] of EXPRESSIONS.entries()) {
    const body = { name: `bench ${i}`, match_expression: expression, action: i % 2 ? 'log' : 'alert', shadow: i % 3 === 0 };
    const r = await api('POST', '/v1/policies', body);
    if (r.status !== 201) throw new Error(`policy ${i}: ${r.status} ${r.text}`);
  }
  progress(`${EXPRESSIONS.length} policies enabled in the governed project`);

  const template = await buildTemplateBatch(BATCH_SPANS);
  const meter = cpuMeter({ receiverPid: receiver.pid, postmasterPid: server.postmasterPid });
  const runs = { none: [], twenty: [] };
  const run = async (which) => {
    const key = which === 'none' ? plain.key : governedKey;
    const before = await scrapeMetrics(receiver.url);
    const r = await closedLoop({
      url: receiver.url, key, protocol: 'protobuf', gzip: false, clients: CLIENTS, warmupS: 2, seconds: SECONDS, template,
      probe: { begin: () => meter.begin(), end: (b, s) => meter.end(b, s) },
    });
    const after = await scrapeMetrics(receiver.url);
    const d = (name) => (after[name] ?? 0) - (before[name] ?? 0);
    const out = {
      spansPerS: r.spansPerS, failed: r.failed, firstError: r.firstError, cpu: r.probed,
      receiverCpuUsPerSpan: ((r.probed.receiverCpu ?? NaN) * 1e6) / r.spansPerS,
      enqueued: d('strathon_policy_evaluation_enqueued_spans_total'), skipped: d('strathon_policy_evaluation_skipped_spans_total'),
    };
    runs[which].push(out);
    progress(`${which}: ${fmtInt(out.spansPerS)} spans/s, receiver ${out.receiverCpuUsPerSpan.toFixed(1)} µs CPU/span, handed to evaluator ${fmtInt(out.enqueued)}, skipped ${fmtInt(out.skipped)}`);
  };
  for (let i = 0; i < ROUNDS; i++) {
    await run('none');
    await run('twenty');
  }
  const evaluations = (await db.query('SELECT count(*) AS n FROM core.policy_evaluations WHERE project_id = $1', [governed])).rows[0].n;
  await receiver.stop();

  const avg = (xs, f) => xs.reduce((a, x) => a + f(x), 0) / xs.length;
  const none = avg(runs.none, (x) => x.spansPerS);
  const twenty = avg(runs.twenty, (x) => x.spansPerS);
  const cpuNone = avg(runs.none, (x) => x.receiverCpuUsPerSpan);
  const cpuTwenty = avg(runs.twenty, (x) => x.receiverCpuUsPerSpan);
  const skipped = runs.twenty.reduce((a, x) => a + x.skipped, 0);
  const perSpanPolicyUs = (cpuTwenty - cpuNone) / EXPRESSIONS.length;
  const ratio = twenty / none;
  const figures = [
    { label: 'ingest spans/s with 20 enabled policies', value: fmtInt(twenty), bound: `${fmtInt(none)} spans/s without policies`, ratio: fmtPct(ratio), target: `≥ ${TARGET * 100} %`, met: ratio >= TARGET },
    { label: 'receiver CPU per span-policy evaluation', value: `${perSpanPolicyUs.toFixed(2)} µs`, bound: `${cpuNone.toFixed(1)} µs/span without policies, ${cpuTwenty.toFixed(1)} µs/span with 20` },
  ];
  const markdown = [
    '## Policy evaluation cost on ingest',
    '',
    table(['measure', 'value', 'bound (same run)', 'ratio', 'target'], figures.map((f) => [f.label, f.value, f.bound ?? '', f.ratio ?? '', f.target ?? ''])),
    '',
    `${CLIENTS} OTLP/protobuf exporters in closed loops, ${BATCH_SPANS} spans per request, ${ROUNDS} alternating rounds of ${SECONDS} s per project (after 2 s warm-up each). ` +
      `The governed project has ${EXPRESSIONS.length} enabled policies (alert and log, a third of them shadow) on attrs, span fields and now; ` +
      `${fmtInt(skipped)} spans were skipped by a full evaluation queue during the governed rounds (stored, not evaluated), ${evaluations} evaluation records were written. ` +
      `The project without policies keeps no spans for the evaluator once its (empty) policy list is read: ${fmtInt(runs.none.reduce((a, x) => a + x.enqueued, 0))} spans were handed over in its rounds, ` +
      `the first request of each exporter, sent before that first read answered.`,
  ].join('\n');
  writeResult('policies', {
    title: 'Policy evaluation cost',
    figures,
    markdown,
    raw: { runs, none, twenty, ratio, cpuNone, cpuTwenty, perSpanPolicyUs, skipped, evaluations, expressions: EXPRESSIONS },
  });
});
