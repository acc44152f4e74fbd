// Decoder fuzzing at scale (SPEC §15, issue "prove the promises"): the fixed-seed fuzz properties of
// receiver/test/ingest/fuzz.test.ts — arbitrary bytes as protobuf and JSON, truncated and bit-flipped
// valid requests, a random wrong-typed value at a random JSON path — with FUZZ_RUNS per property (default
// 20,000 × 5 = 10^5 requests), FUZZ_CONCURRENCY requests in flight (default 8; one shard per slot, each
// with its own seed offset) and a fresh random seed, against the real receiver (its own process,
// `node receiver/dist/main.js`) and Postgres. Never a 5xx, never a crash, the receiver's RSS and
// retained heap bounded: the test file asserts all of that itself; this script runs it and records the outcome.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT, fmtInt, progress, table, writeResult } from './lib/report.mjs';

const runs = Number(process.env.BENCH_FUZZ_RUNS ?? 20_000);
const concurrency = Number(process.env.BENCH_FUZZ_CONCURRENCY ?? 2);
/** Properties of the test file whose run count is FUZZ_RUNS. */
const PROPERTIES = 5;
const seed = Number(process.env.BENCH_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
progress(`fuzz: ${fmtInt(runs)} runs per property × ${PROPERTIES}, ${concurrency} in flight, seed ${seed}`);
const t0 = Date.now();
let out = '';
const code = await new Promise((resolve) => {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/test.mjs'), 'ingest/fuzz.test'], {
    cwd: ROOT, env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SEED: String(seed), FUZZ_CONCURRENCY: String(concurrency), TEST_CONCURRENCY: '1' },
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
// What failed and the memory line of the last test ("receiver peak RSS …"), for the report.
const failure = code === 0 ? '' : (out.split('\n').filter((l) => /✖|AssertionError|Error:|RSS peaked/.test(l)).slice(0, 12).join('\n') || out.slice(-2000));
if (code !== 0) process.stderr.write(`${out.slice(-20_000)}\n`);
const memory = /receiver peak RSS[^\n]*/.exec(out)?.[0] ?? '';
const lines = out.split('\n').filter((l) => /^[✔✖]/.test(l.trim())).map((l) => l.trim());
const requests = runs * PROPERTIES;
const markdown = [
  `Seed ${seed}; ${fmtInt(runs)} runs for each of the ${PROPERTIES} scaled properties (arbitrary bytes as protobuf, as JSON; truncated and bit-flipped valid protobuf; a random wrong-typed value at a random path of a rich JSON request) = ${fmtInt(requests)} requests, ${concurrency} in flight at once (each property split into ${concurrency} shards, shard k with seed + k × 1000), ${fmtInt(requests / seconds)} requests/s, plus the file's fixed structural cases (deep nesting, huge strings, wrong JSON types in every field, NUL/lone surrogates, invalid UTF-8). The receiver runs as its own process: every answer must be 200/400/413 with a decodable body, its /metrics must count no 5xx, /health must keep answering, its VmRSS (sampled every 20 ms) must stay under 250 MiB and its heap retained after a full GC must not grow by 32 MiB, and it must exit 0 on SIGTERM — asserted by the test file itself. ${seconds.toFixed(0)} s, exit ${code}.`,
  '',
  memory ? `Memory: ${memory}.\n` : '',
  table(['property', 'outcome'], lines.map((l) => [l.slice(1).replace(/\(\d+(\.\d+)?ms\)$/, '').trim(), l.startsWith('✔') ? 'pass' : 'FAIL'])),
  failure ? `\nFailure:\n\n\`\`\`\n${failure}\n\`\`\`` : '',
].join('\n');
writeResult('fuzz', {
  title: 'Decoder fuzzing (10^5 cases)',
  figures: [{ label: `Fuzz: ${fmtInt(requests)} mutated/arbitrary requests (seed ${seed})`, value: `${pass} properties passed, ${fail} failed`, target: 'no 5xx, no crash, bounded memory', met: code === 0 && fail === 0 }],
  markdown,
  raw: { seed, runs, properties: PROPERTIES, concurrency, requests, code, pass, fail, seconds, memory, failure },
});
process.exit(code === 0 ? 0 : 1);
