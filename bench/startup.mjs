// SPEC §15: cold start to `/ready` 200 with embedded Postgres, first run (empty data dir) and
// later runs (reused data dir), against bare embedded-Postgres start + module load (the bound).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort, startEmbeddedPostgres } from '../receiver/dist/db/embedded.js';
import { log } from './lib/pg.mjs';
import { benchMain, onCleanup } from './lib/proc.mjs';
import { RECEIVER_MAIN, spawnReceiver } from './lib/receiver.mjs';
import { fmtMs, median, OUT, progress, table, writeResult } from './lib/report.mjs';

const WARM_RUNS = Number(process.env.BENCH_STARTUP_WARM_RUNS ?? 3);
const TARGET_MS = 3000;

/** Stop an embedded Postgres a killed receiver left behind (its pid is in postmaster.pid). */
function killOrphanPostgres(dataDir) {
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    // already gone
  }
}

/** Log lines of one run, for the boot breakdown (the receiver logs embedded-PG and migration timings). */
function bootEvents(logPath, from) {
  const lines = readFileSync(logPath, 'utf8').slice(from).split('\n').filter((l) => l.startsWith('{'));
  const events = {};
  for (const l of lines) {
    try {
      const j = JSON.parse(l);
      if (j.msg === 'embedded Postgres ready') events.embeddedPgMs = j.duration_ms;
      if (j.msg === 'migrations applied') events.migrations = j.applied?.length;
    } catch {
      // not a log line
    }
  }
  return events;
}

await benchMain(async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'strathon-bench-startup-'));
  onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  onCleanup(() => killOrphanPostgres(dataDir));
  const logPath = path.join(OUT, 'startup-receiver.log');
  rmSync(logPath, { force: true });
  const pgPort = await freePort();
  const env = {
    DATABASE_URL: '', STRATHON_DATA_DIR: dataDir, STRATHON_EMBEDDED_PG_PORT: String(pgPort), STRATHON_LOG_LEVEL: 'info',
  };

  const runs = [];
  for (let i = 0; i <= WARM_RUNS; i++) {
    const from = existsSync(logPath) ? readFileSync(logPath, 'utf8').length : 0;
    const r = await spawnReceiver({ env, logPath, readyTimeoutMs: 120_000 });
    const t0 = performance.now();
    const exit = await r.stop(15_000);
    const stopMs = performance.now() - t0;
    runs.push({ run: i + 1, dataDir: i === 0 ? 'empty' : 'reused', readyMs: r.readyMs, stopMs, exit, ...bootEvents(logPath, from) });
    progress(`startup run ${i + 1} (${i === 0 ? 'empty' : 'reused'} data dir): ready in ${fmtMs(r.readyMs)}`);
  }

  // Bound: the embedded Postgres alone on the same (reused) data dir, start to accepting queries.
  const bare = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    const t0 = performance.now();
    const pg = await startEmbeddedPostgres({ dataDir, port: pgPort, log, database: 'strathon' });
    bare.push(performance.now() - t0);
    await pg.stop();
  }
  // And a node process that only loads the receiver's modules (main.js's imports), then exits.
  const receiverModule = path.join(path.dirname(RECEIVER_MAIN), 'receiver.js');
  const imports = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(receiverModule)})`], { stdio: 'ignore' });
    imports.push(performance.now() - t0);
  }
  const warm = runs.slice(1).map((r) => r.readyMs);
  const bound = median(bare) + median(imports);
  progress(`bare embedded Postgres start ${fmtMs(median(bare))} + node loading the receiver's modules ${fmtMs(median(imports))}`);

  const second = runs[1];
  const figures = [
    { label: 'Startup to /ready, first run (empty data dir: initdb + migrations)', value: fmtMs(runs[0].readyMs), bound: `PG + module load ${fmtMs(bound)}`, ratio: `${(runs[0].readyMs / bound).toFixed(1)}×`, target: '—' },
    { label: 'Startup to /ready, second run (reused data dir)', value: fmtMs(second.readyMs), bound: `PG + module load ${fmtMs(bound)}`, ratio: `${(second.readyMs / bound).toFixed(1)}×`, target: '< 3 s', met: second.readyMs < TARGET_MS },
    { label: `Startup to /ready, reused data dir, median of ${warm.length}`, value: fmtMs(median(warm)), bound: `PG + module load ${fmtMs(bound)}`, ratio: `${(median(warm) / bound).toFixed(1)}×`, target: '< 3 s', met: median(warm) < TARGET_MS },
  ];
  const markdown = [
    `\`node receiver/dist/main.js\` spawned with \`STRATHON_DATA_DIR\` = a new temp dir, a free \`PORT\` and \`STRATHON_EMBEDDED_PG_PORT\`, \`STRATHON_GRPC_ENABLED=false\`, no \`DATABASE_URL\`; time from spawn to the first \`GET /ready\` 200 (polled every 10 ms), then SIGTERM and wait for exit. Run 1 initialises the cluster and applies migrations; runs 2–${WARM_RUNS + 1} reuse the data dir. Bound (the parts a receiver cannot skip): \`startEmbeddedPostgres\` alone on the same data dir (start → accepting queries) plus a \`node\` process that only imports \`receiver/dist/receiver.js\` and exits, medians of ${bare.length}.`,
    '',
    table(['run', 'data dir', 'ready', 'of which embedded PG (receiver log)', 'migrations applied', 'graceful stop', 'exit'], runs.map((r) => [
      r.run, r.dataDir, fmtMs(r.readyMs), fmtMs(r.embeddedPgMs), r.migrations ?? 0, fmtMs(r.stopMs), r.exit.code ?? r.exit.signal,
    ])),
    '',
    `Bare embedded Postgres start on the reused dir: ${bare.map(fmtMs).join(', ')}. Node importing the receiver's modules: ${imports.map(fmtMs).join(', ')}.`,
  ].join('\n');
  writeResult('startup', { title: 'Startup with embedded Postgres', postgres: {}, figures, markdown, raw: { runs, bare, imports } });
});
