// Prometheus metrics (prom-client). One registry per receiver instance so tests can run several.
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'strathon_' });
  const m = {
    registry,
    httpRequests: new Counter({ name: 'strathon_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [registry] }),
    httpDuration: new Histogram({ name: 'strathon_http_request_duration_seconds', help: 'HTTP request duration by route', labelNames: ['route', 'method'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    spansAccepted: new Counter({ name: 'strathon_spans_accepted_total', help: 'Spans committed to Postgres', labelNames: ['protocol'], registers: [registry] }),
    spansRejected: new Counter({ name: 'strathon_spans_rejected_total', help: 'Spans rejected, by reason', labelNames: ['reason'], registers: [registry] }),
    spansSampledOut: new Counter({ name: 'strathon_spans_sampled_out_total', help: 'Spans dropped by trace-id sampling', registers: [registry] }),
    spansDuplicate: new Counter({ name: 'strathon_spans_duplicate_total', help: 'Re-sent spans that were already stored', registers: [registry] }),
    requestsRefused: new Counter({ name: 'strathon_ingest_requests_refused_total', help: 'Ingest requests refused with 429/503, by reason', labelNames: ['reason'], registers: [registry] }),
    queueSpans: new Gauge({ name: 'strathon_ingest_queue_spans', help: 'Spans waiting for or in a commit', registers: [registry] }),
    queueBytes: new Gauge({ name: 'strathon_ingest_queue_bytes', help: 'Approximate bytes of spans waiting for or in a commit', registers: [registry] }),
    batchSpans: new Histogram({ name: 'strathon_ingest_batch_spans', help: 'Spans per committed batch', buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000], registers: [registry] }),
    batchRequests: new Histogram({ name: 'strathon_ingest_batch_requests', help: 'Requests per committed batch (group commit)', buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [registry] }),
    commitDuration: new Histogram({ name: 'strathon_ingest_commit_duration_seconds', help: 'Batch insert+commit duration', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    batchFailures: new Counter({ name: 'strathon_ingest_batch_failures_total', help: 'Batches that failed to commit, by reason', labelNames: ['reason'], registers: [registry] }),
    poolTotal: new Gauge({ name: 'strathon_db_pool_connections', help: 'DB pool connections by state', labelNames: ['state'], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
