// Public face of ingest: bytes of an OTLP request → committed spans (or a typed error).
import type pg from 'pg';
import { Unavailable } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { decodeJson, decodeProtobuf, type ExportRequestShape, type WireFormat } from './otlp-wire.js';
import { normalizeRequest, type SpanRow } from './normalize.js';
import { PriceBook } from './prices.js';
import type { PriceLookup } from './genai.js';
import { IngestWriter } from './writer.js';

export { readBody, decompress, parseContentEncoding } from './body.js';
export { encodeExportResponse, encodeStatus, rpcCodeForHttp, type WireFormat } from './otlp-wire.js';
export { IngestWriter } from './writer.js';

export interface IngestResult { accepted: number; rejected: number; sampledOut: number; errorMessage: string }

export interface IngestDeps {
  pool: pg.Pool; writer: IngestWriter; prices: PriceBook; metrics: Metrics; log: Logger; samplingRate: number;
  /** Called with each request's spans once they are committed, without waiting for it (policy
   *  evaluation, SPEC §8.1): it must return at once and never throw; the answer does not wait for it. */
  afterCommit?: (projectId: string, spans: SpanRow[]) => void;
  /** Asked synchronously per request before queueing: false = the afterCommit hook does not want this
   *  project's spans now, so the rows are not kept alive while the commit is awaited (RSS under load). */
  afterCommitWants?: (projectId: string) => boolean;
  /** Called at shutdown once the writer has drained: finish what the hook has queued, within the time given. */
  afterCommitDrain?: (timeoutMs: number) => Promise<void>;
}

export function createIngest(pool: pg.Pool, opts: { samplingRate: number; maxQueueSpans: number; maxQueueBytes: number; maxBatchSpans: number; writers: number; metrics: Metrics; log: Logger }): IngestDeps {
  const writer = new IngestWriter(pool, { maxQueueSpans: opts.maxQueueSpans, maxQueueBytes: opts.maxQueueBytes, maxBatchSpans: opts.maxBatchSpans, writers: opts.writers, log: opts.log, metrics: opts.metrics });
  return { pool, writer, prices: new PriceBook(pool), metrics: opts.metrics, log: opts.log, samplingRate: opts.samplingRate };
}

export function decodeRequest(format: WireFormat, body: Buffer): ExportRequestShape {
  return format === 'json' ? decodeJson(body) : decodeProtobuf(body);
}

/** Decode, validate and normalize, then wait for the group commit. Resolves only after COMMIT. */
export async function ingestDecoded(deps: IngestDeps, projectId: string, request: ExportRequestShape, _wireBytes: number): Promise<IngestResult> {
  let prices;
  try {
    prices = await deps.prices.forProject(projectId);
  } catch {
    throw new Unavailable('database unavailable, retry later', 2);
  }
  const queued = queueRequest(deps, projectId, request, prices);
  await queued.committed;
  if (deps.afterCommit && queued.spans) {
    try {
      deps.afterCommit(projectId, queued.spans);
    } catch (err) {
      deps.log.warn({ err, project_id: projectId }, 'afterCommit hook failed; the spans are committed');
    }
  }
  return queued.result;
}

/**
 * Normalize and queue for the group commit. Returns only what is needed once committed, so the rows
 * are not kept alive while the commit is awaited (the writer holds them as COPY text), unless the
 * afterCommit hook wants this project's spans.
 */
function queueRequest(deps: IngestDeps, projectId: string, request: ExportRequestShape, prices: PriceLookup) {
  const batch = normalizeRequest(request, { projectId, samplingRate: deps.samplingRate, prices });
  for (const [reason, n] of batch.rejectReasons) deps.metrics.spansRejected.inc({ reason }, n);
  if (batch.sampledOut) deps.metrics.spansSampledOut.inc(batch.sampledOut);
  const errorMessage = batch.rejected
    ? `${batch.rejected} span(s) rejected: ${batch.firstErrors.join('; ')}${batch.rejected > batch.firstErrors.length ? '; …' : ''}`
    : '';
  return {
    committed: deps.writer.submit(batch.spans, batch.events, batch.links),
    spans: deps.afterCommit && batch.spans.length && (deps.afterCommitWants?.(projectId) ?? true) ? batch.spans : undefined,
    result: { accepted: batch.spans.length, rejected: batch.rejected, sampledOut: batch.sampledOut, errorMessage } satisfies IngestResult,
  };
}
