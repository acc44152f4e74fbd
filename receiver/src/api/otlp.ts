// POST /v1/traces (SPEC §5.1): every answer, success or error, in the request's encoding.
import type { Request, Response } from 'express';
import { HttpError, UnsupportedMediaType } from '../errors.js';
import {
  decodeRequest, decompress, encodeExportResponse, encodeStatus, ingestDecoded, parseContentEncoding, readBody, rpcCodeForHttp,
  type IngestDeps, type WireFormat,
} from '../ingest/ingest.js';
import { presentedCredential, requireScope, type ApiKeyAuthenticator } from '../auth/keys.js';
import { enforceRateLimit, type RateLimiter } from '../auth/ratelimit.js';
import type { Logger } from '../observability/logger.js';

const CONTENT_TYPES: Record<string, WireFormat> = {
  'application/x-protobuf': 'protobuf',
  'application/protobuf': 'protobuf',
  'application/json': 'json',
};

export function wireFormat(contentType: string | undefined): WireFormat | undefined {
  const base = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return CONTENT_TYPES[base];
}

const MEDIA: Record<WireFormat, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };

export function sendOtlpError(res: Response, format: WireFormat, err: HttpError) {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.status(err.status).type(MEDIA[format]).send(encodeStatus(format, rpcCodeForHttp(err.status), err.message));
}

export interface OtlpDeps {
  ingest: IngestDeps; keys: ApiKeyAuthenticator; limiter: RateLimiter; maxBodyBytes: number;
  log: Logger; clientIp: (req: Request) => string; schemaGate: () => Promise<void>;
}

export function otlpTracesHandler(d: OtlpDeps) {
  return async (req: Request, res: Response) => {
    const format = wireFormat(req.headers['content-type']);
    // Unknown media type: answer in JSON, the only encoding a client that sent neither can read.
    const errFormat: WireFormat = format ?? 'json';
    try {
      if (!format) throw new UnsupportedMediaType(`unsupported Content-Type "${req.headers['content-type'] ?? ''}"; use application/x-protobuf or application/json`);
      const encoding = parseContentEncoding(req.headers['content-encoding'] as string | undefined);
      const credential = presentedCredential(req.headers);
      const ip = d.clientIp(req);
      enforceRateLimit(d.limiter, credential, ip, res);
      const principal = await d.keys.authenticate(credential, ip);
      requireScope(principal, 'traces:write');
      await d.schemaGate();
      d.ingest.writer.assertRoom();
      const wire = await readBody(req, d.maxBodyBytes);
      const body = await decompress(wire, encoding, d.maxBodyBytes);
      const decoded = decodeRequest(format, body);
      const result = await ingestDecoded(d.ingest, principal.projectId, decoded, body.length);
      res.status(200).type(MEDIA[format]).send(encodeExportResponse(format, result.rejected, result.errorMessage));
    } catch (err) {
      if (err instanceof HttpError) {
        if (err.status >= 500) d.log.warn({ status: err.status, reason: err.message }, 'ingest request refused');
        else d.log.debug({ status: err.status, reason: err.message }, 'ingest request rejected');
        sendOtlpError(res, errFormat, err);
        return;
      }
      d.log.error({ err }, 'unexpected ingest error');
      res.status(500).type(MEDIA[errFormat]).send(encodeStatus(errFormat, 13, 'internal error'));
    }
  };
}
