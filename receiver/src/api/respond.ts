// The one place errors become HTTP responses for the REST API (OTLP renders google.rpc.Status itself).
import type { Request, Response } from 'express';
import { HttpError, Unprocessable } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export function sendError(req: Request, res: Response, err: unknown, log: Logger): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (err instanceof HttpError) {
    for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    if (err instanceof Unprocessable) {
      res.status(422).json({ detail: [{ loc: err.loc, msg: err.message, type: err.type }] });
      return;
    }
    res.status(err.status).json({ detail: err.message });
    return;
  }
  // Body-parser errors carry a status (malformed JSON, too large): a client mistake, not a 500.
  const status = (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    res.status(status).json({ detail: (err as Error).message });
    return;
  }
  const requestId = String(res.getHeader('X-Request-Id') ?? '');
  log.error({ err, request_id: requestId, path: req.path }, 'unexpected error');
  res.status(500).json({ error: { code: 'internal', message: 'internal error', request_id: requestId } });
}
