// SPEC §15: ingest spans/s end to end vs raw COPY of the same rows (the ceiling, same run), ack
// latency p50/p99 at 50 % of the max load, and receiver RSS under sustained max load.
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { createApiKey, DEFAULT_PROJECT_ID } from '../receiver/dist/auth/keys.js';
import { capturedRows, copyLatency, copyThroughput } from './lib/ceiling.mjs';
import { bestPerEncoding, configName, renderIngest } from './lib/ingest-report.mjs';
import { buildTemplateBatch, closedLoop, makeExporter, openLoop, requestBytes } from './lib/load.mjs';
import { connect, migrate, receiverDefaults, resetTelemetry, sampleWaits, startPostgres } from './lib/pg.mjs';
import { benchMain, cpuMeter, rssBytes } from './lib/proc.mjs';
import { scrapeMetrics, spawnReceiver, writerStats } from './lib/receiver.mjs';
import { envSeconds, fmtInt, fmtMB, fmtMs, fmtPct, mean, OUT, percentile, progress, writeResult } from './lib/report.mjs';

const opts = {
  seconds: envSeconds('BENCH_INGEST_SECONDS', 5),
  warmup: envSeconds('BENCH_WARMUP_SECONDS', 1.5),
  latencySeconds: envSeconds('BENCH_LATENCY_SECONDS', 20),
  soakSeconds: envSeconds('BENCH_SOAK_SECONDS', 60),
  batchSpans: Number(process.env.BENCH_BATCH_SPANS ?? 200),
  copyRows: Number(process.env.BENCH_COPY_ROWS ?? 60_000),
  adjacentRows: Number(process.env.BENCH_COPY_ADJACENT_ROWS ?? 20_000),
  protocols: (process.env.BENCH_PROTOCOLS ?? 'protobuf,json').split(','),
  gzip: (process.env.BENCH_GZIP ?? 'off,on').split(',').map((v) => v === 'on'),
  clients: (process.env.BENCH_CLIENTS ?? '1,4,16,64').split(',').map(Number),
};
const RATIO_TARGET = 0.6;
const P99_TARGET_MS = 100;
const RSS_TARGET = 250 * 1024 * 1024;

