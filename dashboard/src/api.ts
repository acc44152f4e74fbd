// The receiver's REST API, called with the signed-in user's session token, so RBAC and audit
// apply to the dashboard exactly as to any API client (SPEC §12). Every write goes through here.
// Answers become values or an ApiError whose kind tells the page what to show.

export type ApiErrorKind =
  | 'session' // 401: no/expired/revoked session → sign in again
  | 'forbidden' // 403: the receiver's detail says "requires role X"
  | 'password_change' // 403: the user must change their password first
  | 'project_required' // 400: the user is in several projects and none is selected
  | 'not_available' // 404/405 for the route itself: this receiver version lacks the feature
  | 'not_found' // 404 for an object
  | 'invalid' // 400/409/422: the input or the state is wrong; the detail says why
  | 'rate_limited' // 429
  | 'unavailable'; // 5xx, timeout, connection refused

export class ApiError extends Error {
  constructor(readonly kind: ApiErrorKind, readonly status: number, message: string, readonly retryAfterS?: number) {
    super(message);
  }
}

export interface Caller {
  /** The receiver session token (from the dashboard's HttpOnly cookie). */
  token?: string;
  /** Selected project (X-Project-Id) for users in several projects. */
  projectId?: string;
  /** The browser's address, forwarded so the receiver's per-IP login limits see the user, not us. */
  clientIp?: string;
  requestId?: string;
}

export type Query = Record<string, string | number | boolean | undefined | null>;

interface Validation { loc?: unknown[]; msg?: string }

/** The receiver's error body as one readable sentence (never a stack trace). */
function detailOf(status: number, body: unknown): string {
  if (body && typeof body === 'object') {
    const o = body as { detail?: unknown; error?: { message?: unknown; request_id?: unknown } };
    if (typeof o.detail === 'string') return o.detail;
    if (Array.isArray(o.detail)) {
      return (o.detail as Validation[])
        .map((v) => {
          const loc = Array.isArray(v.loc) ? v.loc.filter((x) => x !== 'body' && x !== 'query').join('.') : '';
          return loc ? `${loc}: ${v.msg ?? 'invalid'}` : String(v.msg ?? 'invalid');
        })
        .join('; ');
    }
    if (o.error && typeof o.error === 'object') {
      return `the receiver failed (${String(o.error.message ?? 'internal error')}; request id ${String(o.error.request_id ?? 'unknown')})`;
    }
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return `the receiver answered HTTP ${status}`;
}

function classify(status: number, detail: string): ApiErrorKind {
  if (status === 401) return 'session';
  if (status === 403) return detail.startsWith('password change required') ? 'password_change' : 'forbidden';
  if (status === 400 && detail === 'X-Project-Id required') return 'project_required';
  // The receiver's fallback for an unknown route: the feature is not in this version.
  if ((status === 404 && detail.startsWith('no route for ')) || status === 405) return 'not_available';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'unavailable';
  return 'invalid';
}

export class ReceiverApi {
  constructor(readonly baseUrl: string, private readonly timeoutMs = 15_000) {}

  async request<T>(caller: Caller, method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = new URL(path, `${this.baseUrl}/`);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (caller.token) headers.authorization = `Bearer ${caller.token}`;
    if (caller.projectId) headers['x-project-id'] = caller.projectId;
    if (caller.clientIp) headers['x-forwarded-for'] = caller.clientIp;
    if (caller.requestId) headers['x-request-id'] = caller.requestId;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs / 1000} s` : e.cause?.code ?? e.cause?.message ?? e.message;
      throw new ApiError('unavailable', 0, `the receiver at ${this.baseUrl} could not be reached (${why})`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (res.ok) return (text === '' ? null : parsed) as T;
    const detail = detailOf(res.status, parsed);
    const retry = Number(res.headers.get('retry-after'));
    throw new ApiError(classify(res.status, detail), res.status, detail, Number.isFinite(retry) && retry > 0 ? retry : undefined);
  }

  get<T>(caller: Caller, path: string, query?: Query): Promise<T> {
    return this.request<T>(caller, 'GET', path, { query });
  }

  post<T>(caller: Caller, path: string, body: unknown = {}): Promise<T> {
    return this.request<T>(caller, 'POST', path, { body });
  }

  /** GET /ready: public, answered with 200 or 503 and the same body either way. */
  async ready(): Promise<ReadyBody> {
    try {
      const res = await fetch(new URL('/ready', `${this.baseUrl}/`), { signal: AbortSignal.timeout(3000) });
      return (await res.json()) as ReadyBody;
    } catch (err) {
      throw new ApiError('unavailable', 0, `the receiver at ${this.baseUrl} could not be reached (${(err as Error).message})`);
    }
  }
}

export interface ReadyCheck { status: 'ok' | 'failed' | 'disabled'; reason?: string; [k: string]: unknown }
export interface ReadyBody { status: 'ready' | 'not_ready'; checks: Record<string, ReadyCheck> }

/** What a page says about a failed call (the role needed, the feature missing, the reason). */
export function explain(err: ApiError): string {
  switch (err.kind) {
    case 'forbidden':
      return `Not allowed: ${err.message}.`;
    case 'not_available':
      return 'Not available in this version of the receiver.';
    case 'rate_limited':
      return `Too many requests: ${err.message}${err.retryAfterS ? ` (retry in ${err.retryAfterS} s)` : ''}.`;
    case 'unavailable':
      return `The receiver is unavailable: ${err.message}.`;
    default:
      return err.message.endsWith('.') ? err.message : `${err.message}.`;
  }
}
