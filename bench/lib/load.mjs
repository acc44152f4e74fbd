// Load generation with the real OpenTelemetry JS exporters: GenAI agent traces, closed and open loop.
import { randomBytes } from 'node:crypto';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { sleep } from './proc.mjs';

export const SPANS_PER_TRACE = 10;
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet', 'gemini-1.5-pro', 'mistral-large'];
const TOOLS = ['web_search', 'read_file', 'run_sql', 'send_email'];

/**
 * One request's worth of finished spans (`spans` ≈ count, a multiple of 10): agent traces of one
 * invoke_agent root, 5 LLM chat calls with token counts and 4 tool executions, as an instrumented
 * agent framework emits them. Built with the real SDK so every field is what an exporter sees.
 */
export async function buildTemplateBatch(spans) {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'bench-research-agent', 'service.version': '1.4.2', 'deployment.environment.name': 'bench',
      'telemetry.sdk.language': 'nodejs', 'telemetry.sdk.name': 'opentelemetry', 'telemetry.sdk.version': '2.12.1',
      'host.name': 'bench-host-01', 'process.pid': 4242,
    }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer('strathon-bench.agent', '0.1.0');
  const base = Date.now() - 60_000;
  const traces = Math.max(1, Math.round(spans / SPANS_PER_TRACE));
  for (let t = 0; t < traces; t++) {
    const t0 = base + t * 50;
    const root = tracer.startSpan('invoke_agent research-agent', {
      kind: SpanKind.INTERNAL, startTime: t0,
      attributes: {
        'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'research-agent', 'gen_ai.agent.id': `agent-${t % 7}`,
        'gen_ai.conversation.id': `conv-${t}`, 'user.id': `user-${t % 13}`, 'session.id': `sess-${t % 5}`,
      },
    });
    const ctx = trace.setSpan(context.active(), root);
    for (let i = 0; i < 9; i++) {
      const start = t0 + 10 + i * 400;
      if (i % 2 === 0) {
        const model = MODELS[(t + i) % MODELS.length];
        const span = tracer.startSpan(`chat ${model}`, {
          kind: SpanKind.CLIENT, startTime: start,
          attributes: {
            'gen_ai.operation.name': 'chat', 'gen_ai.system': model.startsWith('gpt') ? 'openai' : 'anthropic',
            'gen_ai.request.model': model, 'gen_ai.response.model': `${model}-2024-08-06`,
            'gen_ai.request.temperature': 0.2, 'gen_ai.request.max_tokens': 1024, 'gen_ai.request.top_p': 0.95,
            'gen_ai.usage.input_tokens': 800 + ((t * 37 + i * 11) % 2400), 'gen_ai.usage.output_tokens': 50 + ((t * 17 + i) % 600),
            'gen_ai.response.id': `chatcmpl-${t}-${i}-9f8e7d6c5b4a`, 'gen_ai.response.finish_reasons': ['stop'],
            'server.address': 'api.openai.com', 'server.port': 443, 'http.response.status_code': 200,
          },
        }, ctx);
        if ((t + i) % 23 === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited by provider, retried' });
        span.end(start + 350);
      } else {
        const tool = TOOLS[(t + i) % TOOLS.length];
        const span = tracer.startSpan(`execute_tool ${tool}`, {
          kind: SpanKind.INTERNAL, startTime: start,
          attributes: {
            'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool, 'gen_ai.tool.type': 'function',
            'gen_ai.tool.call.id': `call_${t}_${i}_a1b2c3`, 'gen_ai.tool.description': `Runs ${tool} for the agent`,
            'input.value': `{"query":"quarterly revenue by region for account ${t}","limit":20}`,
          },
        }, ctx);
        span.end(start + 120);
      }
    }
    root.end(t0 + 4000);
  }
  await provider.forceFlush();
  const out = memory.getFinishedSpans();
  await provider.shutdown();
  return out;
}

let idPrefix = randomBytes(8).toString('hex');
let idCounter = 0;

export function newTraceId() {
  idCounter++;
  if (idCounter >= 2 ** 48) {
    idPrefix = randomBytes(8).toString('hex');
    idCounter = 1;
  }
  return idPrefix + idCounter.toString(16).padStart(16, '0');
}

