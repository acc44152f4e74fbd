// Fixtures for the webhook tests: a real local HTTP endpoint that records what it receives, an
// independent Standard Webhooks signature check (the `standardwebhooks` package), and a small API client.
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { startTestReceiver, type TestReceiver } from '../helpers.js';
import type { WorkerOptions } from '../../src/workers/workers.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(15);
  }
}

export const encryptionKey = () => randomBytes(32).toString('base64url');

/** A receiver with webhooks configured (encryption key; private addresses allowed unless env says otherwise). */
export async function webhookReceiver(env: Record<string, string> = {}, workers: WorkerOptions = {}, databaseUrl?: string): Promise<TestReceiver & { encryptionKey: string }> {
  const key = env.STRATHON_ENCRYPTION_KEY ?? encryptionKey();
  const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false', ...env, STRATHON_ENCRYPTION_KEY: key }, { workers, databaseUrl });
  return Object.assign(r, { encryptionKey: key });
}

export interface Reply { status: number; body: any; text: string; headers: Headers }

export async function api(base: string, method: string, path: string, key: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export interface Received { path: string; headers: http.IncomingHttpHeaders; body: string; at: number }

export type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

/** A local webhook endpoint; `behaviour` per path (default: 200 "ok"). Closed after the file. */
export async function endpoint(behaviours: Record<string, Behaviour> = {}) {
  const received: Received[] = [];
  const count = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const n = (count.get(path) ?? 0) + 1;
    count.set(path, n);
    const behaviour = behaviours[path];
    // A resetting endpoint must not even read the request.
    if (path.startsWith('/reset')) {
      received.push({ path, headers: req.headers, body: '', at: Date.now() });
      behaviour?.(req, res, n);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      if (behaviour) behaviour(req, res, n);
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return {
    port,
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    received,
    at: (path: string) => received.filter((x) => x.path === path),
    behaviours,
    server,
  };
}

/** The Standard Webhooks check, by the reference `standardwebhooks` package (not the receiver's
 *  code): for each secret, whether the request verifies with it (signature and timestamp window). */
export function verifySignatures(secrets: string[], h: http.IncomingHttpHeaders, body: string): boolean[] {
  const headers = {
    'webhook-id': String(h['webhook-id'] ?? ''),
    'webhook-timestamp': String(h['webhook-timestamp'] ?? ''),
    'webhook-signature': String(h['webhook-signature'] ?? ''),
  };
  return secrets.map((secret) => {
    try {
      new Webhook(secret).verify(body, headers);
      return true;
    } catch (err) {
      if (err instanceof WebhookVerificationError) return false;
      throw err;
    }
  });
}

export async function deliveryRows(pool: pg.Pool, channelId: string) {
  const r = await pool.query<{ id: string; status: string; attempts: number; last_error: string | null; last_status_code: number | null; webhook_id: string }>(
    'SELECT id, status, attempts, last_error, last_status_code, webhook_id FROM core.webhook_deliveries WHERE channel_id = $1 ORDER BY created_at', [channelId]);
  return r.rows;
}

/** Create a channel through the API; returns its id and the secret revealed once. */
export async function createChannel(r: TestReceiver, url: string, extra: Record<string, unknown> = {}, key = r.key): Promise<{ id: string; secret: string; body: any }> {
  const res = await api(r.url, 'POST', '/v1/notification-channels', key, { name: `ch-${randomBytes(3).toString('hex')}`, url, ...extra });
  if (res.status !== 201) throw new Error(`create channel: ${res.status} ${res.text}`);
  return { id: res.body.id, secret: res.body.secret, body: res.body };
}
