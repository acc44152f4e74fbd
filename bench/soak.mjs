// Multi-replica soak (SPEC §15, issue "prove the promises" item 4): receiver/test/faults/replicas.test.ts
// — two receivers booted together on one empty database, ingest load through both, every worker on a
// 0.5 s interval, a budget breached by the load, a webhook channel to a loopback sink — run for
// BENCH_SOAK_SECONDS (default 120). The test file asserts everything itself (no error logs, no
// duplicate spans, no migration/partition race, locked runs never overlap, one crossing and one halt
// per threshold, each webhook once); this script runs it and records the figures it reports.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, envSeconds, fmtInt, progress, table, writeResult } from './lib/report.mjs';

const seconds = envSeconds('BENCH_SOAK_SECONDS', 120);
const reportFile = path.join(tmpdir(), `strathon-soak-${process.pid}.json`);
progress(`soak: two receivers, ${seconds} s of load`);
const t0 = Date.now();
const child = spawn(process.execPath, [path.join(ROOT, 'scripts/test.mjs'), 'faults/replicas.test'], {
  cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SOAK_SECONDS: String(seconds), SOAK_REPORT: reportFile, TEST_CONCURRENCY: '1' },
});
const chunks = [];
for (const stream of [child.stdout, child.stderr]) stream.on('data', (d) => chunks.push(d));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill('SIGTERM'));
const [exitCode] = await once(child, 'exit');
const code = exitCode ?? 1;
const out = Buffer.concat(chunks).toString('utf8');
const wall = (Date.now() - t0) / 1000;
let r;
try {
  r = JSON.parse(readFileSync(reportFile, 'utf8'));
} catch {
  r = undefined;
} finally {
  rmSync(reportFile, { force: true });
}
const failure = code === 0 ? '' : (out.split('\n').filter((l) => /✖|AssertionError|Error:/.test(l)).slice(0, 8).join('\n') || out.slice(-2000));
if (code !== 0) process.stderr.write(`${out}\n`);

const workers = Object.entries(r?.perWorker ?? {});
const thresholds = (r?.crossings ?? []).map((c) => `${c.threshold} %${c.halts ? ` (${c.halts} halt)` : ''}`).join(', ');
const markdown = [
  `Two receivers booted together on one empty database (racing the migrations and partition creation), six clients posting 10-span traces alternately to both (every fifth trace re-sent to the other replica), every worker on a 0.5 s interval, an agent budget of $0.10 with thresholds 50/80/100 % breached by the load's LLM spans, and a webhook channel to a loopback sink (plus a test event through alternating replicas every ~100 ms during the load); ${seconds} s of load, ${wall.toFixed(0)} s in all, exit ${code}. The test file asserts each line below; the figures are what it measured.`,
  '',
  r ? table(['measure', 'value'], [
    ['requests / traces acked / refused', `${fmtInt(r.requests)} / ${fmtInt(r.tracesAcked)} / ${fmtInt(r.refused)}`],
    ['spans stored', fmtInt(r.spansStored)],
    ['duplicate spans', fmtInt(r.duplicates)],
    ['trace summaries off by a re-send', fmtInt(r.badSummaries)],
    ['locked runs checked / overlapping', `${fmtInt(r.lockedRuns)} / ${fmtInt(r.overlaps)}`],
    ['error log lines (both replicas)', fmtInt(r.logErrors)],
    ['budget crossings', thresholds || 'none'],
    ['webhook deliveries (of which test events) / sink requests / delivered twice', `${fmtInt(r.deliveries)} (${fmtInt(r.testEvents)}) / ${fmtInt(r.sinkRequests)} / ${fmtInt(r.deliveredTwice)}`],
  ]) : 'The test wrote no report.',
  '',
  workers.length ? table(['worker', 'runs', 'skipped (lock held elsewhere)', 'failures', 'replicas that ran it'],
    workers.map(([w, x]) => [w, fmtInt(x.runs), fmtInt(x.skips), fmtInt(x.failures), x.replicas.join(', ')])) : '',
  failure ? `\nFailure:\n\n\`\`\`\n${failure}\n\`\`\`` : '',
].join('\n');

const met = code === 0 && r !== undefined;
const figures = [
  { label: `Soak: spans ingested through 2 replicas in ${seconds} s`, value: fmtInt(r?.spansStored), target: 'every acked span stored once', met },
  { label: 'Soak: duplicate spans / overlapping locked runs / error log lines / webhooks delivered twice', value: r ? `${r.duplicates} / ${r.overlaps} / ${r.logErrors} / ${r.deliveredTwice}` : 'n/a', target: '0 / 0 / 0 / 0', met: met && r.duplicates === 0 && r.overlaps === 0 && r.logErrors === 0 && r.deliveredTwice === 0 },
  { label: 'Soak: worker runs, both replicas (all but webhook_sweeper advisory-locked)', value: workers.map(([w, x]) => `${w.replace(/_task$/, '')} ${fmtInt(x.runs)}`).join(', ') || 'n/a', target: 'each runs, never concurrently', met },
];
writeResult('soak', { title: 'Multi-replica soak (2 receivers, 2 min)', figures, markdown, raw: { seconds, wall, code, report: r } });
process.exit(met ? 0 : 1);