/** The template's spans under fresh trace ids (ids are all that change), as plain ReadableSpans. */
export function freshBatch(template) {
  const ids = new Map();
  return template.map((s) => {
    const sc = s.spanContext();
    let traceId = ids.get(sc.traceId);
    if (!traceId) ids.set(sc.traceId, (traceId = newTraceId()));
    const own = { ...sc, traceId };
    return {
      name: s.name, kind: s.kind, spanContext: () => own,
      parentSpanContext: s.parentSpanContext ? { ...s.parentSpanContext, traceId } : undefined,
      startTime: s.startTime, endTime: s.endTime, status: s.status, attributes: s.attributes, links: s.links, events: s.events,
      duration: s.duration, ended: true, resource: s.resource, instrumentationScope: s.instrumentationScope,
      droppedAttributesCount: s.droppedAttributesCount, droppedEventsCount: s.droppedEventsCount, droppedLinksCount: s.droppedLinksCount,
    };
  });
}

/** Wire size of one request in each encoding (before compression). */
export function requestBytes(batch) {
  return { protobuf: ProtobufTraceSerializer.serializeRequest(batch).byteLength, json: JsonTraceSerializer.serializeRequest(batch).byteLength };
}

export function makeExporter(baseUrl, key, protocol, gzip) {
  const opts = {
    url: `${baseUrl}/v1/traces`,
    headers: { Authorization: `Bearer ${key}` },
    compression: gzip ? 'gzip' : 'none',
    timeoutMillis: 30_000,
  };
  return protocol === 'protobuf' ? new ProtoExporter(opts) : new JsonExporter(opts);
}

const exportOnce = (exporter, spans) => new Promise((resolve) => exporter.export(spans, resolve));

/**
 * Closed loop: `clients` exporters each send one request, wait for its answer, send the next.
 * Spans acknowledged during the window (after `warmupS`) count; `probe.begin/end` bracket it.
 */
export async function closedLoop({ url, key, protocol, gzip, clients, warmupS, seconds, template, probe, onSecond }) {
  const exporters = Array.from({ length: clients }, () => makeExporter(url, key, protocol, gzip));
  let stop = false;
  let measuring = false;
  let acked = 0;
  let requests = 0;
  let failed = 0;
  let firstError;
  const latencies = [];
  const loop = async (exporter) => {
    while (!stop) {
      const batch = freshBatch(template);
      const t = performance.now();
      const r = await exportOnce(exporter, batch);
      if (!measuring) continue;
      if (r.code === 0) {
        acked += batch.length;
        requests++;
        latencies.push(performance.now() - t);
      } else {
        failed++;
        firstError ??= r.error?.message ?? String(r.code);
      }
    }
  };
  const running = exporters.map(loop);
  await sleep(warmupS * 1000);
  const begun = await probe?.begin();
  measuring = true;
  const t0 = performance.now();
  for (let s = 1; s <= seconds; s++) {
    await sleep(t0 + s * 1000 - performance.now());
    onSecond?.(s, acked);
  }
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const probed = await probe?.end(begun, elapsed);
  stop = true;
  await Promise.all(running);
  await Promise.all(exporters.map((e) => e.shutdown().catch(() => undefined)));
  return { spansPerS: acked / elapsed, acked, requests, failed, firstError, elapsed, latencies, probed };
}

/**
 * Open loop: one request every 1/rate s whatever the answers, for `seconds`. Latency counts from
 * the scheduled send time (no coordinated omission) and, separately, from the actual call.
 */
export async function openLoop({ url, key, protocol, gzip, ratePerS, seconds, template, exporters: n = 32 }) {
  const exporters = Array.from({ length: n }, () => makeExporter(url, key, protocol, gzip));
  const interval = 1000 / ratePerS;
  const t0 = performance.now() + 50;
  const total = Math.floor(seconds * ratePerS);
  const pending = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    else await new Promise((r) => setImmediate(r));
    const batch = freshBatch(template);
    const sent = performance.now();
    pending.push(exportOnce(exporters[i % n], batch).then((r) => {
      const done = performance.now();
      return { code: r.code, error: r.error?.message, fromDue: done - due, fromSend: done - sent, lag: sent - due };
    }));
  }
  const results = await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.all(exporters.map((e) => e.shutdown().catch(() => undefined)));
  return { results, elapsed };
}
