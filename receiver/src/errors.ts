// Errors are values with a status; rendered in one place (api/respond.ts, api/otlp.ts).
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class BadRequest extends HttpError {
  constructor(message: string) { super(400, message); }
}
export class Unauthorized extends HttpError {
  constructor(message = 'Invalid API key') { super(401, message, { 'WWW-Authenticate': 'Bearer' }); }
}
export class Forbidden extends HttpError {
  constructor(message: string) { super(403, message); }
}
export class NotFound extends HttpError {
  constructor(message = 'not found') { super(404, message); }
}
export class Conflict extends HttpError { constructor(m: string) { super(409, m); } }
export class MethodNotAllowed extends HttpError {
  constructor(allow: string) { super(405, `method not allowed; use ${allow}`, { Allow: allow }); }
}
export class PayloadTooLarge extends HttpError {
  constructor(message: string) { super(413, message, { Connection: 'close' }); }
}
export class UnsupportedMediaType extends HttpError {
  constructor(message: string) { super(415, message); }
}
export class Unprocessable extends HttpError {
  constructor(message: string, readonly loc: (string | number)[] = [], readonly type = 'value_error') { super(422, message); }
}
export class TooManyRequests extends HttpError {
  constructor(message: string, readonly retryAfterS: number) { super(429, message, { 'Retry-After': String(retryAfterS) }); }
}
export class Unavailable extends HttpError {
  constructor(message: string, readonly retryAfterS = 1) { super(503, message, { 'Retry-After': String(retryAfterS) }); }
}