await benchMain(async () => {
  const t = receiverDefaults();
  const tuning = { writers: t.ingestWriters, batchMaxSpans: t.ingestBatchMaxSpans, queueMaxSpans: t.ingestQueueMaxSpans, queueMaxBytes: t.ingestQueueMaxBytes };
  const server = await startPostgres('ingest');
  progress(`Postgres ${server.version} (${server.embedded ? 'embedded' : 'DATABASE_URL'})`);
  const receiverUrl = await server.createDatabase('receiver');
  const ceilingUrl = await server.createDatabase('ceiling');
  await migrate(ceilingUrl);

  const receiver = await spawnReceiver({ env: { DATABASE_URL: receiverUrl }, logPath: path.join(OUT, 'ingest-receiver.log') });
  const idleRss = rssBytes(receiver.pid);
  const db = await connect(receiverUrl);
  const { key } = await createApiKey(db, { projectId: DEFAULT_PROJECT_ID, name: 'bench', scopes: ['traces:write'] });

  const template = await buildTemplateBatch(opts.batchSpans);
  const sizes = {
    ...requestBytes(template),
    protobufGzip: gzipSync(ProtobufTraceSerializer.serializeRequest(template)).byteLength,
    jsonGzip: gzipSync(JsonTraceSerializer.serializeRequest(template)).byteLength,
  };

  // The receiver's own rows for the template, captured from its table: what the ceiling COPYs.
  await resetTelemetry(db);
  const one = makeExporter(receiver.url, key, 'protobuf', false);
  const first = await new Promise((r) => one.export(template, r));
  await one.shutdown();
  if (first.code !== 0) throw new Error(`template export failed: ${first.error?.message}`);
  const captured = await capturedRows(db, new Set(template.map((s) => s.spanContext().traceId)));
  if (captured.rows !== template.length) throw new Error(`receiver stored ${captured.rows} of ${template.length} template spans`);

  const copy = (totalRows, streams) => copyThroughput({
    url: ceilingUrl, captured, totalRows, chunkRows: tuning.batchMaxSpans, streams, postmasterPid: server.postmasterPid,
  });
  const scaling = [];
  for (const streams of [...new Set([1, tuning.writers])]) {
    scaling.push(await copy(opts.copyRows, streams));
    progress(`COPY ${streams} stream(s): ${fmtInt(scaling.at(-1).spansPerS)} spans/s`);
  }

  const waitsDb = await connect(receiverUrl);
  const meter = cpuMeter({ receiverPid: receiver.pid, postmasterPid: server.postmasterPid });
  // CPU is read synchronously at the window's edges; /metrics answers late under load, so the
  // writer's counters get their own window, between the midpoints of the two scrapes.
  const scrape = async () => {
    const t0 = performance.now();
    const m = await scrapeMetrics(receiver.url);
    return { m, at: (t0 + performance.now()) / 2 };
  };
  const probe = {
    begin: async () => {
      const metrics = await scrape();
      return { metrics, stopWaits: sampleWaits(waitsDb), cpu: meter.begin() };
    },
    end: async (b, elapsed) => {
      const cpu = meter.end(b.cpu, elapsed);
      const waits = await b.stopWaits();
      const metrics = await scrape();
      return { ...cpu, waits, writer: writerStats(b.metrics.m, metrics.m, (metrics.at - b.metrics.at) / 1000, tuning.writers) };
    },
  };

  const matrix = [];
  for (const protocol of opts.protocols) {
    for (const gzip of opts.gzip) {
      for (const clients of opts.clients) {
        const adjacent = await copy(opts.adjacentRows, tuning.writers);
        await resetTelemetry(db);
        const r = await closedLoop({ url: receiver.url, key, protocol, gzip, clients, warmupS: opts.warmup, seconds: opts.seconds, template, probe });
        const row = {
          protocol, gzip, clients, ...r, latencies: undefined, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99),
          copy: adjacent, ratio: r.spansPerS / adjacent.spansPerS,
        };
        matrix.push(row);
        progress(`${configName(row)}: ${fmtInt(r.spansPerS)} spans/s = ${fmtPct(row.ratio)} of COPY ${fmtInt(adjacent.spansPerS)} (${r.failed} failed); CPU receiver ${fmtPct(r.probed.receiverCpu)} PG ${fmtPct(r.probed.pgCpu)} others ${fmtPct(r.probed.otherCpu)}; writers busy ${fmtPct(r.probed.writer.writerBusy)}`);
      }
    }
  }
  const afterMatrixRss = rssBytes(receiver.pid);
  const best = matrix.reduce((a, b) => (b.spansPerS > a.spansPerS ? b : a));

  // Ack latency, open loop at half the best closed-loop throughput, in the best configuration's encoding.
  await resetTelemetry(db);
  const ratePerS = (best.spansPerS * 0.5) / template.length;
  progress(`latency: ${ratePerS.toFixed(1)} requests/s for ${opts.latencySeconds} s (${best.protocol}${best.gzip ? '+gzip' : ''})`);
  const lb = meter.begin();
  const ol = await openLoop({ url: receiver.url, key, protocol: best.protocol, gzip: best.gzip, ratePerS, seconds: opts.latencySeconds, template });
  const ok = ol.results.filter((r) => r.code === 0);
  const fromDue = ok.map((r) => r.fromDue);
  const latency = {
    ratePerS, spansPerS: (ok.length * template.length) / ol.elapsed, requests: ol.results.length, failed: ol.results.length - ok.length,
    p50: percentile(fromDue, 50), p90: percentile(fromDue, 90), p99: percentile(fromDue, 99), max: Math.max(...fromDue),
    p50Send: percentile(ok.map((r) => r.fromSend), 50), p99Send: percentile(ok.map((r) => r.fromSend), 99),
    maxLag: Math.max(...ol.results.map((r) => r.lag)), cpu: meter.end(lb, ol.elapsed),
  };
  const floorMs = await copyLatency({ url: ceilingUrl, captured, samples: 200 });
  const floor = { p50: percentile(floorMs, 50), p99: percentile(floorMs, 99) };
  progress(`latency p50 ${fmtMs(latency.p50)} p99 ${fmtMs(latency.p99)} (COPY floor p50 ${fmtMs(floor.p50)} p99 ${fmtMs(floor.p99)})`);

  // RSS under sustained max load: the best encoding with the most clients (writers saturated, the
  // most requests in flight: the worst case for memory), after a short warm-up, sampled every second.
  const soakConfig = { protocol: best.protocol, gzip: best.gzip, clients: Math.max(...opts.clients) };
  const soakCopy = await copy(opts.adjacentRows, tuning.writers);
  await resetTelemetry(db);
  const samples = [];
  const heap = [];
  const perSecond = [];
  let lastAcked = 0;
  progress(`soak: ${opts.soakSeconds} s at max load (${configName(soakConfig)})`);
  const soak = await closedLoop({
    url: receiver.url, key, ...soakConfig, warmupS: 5, seconds: opts.soakSeconds, template, probe,
    onSecond: (_s, acked) => {
      samples.push(rssBytes(receiver.pid));
      perSecond.push(acked - lastAcked);
      lastAcked = acked;
      scrapeMetrics(receiver.url).then((m) => heap.push(m), () => undefined);
    },
  });
  Object.assign(soak, soakConfig);
  soak.copy = soakCopy;
  soak.ratio = soak.spansPerS / soakCopy.spansPerS;
  soak.perSecond = perSecond;
  const q = Math.max(1, Math.floor(samples.length / 4));
  const firstQuarter = mean(samples.slice(0, q));
  const lastQuarter = mean(samples.slice(-q));
  const rss = {
    idle: idleRss, afterMatrix: afterMatrixRss, max: Math.max(...samples), firstQuarter, lastQuarter, trend: lastQuarter / firstQuarter - 1, samples,
    heapUsed: heap.map((m) => m.strathon_nodejs_heap_size_used_bytes),
    // Leak check: the heap's post-GC troughs (quarter minimums) should not rise.
    heapTroughTrend: Math.min(...heap.slice(-q).map((m) => m.strathon_nodejs_heap_size_used_bytes)) / Math.min(...heap.slice(0, q).map((m) => m.strathon_nodejs_heap_size_used_bytes)) - 1,
    heapUsedMax: Math.max(...heap.map((m) => m.strathon_nodejs_heap_size_used_bytes ?? NaN)),
    heapTotalMax: Math.max(...heap.map((m) => m.strathon_nodejs_heap_size_total_bytes ?? NaN)),
    externalMax: Math.max(...heap.map((m) => m.strathon_nodejs_external_memory_bytes ?? NaN)),
  };
  progress(`soak: ${fmtInt(soak.spansPerS)} spans/s, RSS max ${fmtMB(rss.max)}, trend ${fmtPct(rss.trend)}`);

  const t0 = performance.now();
  const exit = await receiver.stop(15_000);
  const shutdownMs = performance.now() - t0;

  const figures = [
    ...bestPerEncoding(matrix).map((m) => ({
      label: `Ingest, ${configName(m)} (best of ${opts.clients.join('/')} clients)`, value: `${fmtInt(m.spansPerS)} spans/s`,
      bound: `COPY ${fmtInt(m.copy.spansPerS)} spans/s`, ratio: fmtPct(m.ratio), target: '≥ 60 %', met: m.ratio >= RATIO_TARGET,
    })),
    { label: `Ack latency p50 at 50 % of max load (${fmtInt(latency.spansPerS)} spans/s)`, value: fmtMs(latency.p50), bound: `COPY commit p50 ${fmtMs(floor.p50)}`, ratio: `${(latency.p50 / floor.p50).toFixed(1)}×`, target: '—' },
    { label: 'Ack latency p99 at 50 % of max load', value: fmtMs(latency.p99), bound: `COPY commit p99 ${fmtMs(floor.p99)}`, ratio: `${(latency.p99 / floor.p99).toFixed(1)}×`, target: '< 100 ms', met: latency.p99 < P99_TARGET_MS },
    { label: `Receiver RSS max, ${opts.soakSeconds} s at max load`, value: fmtMB(rss.max), bound: `idle ${fmtMB(idleRss)}`, ratio: `${(rss.max / idleRss).toFixed(1)}× idle`, target: '< 250 MB', met: rss.max < RSS_TARGET },
    { label: 'Receiver RSS trend (last vs first quarter)', value: `${rss.trend >= 0 ? '+' : ''}${fmtPct(rss.trend)}`, bound: `${fmtMB(firstQuarter)} → ${fmtMB(lastQuarter)}`, ratio: '—', target: 'flat (±10 %)', met: Math.abs(rss.trend) <= 0.1 },
    { label: `Sustained ingest during the ${opts.soakSeconds} s soak`, value: `${fmtInt(soak.spansPerS)} spans/s`, bound: `COPY ${fmtInt(soakCopy.spansPerS)} spans/s`, ratio: fmtPct(soak.ratio), target: '≥ 60 %', met: soak.ratio >= RATIO_TARGET },
  ];
  const markdown = renderIngest({ opts, tuning, sizes, captured, scaling, matrix, best, latency, floor, rss, soak, shutdownMs, exit });
  writeResult('ingest', {
    title: 'Ingest throughput, ack latency, RSS', postgres: { version: server.version, embedded: server.embedded }, figures, markdown,
    raw: { opts, tuning, sizes, scaling, matrix, latency, floor, rss, soak: { ...soak, latencies: undefined }, shutdownMs, exit },
  });
});
