// One delivery attempt: POST the signed body to the channel's URL and say how it went. Whatever the
// endpoint does — hang, trickle, redirect, answer gigabytes, reset the connection — the attempt
// ends within its deadline with a reason; it never throws and never follows a redirect.
import http from 'node:http';
import https from 'node:https';
import { pinnedLookup, resolveAllowed, unbracket } from './ssrf.js';

export interface AttemptRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  allowPrivate: boolean;
  /** Production: plain http is refused even if such a URL was stored (e.g. before STRATHON_ENV changed). */
  requireHttps?: boolean;
  /** The whole attempt (DNS, connect, TLS, request, response) ends by then. */
  timeoutMs: number;
  /** A response body larger than this fails the attempt (the read stops there). */
  maxResponseBytes: number;
  /** Shutdown: abandon the attempt at once (reported as `aborted`). */
  signal?: AbortSignal;
}

export interface AttemptResult {
  ok: boolean;
  /** The attempt was abandoned because the receiver is stopping: not the endpoint's fault. */
  aborted: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

const SNIPPET_BYTES = 200;

/** Printable, bounded text for last_error (the endpoint controls what it sends us). */
export function cleanReason(text: string, max = 500): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNRESET': return `connection reset by the endpoint (ECONNRESET: ${err.message})`;
    case 'ECONNREFUSED': return 'connection refused (ECONNREFUSED)';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `endpoint unreachable (${err.code})`;
    default: return err.code && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message;
  }
}

export async function attemptDelivery(req: AttemptRequest): Promise<AttemptResult> {
  const t0 = performance.now();
  const done = (r: Omit<AttemptResult, 'durationMs' | 'aborted'> & { aborted?: boolean }): AttemptResult =>
    ({ aborted: false, ...r, error: r.error === null ? null : cleanReason(r.error), durationMs: performance.now() - t0 });

  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return done({ ok: false, statusCode: null, error: 'invalid URL' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return done({ ok: false, statusCode: null, error: `unsupported scheme ${url.protocol}` });
  if (req.requireHttps && url.protocol !== 'https:') return done({ ok: false, statusCode: null, error: 'https is required when STRATHON_ENV=production' });
  if (req.signal?.aborted) return done({ ok: false, aborted: true, statusCode: null, error: 'receiver shutting down' });

  // The SSRF check again, at connect time, on the very addresses the socket will use.
  let timer: NodeJS.Timeout | undefined;
  let addresses;
  try {
    addresses = await Promise.race([
      resolveAllowed(url.hostname, req.allowPrivate),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`DNS lookup timed out after ${req.timeoutMs} ms`)), req.timeoutMs); }),
    ]);
  } catch (err) {
    return done({ ok: false, statusCode: null, error: (err as Error).message });
  } finally {
    clearTimeout(timer);
  }
  const remainingMs = Math.max(1, req.timeoutMs - (performance.now() - t0));

  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    let statusCode: number | null = null;
    const finish = (r: Omit<AttemptResult, 'durationMs' | 'aborted'> & { aborted?: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.signal?.removeEventListener('abort', onAbort);
      request.destroy();
      resolve(done(r));
    };
    const onAbort = () => finish({ ok: false, aborted: true, statusCode, error: 'receiver shutting down' });

    const request = (url.protocol === 'https:' ? https : http).request({
      protocol: url.protocol,
      hostname: unbracket(url.hostname),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers: { ...req.headers, host: url.host, 'content-length': String(Buffer.byteLength(req.body)) },
      lookup: pinnedLookup(addresses),
      // A fresh connection per attempt: a pooled socket could be connected to an unchecked address.
      agent: false,
    });
    const deadline = setTimeout(() => finish({ ok: false, statusCode, error: `timed out after ${req.timeoutMs} ms` }), remainingMs);
    req.signal?.addEventListener('abort', onAbort, { once: true });

    request.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, statusCode, error: describeError(err) }));
    request.on('response', (res) => {
      statusCode = res.statusCode ?? null;
      const status = statusCode ?? 0;
      if (status >= 300 && status < 400) {
        finish({ ok: false, statusCode, error: `redirect (HTTP ${status}) not followed` });
        return;
      }
      let received = 0;
      const snippet: Buffer[] = [];
      let snippetBytes = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > req.maxResponseBytes) {
          finish({ ok: false, statusCode, error: `response body larger than ${req.maxResponseBytes} bytes (HTTP ${status}); read abandoned` });
          return;
        }
        if (snippetBytes < SNIPPET_BYTES) {
          snippet.push(chunk.subarray(0, SNIPPET_BYTES - snippetBytes));
          snippetBytes += Math.min(chunk.length, SNIPPET_BYTES - snippetBytes);
        }
      });
      res.on('end', () => {
        if (status >= 200 && status < 300) {
          finish({ ok: true, statusCode, error: null });
          return;
        }
        const text = Buffer.concat(snippet).toString('utf8').trim();
        finish({ ok: false, statusCode, error: `HTTP ${status}${text ? `: ${text}` : ''}` });
      });
      res.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, statusCode, error: `response interrupted: ${describeError(err)}` }));
      res.on('close', () => finish({ ok: false, statusCode, error: 'connection closed before the response was complete' }));
    });
    request.end(req.body);
  });
}
