// OTLP/gRPC TraceService/Export on STRATHON_GRPC_PORT (SPEC §5.2): the same auth, rate limit, decoder
// and group-commit pipeline as POST /v1/traces; our HttpErrors are rendered as gRPC statuses.
import type { IncomingMessage } from 'node:http';
import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ReceiverContext } from '../context.js';
import { HttpError, TooManyRequests } from '../errors.js';
import { presentedCredential, requireScope, type ApiKeyPrincipal } from '../auth/keys.js';
import { RateLimiter, type RateDecision } from '../auth/ratelimit.js';
import { clientIp } from '../auth/client-ip.js';
import { decodeProtobuf, encodeExportResponse, ExportResponse, rpcCodeForHttp } from './otlp-wire.js';
import { ingestDecoded } from './ingest.js';

export interface GrpcServer { port: number; close(timeoutMs: number): Promise<void> }

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** The request as the handler sees it: the undecoded message, plus the caller the interceptor admitted. */
interface ExportCall { bytes: Buffer; caller?: Caller }
interface Caller { principal: ApiKeyPrincipal; rate: RateDecision }
type ExportOutcome = { rejected: number; errorMessage: string };

// Hand-written so the message arrives as raw bytes and goes through decodeProtobuf, like OTLP/HTTP.
const TRACE_SERVICE: grpc.ServiceDefinition<{ Export: grpc.MethodDefinition<ExportCall, ExportOutcome> }> = {
  Export: {
    path: EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (req: ExportCall) => req.bytes,
    requestDeserialize: (bytes: Buffer) => ({ bytes }),
    responseSerialize: (r: ExportOutcome) => encodeExportResponse('protobuf', r.rejected, r.errorMessage),
    responseDeserialize: (bytes: Buffer) => {
      const m = ExportResponse.toObject(ExportResponse.decode(bytes), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number; errorMessage?: string } };
      return { rejected: m.partialSuccess?.rejectedSpans ?? 0, errorMessage: m.partialSuccess?.errorMessage ?? '' };
    },
  },
};

// google.rpc.Status carrying google.rpc.RetryInfo: OTLP clients (the Collector, Go/Java SDKs) retry
// RESOURCE_EXHAUSTED only when RetryInfo is present, and honour its delay for UNAVAILABLE.
const rpcTypes = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } },
            RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } },
          },
        },
      },
    },
  },
});
const RpcStatus = rpcTypes.lookupType('google.rpc.Status');
const RetryInfo = rpcTypes.lookupType('google.rpc.RetryInfo');

function statusDetailsWithRetry(code: number, message: string, retryAfterS: number): Buffer {
  const retry = RetryInfo.encode(RetryInfo.create({ retry_delay: { seconds: retryAfterS } })).finish();
  const status = RpcStatus.create({ code, message, details: [{ type_url: 'type.googleapis.com/google.rpc.RetryInfo', value: retry }] });
  return Buffer.from(RpcStatus.encode(status).finish());
}

/**
 * HTTP status → gRPC code: as rpcCodeForHttp (400/415 INVALID_ARGUMENT, 401 UNAUTHENTICATED,
 * 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE), except 413 → RESOURCE_EXHAUSTED,
 * the gRPC convention for an oversized message (what grpc-js itself answers for its size limits).
 */
function grpcCodeFor(httpStatus: number): grpc.status {
  return httpStatus === 413 ? grpc.status.RESOURCE_EXHAUSTED : (rpcCodeForHttp(httpStatus) as grpc.status);
}

function rateMetadata(rate: RateDecision | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  if (rate) {
    md.set('x-ratelimit-limit', String(rate.limit));
    md.set('x-ratelimit-remaining', String(rate.remaining));
  }
  return md;
}

/** Render any error as a gRPC status; retryable ones carry `retry-after` seconds and RetryInfo in the trailers. */
function statusFor(ctx: ReceiverContext, err: unknown, rate: RateDecision | undefined): grpc.StatusObject {
  const metadata = rateMetadata(rate);
  if (!(err instanceof HttpError)) {
    ctx.log.error({ err, protocol: 'grpc' }, 'unexpected ingest error');
    return { code: grpc.status.INTERNAL, details: 'internal error', metadata };
  }
  if (err.status >= 500) ctx.log.warn({ status: err.status, reason: err.message, protocol: 'grpc' }, 'ingest request refused');
  else ctx.log.debug({ status: err.status, reason: err.message, protocol: 'grpc' }, 'ingest request rejected');
  const code = grpcCodeFor(err.status);
  const retryAfter = err.headers['Retry-After'];
  if (retryAfter !== undefined) {
    metadata.set('retry-after', retryAfter);
    metadata.set('grpc-status-details-bin', statusDetailsWithRetry(code, err.message, Number(retryAfter)));
  }
  return { code, details: err.message, metadata };
}

