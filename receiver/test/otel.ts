// Real OpenTelemetry JS exporters as test clients.
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Tracer } from '@opentelemetry/api';

export type Protocol = 'protobuf' | 'json';

export function exporterFor(baseUrl: string, key: string, protocol: Protocol, gzip: boolean): SpanExporter {
  const opts = {
    url: `${baseUrl}/v1/traces`,
    headers: { Authorization: `Bearer ${key}` },
    compression: (gzip ? 'gzip' : 'none') as never,
    timeoutMillis: 10_000,
  };
  return protocol === 'protobuf' ? new ProtoExporter(opts) : new JsonExporter(opts);
}

/** Run `fn` with a tracer whose spans go through the real exporter; resolves after the export. */
export async function withExporter(
  baseUrl: string, key: string, protocol: Protocol, gzip: boolean,
  resource: Record<string, string | number | boolean>,
  fn: (tracer: Tracer) => void,
): Promise<{ results: { code: number; error?: Error }[] }> {
  const inner = exporterFor(baseUrl, key, protocol, gzip);
  const results: { code: number; error?: Error }[] = [];
  const recording: SpanExporter = {
    export: (spans, cb) => inner.export(spans, (r) => { results.push(r); cb(r); }),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  };
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(recording)] });
  fn(provider.getTracer('strathon-test-scope', '1.2.3'));
  await provider.forceFlush();
  await provider.shutdown();
  return { results };
}
