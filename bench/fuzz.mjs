// Decoder fuzzing at scale (SPEC §15, issue "prove the promises"): the fixed-seed fuzz properties of
// receiver/test/ingest/fuzz.test.ts — arbitrary bytes as protobuf and JSON, truncated and bit-flipped
// valid requests — with FUZZ_RUNS per byte-level property (default 25,000 × 4 = 10^5 requests) and a
// fresh random seed, against the real receiver and Postgres. Never a 5xx, never a crash, memory bounded:
// the test file asserts all of that itself; this script runs it and records the outcome.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT, fmtInt, progress, table, writeResult } from './lib/report.mjs';

const runs = Number(process.env.BENCH_FUZZ_RUNS ?? 25_000);
const seed = Number(process.env.BENCH_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
progress(`fuzz: ${fmtInt(runs)} runs per byte-level property, seed ${seed}`);
const t0 = Date.now();
let out = '';
const code = await new Promise((resolve) => {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/test.mjs'), 'ingest/fuzz.test'], {
    cwd: ROOT, env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SEED: String(seed), TEST_CONCURRENCY: '1' },
  });
  child.stdout.on('data', (d) => { out += String(d); });
  child.stderr.on('data', (d) => { out += String(d); });
  const stop = () => child.kill('SIGTERM');
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  child.on('exit', (c) => resolve(c ?? 1));
});
const seconds = (Date.now() - t0) / 1000;
const pass = Number(/ℹ pass (\d+)/.exec(out)?.[1] ?? 0);
const fail = Number(/ℹ fail (\d+)/.exec(out)?.[1] ?? 0);
const lines = out.split('\n').filter((l) => /^[✔✖]/.test(l.trim())).map((l) => l.trim());
const requests = runs * 4;
const markdown = [
  `Seed ${seed}; ${fmtInt(runs)} runs for each of the four byte-level properties (arbitrary bytes as protobuf, as JSON; truncated and bit-flipped valid protobuf) = ${fmtInt(requests)} requests, plus the file's fixed structural cases (deep nesting, huge strings, wrong JSON types, NUL/lone surrogates, invalid UTF-8). Every answer must be 200/400/413 with a decodable body, /health must keep answering, and RSS and the retained heap stay bounded — asserted by the test file itself. ${seconds.toFixed(0)} s, exit ${code}.`,
  '',
  table(['property', 'outcome'], lines.map((l) => [l.slice(1).replace(/\(\d+(\.\d+)?ms\)$/, '').trim(), l.startsWith('✔') ? 'pass' : 'FAIL'])),
].join('\n');
writeResult('fuzz', {
  title: 'Decoder fuzzing (10^5 cases)',
  figures: [{ label: `Fuzz: ${fmtInt(requests)} mutated/arbitrary requests (seed ${seed})`, value: `${pass} properties passed, ${fail} failed`, target: 'no 5xx, no crash, bounded memory', met: code === 0 && fail === 0 }],
  markdown,
  raw: { seed, runs, code, pass, fail, seconds },
});
process.exit(code === 0 ? 0 : 1);
