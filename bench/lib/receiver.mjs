// The real receiver as a separate process (`node receiver/dist/main.js`), so its RSS and CPU are its own.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../receiver/dist/db/embedded.js';
import { ROOT } from './report.mjs';
import { sleep, spawnNode, stopChild } from './proc.mjs';

export const RECEIVER_MAIN = path.join(ROOT, 'receiver', 'dist', 'main.js');

/** Settings every benchmark receiver gets: no rate limit, no gRPC, quiet logs. Caller's env wins. */
export const BENCH_RECEIVER_ENV = {
  STRATHON_HOST: '127.0.0.1',
  STRATHON_GRPC_ENABLED: 'false',
  STRATHON_RATE_LIMIT_ENABLED: 'false',
  STRATHON_LOG_LEVEL: 'warn',
  STRATHON_LOG_FORMAT: 'json',
  STRATHON_SEED_DEV_KEY: 'false',
};

function tail(file, lines = 8) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Spawn a receiver and wait for `GET /ready` 200. Its cwd is the temp dir so a developer's .env
 * does not leak into the measurement. Returns timings from spawn to first listening/ready answer.
 */
export async function spawnReceiver({ env, nodeArgs = [], logPath, readyTimeoutMs = 90_000 }) {
  const port = await freePort();
  // e.g. BENCH_RECEIVER_NODE_ARGS="--max-old-space-size=160" to try V8 heap settings.
  const extra = (process.env.BENCH_RECEIVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = spawnNode([...extra, ...nodeArgs, RECEIVER_MAIN], {
    cwd: tmpdir(), logPath,
    // MALLOC_ARENA_MAX=2 as the product runs it (receiver/Dockerfile, scripts/start.mjs); set it to
    // another value in the environment to measure without.
    env: { MALLOC_ARENA_MAX: '2', ...process.env, ...BENCH_RECEIVER_ENV, PORT: String(port), ...env },
  });
  const readyMs = await waitReady(url, child, t0, readyTimeoutMs, logPath);
  return { child, pid: child.pid, url, port, readyMs, stop: (graceMs) => stopChild(child, graceMs) };
}

/** Status of a GET (plain http, a fresh connection each time: nothing lingers while polling). */
function getStatus(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function waitReady(url, child, t0, timeoutMs, logPath) {
  while (performance.now() - t0 < timeoutMs) {
    if (child.exitInfo) throw new Error(`receiver exited before ready (${JSON.stringify(child.exitInfo)}):\n${tail(logPath)}`);
    try {
      const status = await getStatus(`${url}/ready`);
      if (status === 200) return performance.now() - t0;
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  await stopChild(child, 2000);
  throw new Error(`receiver not ready within ${timeoutMs} ms:\n${tail(logPath)}`);
}

/** Selected counters/histograms from /metrics, summed over labels. */
export async function scrapeMetrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('strathon_') && !line.startsWith('process_') && !line.startsWith('nodejs_')) continue;
    const m = /^([a-z_]+)(?:\{[^}]*\})?\s+([-0-9.eE+]+|NaN)$/.exec(line);
    if (!m) continue;
    if (m[1].endsWith('_bucket')) continue;
    out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

/** Differences of the writer's metrics over a window: batch size, requests per commit, commit time. */
export function writerStats(before, after, seconds, writers) {
  const d = (k) => (after[k] ?? 0) - (before[k] ?? 0);
  const batches = d('strathon_ingest_batch_spans_count');
  return {
    batches,
    spansPerBatch: batches ? d('strathon_ingest_batch_spans_sum') / batches : NaN,
    requestsPerBatch: batches ? d('strathon_ingest_batch_requests_sum') / batches : NaN,
    commitMs: batches ? (d('strathon_ingest_commit_duration_seconds_sum') / batches) * 1000 : NaN,
    // Fraction of the window the writer connections spent inside a commit (1.0 = always busy).
    writerBusy: d('strathon_ingest_commit_duration_seconds_sum') / (seconds * writers),
    refused: d('strathon_ingest_requests_refused_total'),
  };
}
