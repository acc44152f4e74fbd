// CPU profile of the receiver's ingest path under load (`node --cpu-prof`), top functions by self time.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createApiKey, DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { summarizeProfile } from './lib/cpuprofile.mjs';
import { buildTemplateBatch, closedLoop } from './lib/load.mjs';
import { connect, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter } from './lib/proc.mjs';
import { spawnReceiver } from './lib/receiver.mjs';
import { envSeconds, fmtInt, fmtPct, OUT, progress, ROOT, table, writeResult } from './lib/report.mjs';

const SECONDS = envSeconds('BENCH_PROFILE_SECONDS', 20);
const PROTOCOL = process.env.BENCH_PROFILE_PROTOCOL ?? 'protobuf';
const GZIP = (process.env.BENCH_PROFILE_GZIP ?? 'on') === 'on';
const CLIENTS = Number(process.env.BENCH_PROFILE_CLIENTS ?? 16);
const PROFILE_NAME = 'receiver-ingest.cpuprofile';

await benchMain(async () => {
  const server = await startPostgres('profile');
  const url = await server.createDatabase('receiver');
  const profilePath = path.join(OUT, PROFILE_NAME);
  rmSync(profilePath, { force: true });
  const receiver = await spawnReceiver({
    env: { DATABASE_URL: url },
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${OUT}`, `--cpu-prof-name=${PROFILE_NAME}`],
    logPath: path.join(OUT, 'profile-receiver.log'),
  });
  const db = await connect(url);
  const { key } = await createApiKey(db, { projectId: DEFAULT_PROJECT_ID, name: 'bench-profile', scopes: ['traces:write'] });
  const template = await buildTemplateBatch(Number(process.env.BENCH_BATCH_SPANS ?? 200));
  const config = `${PROTOCOL}${GZIP ? '+gzip' : ''}, ${CLIENTS} clients`;
  progress(`profiling the receiver for ${SECONDS} s under load (${config})`);
  const probe = cpuMeter({ receiverPid: receiver.pid, postmasterPid: server.postmasterPid });
  const load = await closedLoop({ url: receiver.url, key, protocol: PROTOCOL, gzip: GZIP, clients: CLIENTS, warmupS: 2, seconds: SECONDS, template, probe });
  const exit = await receiver.stop(20_000);
  if (!existsSync(profilePath)) throw new Error(`no profile written (receiver exit ${JSON.stringify(exit)})`);
  const p = summarizeProfile(profilePath, ROOT);
  progress(`profile: ${p.samples} samples, top: ${p.topSelf.map((e) => `${e.name} ${fmtPct(e.pctBusy)}`).join(', ')}`);

  const fn = (e) => [`\`${e.name}\``, `\`${e.location || '(native)'}\``, fmtPct(e.pctBusy), fmtPct(e.pctTotal)];
  const fnLine = (e) => [...fn(e), e.hottestLine ? `\`${e.hottestLine}\`` : '—'];
  const markdown = [
    `\`node --cpu-prof\` on the receiver process (\`node receiver/dist/main.js\`) for its whole life: boot, ${SECONDS + 2} s of load (${config}, ${template.length}-span GenAI batches through the real exporter; ${fmtInt(load.spansPerS)} spans/s while profiled, receiver CPU ${fmtPct(load.probed.receiverCpu)} of one core, Postgres CPU ${fmtPct(load.probed.pgCpu)}, other processes on the machine ${fmtPct(load.probed.otherCpu)}), graceful shutdown. ${fmtInt(p.samples)} samples over ${p.durationS.toFixed(1)} s, ${fmtPct(p.idle / p.samples)} idle (the main thread waiting: for Postgres, for requests). Percentages are of the non-idle samples (and of all samples). Locations are mapped to the TypeScript sources via the dist source maps. Raw profile: \`bench/out/${PROFILE_NAME}\` (open in Chrome DevTools → Performance, or speedscope).`,
    '',
    `**What dominates the receiver's CPU**: ${p.owners.slice(0, 4).map((o) => `\`${o.owner}\` ${fmtPct(o.pctBusy)}`).join(', ')} of its busy samples; receiver functions by inclusive time: ${p.topReceiverInclusive.filter((e) => !['(anonymous)', 'pump', 'runBatch', 'decodeRequest'].includes(e.name)).slice(0, 4).map((e) => `\`${e.name}\` ${fmtPct(e.pctBusy)}`).join(', ')}.`,
    '',
    '**Top 5 functions by self time**',
    '',
    table(['function', 'location', '% of busy', '% of all', 'hottest line'], p.topSelf.map(fnLine)),
    '',
    '**Self time by owner** (file of the receiver, npm package, node internals, V8)',
    '',
    table(['owner', '% of busy'], p.owners.map((o) => [`\`${o.owner}\``, fmtPct(o.pctBusy)])),
    '',
    '**Receiver functions by inclusive time** (self + callees)',
    '',
    table(['function', 'location', '% of busy', '% of all'], p.topReceiverInclusive.map(fn)),
    '',
    '<details><summary>Top 20 by self time</summary>',
    '',
    table(['function', 'location', '% of busy', '% of all', 'hottest line'], p.topSelf20.map(fnLine)),
    '',
    '</details>',
  ].join('\n');
  const top = p.topSelf[0];
  const figures = [{
    label: `CPU profile under load (${config}): top self-time function`, value: `\`${top.name}\` ${fmtPct(top.pctBusy)}`,
    bound: `${fmtPct(p.idle / p.samples)} of samples idle`, ratio: '—', target: '—',
  }];
  writeResult('profile', { title: 'CPU profile of the ingest path', postgres: { version: server.version, embedded: server.embedded }, figures, markdown, raw: { load: { ...load, latencies: undefined }, profile: p, exit } });
});
