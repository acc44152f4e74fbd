// The ingest benchmark's section of RESULTS.md: tables, the bottleneck verdict, the RSS story.
import os from 'node:os';
import { fmtInt, fmtMB, fmtMs, fmtPct, table } from './report.mjs';

export const configName = (c) => `${c.protocol}${c.gzip ? '+gzip' : ''}, ${c.clients} client${c.clients > 1 ? 's' : ''}`;

export function usPerSpan(cpu, spansPerS) {
  return Number.isFinite(cpu) && spansPerS > 0 ? ((cpu / spansPerS) * 1e6).toFixed(0) : 'n/a';
}

/** The best configuration of each encoding (protobuf, protobuf+gzip, json, json+gzip). */
export function bestPerEncoding(matrix) {
  const by = new Map();
  for (const m of matrix) {
    const k = `${m.protocol}${m.gzip}`;
    if (!by.has(k) || by.get(k).spansPerS < m.spansPerS) by.set(k, m);
  }
  return [...by.values()];
}

/** What limited the best configuration, from the CPU split, the writer's busy share and wait events. */
export function bottleneck(best, copyUsPerSpan) {
  const p = best.probed;
  const w = p.writer;
  const cores = os.cpus().length;
  const pgUs = (p.pgCpu / best.spansPerS) * 1e6;
  const waits = Object.entries(p.waits?.shares ?? {}).slice(0, 4).map(([k, v]) => `${k} ${fmtPct(v)}`).join(', ');
  const verdict = [];
  if (w.writerBusy >= 0.85) {
    verdict.push(`the writer connections were inside a commit ${fmtPct(w.writerBusy)} of the time, so the receiver had no free connection to hand Postgres more work: **the limit is the writer's INSERT statement in Postgres** (${fmtInt(w.spansPerBatch)} spans, ${w.requestsPerBatch.toFixed(1)} requests, ${fmtMs(w.commitMs)} per commit)`);
  } else {
    verdict.push(`the writer connections were busy ${fmtPct(w.writerBusy)} of the time (not saturated)`);
  }
  if ((p.receiverCpu ?? 0) >= 0.9) verdict.push(`the receiver's event-loop thread was saturated (${fmtPct(p.receiverCpu)} of a core)`);
  if (p.machineCpu >= 0.85 * cores) {
    verdict.push(`the machine's ${cores} cores were saturated (${fmtPct(p.machineCpu / cores)} busy: receiver ${fmtPct(p.receiverCpu)}, Postgres ${fmtPct(p.pgCpu)}, load generator ${fmtPct(p.clientCpu)}, other processes ${fmtPct(p.otherCpu)} of a core), so the writer backends also waited for a CPU`);
  }
  return `**What limits throughput at max load** (${configName(best)}): ${verdict.join('; ')}. Writer backends sampled in pg_stat_activity: ${waits || 'n/a'} ("CPU" = running or runnable, no wait event). Postgres CPU per span: ${Number.isFinite(pgUs) ? pgUs.toFixed(0) : 'n/a'} µs through the receiver's statement vs ${Number.isFinite(copyUsPerSpan) ? copyUsPerSpan.toFixed(0) : 'n/a'} µs for raw COPY (${(pgUs / copyUsPerSpan).toFixed(1)}×); the receiver process spends ${usPerSpan(p.receiverCpu, best.spansPerS)} µs of CPU per span (decode, normalize, JSON for the statement; see the CPU profile).`;
}