function firstText(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

function callerIp(ctx: ReceiverContext, call: grpc.ServerInterceptingCallInterface, md: grpc.Metadata): string {
  // clientIp() reads only the TCP peer and X-Forwarded-For, which a gRPC call presents just the same.
  const req = { socket: { remoteAddress: call.getConnectionInfo().remoteAddress }, headers: { 'x-forwarded-for': firstText(md, 'x-forwarded-for') } };
  return clientIp(req as unknown as IncomingMessage, ctx.config.trustedProxies);
}

/**
 * Rate limit, authenticate and check `traces:write` from the metadata alone, before the message is
 * read: as over HTTP, an unauthenticated caller never makes us buffer or inflate a body.
 */
function admitBeforeReading(ctx: ReceiverContext): grpc.ServerInterceptor {
  return (_method, call) => {
    let caller: Caller | undefined;
    let rate: RateDecision | undefined;
    const admit = async (md: grpc.Metadata): Promise<Caller> => {
      const credential = presentedCredential({ authorization: firstText(md, 'authorization'), 'x-api-key': firstText(md, 'x-api-key') });
      const ip = callerIp(ctx, call, md);
      rate = ctx.limiter.take(RateLimiter.identifier(credential, ip));
      if (!rate.allowed) throw new TooManyRequests(`rate limit exceeded, retry in ${rate.retryAfterS}s`, rate.retryAfterS);
      const principal = await ctx.keys.authenticate(credential, ip);
      requireScope(principal, 'traces:write');
      await ctx.schemaGate();
      return { principal, rate };
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((md, next) => {
        admit(md).then(
          (c) => { caller = c; next(md); },
          (err: unknown) => call.sendStatus(statusFor(ctx, err, rate)),
        );
      })
      .withOnReceiveMessage((message: ExportCall, next) => next({ ...message, caller }))
      .build();
    return new grpc.ServerInterceptingCall(call, { start: (next) => next(listener) });
  };
}

/** Decode, ingest, and answer only after the group commit that carries the spans. */
function exportHandler(ctx: ReceiverContext): grpc.handleUnaryCall<ExportCall, ExportOutcome> {
  return (call, callback) => {
    const { bytes, caller } = call.request;
    const t0 = performance.now();
    void (async () => {
      try {
        if (!caller) throw new Error('Export reached its handler without an admitted caller');
        const result = await ingestDecoded(ctx.ingest, caller.principal.projectId, decodeProtobuf(bytes), bytes.length);
        ctx.log.debug({ protocol: 'grpc', project_id: caller.principal.projectId, span_count: result.accepted, rejected: result.rejected, duration_ms: Math.round(performance.now() - t0) }, 'export committed');
        callback(null, { rejected: result.rejected, errorMessage: result.errorMessage }, rateMetadata(caller.rate));
      } catch (err) {
        callback(statusFor(ctx, err, caller?.rate));
      }
    })();
  };
}

function shutdown(server: grpc.Server, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

export async function startGrpcServer(ctx: ReceiverContext): Promise<GrpcServer | undefined> {
  if (!ctx.config.grpcEnabled) return undefined;
  const server = new grpc.Server({
    // grpc-js refuses a larger message from its length prefix, and stops inflating a compressed one
    // at this size (RESOURCE_EXHAUSTED): the limit holds for wire and decompressed bytes.
    'grpc.max_receive_message_length': ctx.config.maxBodyBytes,
    interceptors: [admitBeforeReading(ctx)],
  });
  server.addService(TRACE_SERVICE, { Export: exportHandler(ctx) });
  const host = ctx.config.host.includes(':') ? `[${ctx.config.host}]` : ctx.config.host;
  const address = `${host}:${ctx.config.grpcPort}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new Error(`OTLP/gRPC listener could not bind ${address}: ${err.message}`));
      else resolve(bound);
    });
  });
  ctx.log.info({ host: ctx.config.host, port, max_message_bytes: ctx.config.maxBodyBytes }, 'OTLP/gRPC listening');
  return { port, close: (timeoutMs) => shutdown(server, timeoutMs) };
}