export function renderIngest(d) {
  const { opts, tuning: t, sizes, captured, scaling, matrix, best, latency, floor, rss, soak, shutdownMs, exit } = d;
  const cores = os.cpus().length;
  const out = [];
  out.push(`Load: the real OpenTelemetry JS exporters (\`exporter-trace-otlp-proto\` / \`-http\` 0.223) called with pre-built ReadableSpan batches of ${opts.batchSpans} spans (${opts.batchSpans / 10} GenAI agent traces: 1 invoke_agent root, 5 chat spans with model and token counts, 4 execute_tool spans; fresh trace ids per request), one exporter per client. Request size: protobuf ${fmtInt(sizes.protobuf / 1024)} KB (gzip ${fmtInt(sizes.protobufGzip / 1024)} KB), JSON ${fmtInt(sizes.json / 1024)} KB (gzip ${fmtInt(sizes.jsonGzip / 1024)} KB).`);
  out.push('');
  out.push(`Receiver: \`node receiver/dist/main.js\` as its own process, rate limit off, gRPC off, writers ${t.writers}, batch max ${fmtInt(t.batchMaxSpans)} spans, queue max ${fmtInt(t.queueMaxSpans)} spans. Tables emptied and checkpointed before each configuration; ${opts.warmup} s warm-up, then ${opts.seconds} s measured, closed loop (each client sends its next request after the answer).`);
  out.push('');
  out.push(`Ceiling: \`COPY telemetry.spans FROM STDIN\` (pg-copy-streams) of the ${captured.rows} rows the receiver stored for the template (read back from its table with COPY TO, trace ids replaced per copy), in ${fmtInt(t.batchMaxSpans)}-row statements over ${t.writers} connections (the receiver's writer count), into a fresh migrated database on the same server; rows are encoded before the clock starts, so only Postgres is timed. Because the machine is shared and its load drifts, a COPY ceiling of ${fmtInt(opts.adjacentRows)} rows is measured **immediately before each configuration** and that configuration's ratio uses it. The receiver does more per span than COPY: ON CONFLICT de-duplication and the \`telemetry.traces\` summary upsert in the same statement.`);
  out.push('');
  out.push(`COPY scaling at the start (${fmtInt(opts.copyRows)} rows each):`);
  out.push('');
  out.push(table(['streams', 'spans/s', 'MB/s', 'Postgres CPU', 'Postgres µs/span', 'other processes CPU'], scaling.map((c) => [
    c.streams, fmtInt(c.spansPerS), c.mbPerS.toFixed(1), fmtPct(c.pgCpu), usPerSpan(c.pgCpu, c.spansPerS), fmtPct(c.otherCpu),
  ])));
  out.push('');
  out.push(`CPU columns are % of one core (the machine has ${cores}): receiver = its process, Postgres = postmaster and its live backends, client = this benchmark process (the exporters: serialization, gzip), others = everything else on the machine. µs/span = CPU time per acknowledged span. Commit figures and "writers busy" (share of the window the ${t.writers} writer connections spent inside a commit; 100 % = always; a commit counts whole in the window it ends in, so long commits can push it a little past 100 %) come from the receiver's /metrics.`);
  out.push('');
  out.push(table(
    ['configuration', 'spans/s', 'COPY just before', 'ratio', 'failed exports', 'request p50 / p99', 'receiver CPU', 'Postgres CPU', 'client CPU', 'others CPU', 'receiver µs/span', 'Postgres µs/span (COPY)', 'spans / commit', 'requests / commit', 'commit time', 'writers busy'],
    matrix.map((m) => [
      configName(m), fmtInt(m.spansPerS), fmtInt(m.copy.spansPerS), fmtPct(m.ratio), m.failed, `${fmtMs(m.p50)} / ${fmtMs(m.p99)}`,
      fmtPct(m.probed.receiverCpu), fmtPct(m.probed.pgCpu), fmtPct(m.probed.clientCpu), fmtPct(m.probed.otherCpu),
      usPerSpan(m.probed.receiverCpu, m.spansPerS), `${usPerSpan(m.probed.pgCpu, m.spansPerS)} (${usPerSpan(m.copy.pgCpu, m.copy.spansPerS)})`,
      fmtInt(m.probed.writer.spansPerBatch), m.probed.writer.requestsPerBatch.toFixed(1), fmtMs(m.probed.writer.commitMs), fmtPct(m.probed.writer.writerBusy),
    ]),
  ));
  out.push('');
  out.push(`Max load: **${fmtInt(best.spansPerS)} spans/s** (${configName(best)}) = ${fmtPct(best.ratio)} of the COPY measured just before it (${fmtInt(best.copy.spansPerS)} spans/s).`);
  out.push('');
  const copyUs = median(matrix.map((m) => m.copy.pgCpu / m.copy.spansPerS).filter(Number.isFinite)) * 1e6;
  out.push(bottleneck(best, copyUs));
  out.push('');
  out.push(`**Ack latency** (open loop: ${latency.ratePerS.toFixed(1)} requests/s × ${opts.batchSpans} spans = 50 % of max load, for ${opts.latencySeconds} s, ${best.protocol}${best.gzip ? '+gzip' : ''}; time from each request's scheduled send to its 200, through the exporter, so it includes client-side serialization): p50 ${fmtMs(latency.p50)}, p90 ${fmtMs(latency.p90)}, p99 ${fmtMs(latency.p99)}, max ${fmtMs(latency.max)} over ${latency.requests} requests (${latency.failed} failed); from the actual call p50 ${fmtMs(latency.p50Send)}, p99 ${fmtMs(latency.p99Send)}; worst scheduling lag of the load generator ${fmtMs(latency.maxLag)}; CPU during the run: receiver ${fmtPct(latency.cpu.receiverCpu)}, Postgres ${fmtPct(latency.cpu.pgCpu)}, other processes ${fmtPct(latency.cpu.otherCpu)}. Floor: one request's ${captured.rows} rows by raw COPY + commit, one after another, p50 ${fmtMs(floor.p50)}, p99 ${fmtMs(floor.p99)}.`);
  out.push('');
  const mb = (b) => (b / 1024 / 1024).toFixed(0);
  out.push(`**RSS** (VmRSS of the receiver process every second for ${opts.soakSeconds} s at max load after a 5 s warm-up: ${configName(soak)}, the best encoding with the most clients, i.e. writers saturated and the most requests in flight; ${fmtInt(soak.spansPerS)} spans/s sustained, ${fmtPct(soak.ratio)} of the COPY just before it (${fmtInt(soak.copy.spansPerS)} spans/s), ${soak.failed} failed exports): idle after boot ${fmtMB(rss.idle)}, after the matrix ${fmtMB(rss.afterMatrix)}, max ${fmtMB(rss.max)}; first-quarter mean ${fmtMB(rss.firstQuarter)}, last-quarter mean ${fmtMB(rss.lastQuarter)} (${rss.trend >= 0 ? '+' : ''}${fmtPct(rss.trend)}). V8 heap (receiver /metrics): used max ${fmtMB(rss.heapUsedMax)}, total max ${fmtMB(rss.heapTotalMax)}, external max ${fmtMB(rss.externalMax)}; post-GC heap troughs last vs first quarter ${rss.heapTroughTrend >= 0 ? '+' : ''}${fmtPct(rss.heapTroughTrend)} (a leak would show as rising troughs). \`BENCH_SOAK_SECONDS=300\` gives the spec's 5 minutes.`);
  out.push('');
  out.push(`RSS samples (MB): ${rss.samples.map(mb).join(' ')}`);
  out.push('');
  out.push(`Heap used samples (MB): ${rss.heapUsed.map(mb).join(' ')}`);
  out.push('');
  out.push(`Spans acknowledged in each second of the soak: ${soak.perSecond.map((n) => fmtInt(n)).join(' ')}`);
  out.push('');
  out.push(`Graceful shutdown after the soak (SIGTERM → exit): ${fmtMs(shutdownMs)}, exit ${JSON.stringify(exit)}.`);
  return out.join('\n');
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}
