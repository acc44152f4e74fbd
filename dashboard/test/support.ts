// Dashboard test fixtures: a real receiver (receiver/test/helpers.ts) and the real dashboard
// in-process on port 0, an HTTP client with a cookie jar, and Debian's Chromium via
// playwright-core (absent → the browser tests skip with a reason).
import { after } from 'node:test';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { startTestReceiver, type TestReceiver } from '../../receiver/test/helpers.js';
import { startDashboard, type Dashboard } from '../src/server.js';
import { silentLogger } from '../src/log.js';

/** Debian's Chromium; STRATHON_TEST_CHROMIUM points elsewhere (or at nothing, to see the skip). */
export const CHROMIUM = process.env.STRATHON_TEST_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts/dashboard');
export const GOOD_PASSWORD = 'correct-horse-battery-staple-42';
export const ENCRYPTION_KEY = randomBytes(32).toString('base64url');

export const uniqueEmail = (prefix = 'u') => `${prefix}-${randomBytes(4).toString('hex')}@example.com`;
/** A fresh client address per browser/client, so per-IP login limits never leak between steps. */
export const freshIp = () => `198.${randomInt(18, 20)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

export interface Stack { r: TestReceiver; d: Dashboard }

/**
 * A receiver (trusting loopback's X-Forwarded-For, MFA enabled) and a dashboard in front of it,
 * reading the receiver's test database as strathon_dashboard (derived mode). The dashboard trusts
 * loopback too, so each test client can present its own address.
 */
export async function startStack(dashboardEnv: Record<string, string> = {}, receiverEnv: Record<string, string> = {}): Promise<Stack> {
  const r = await startTestReceiver({ STRATHON_TRUSTED_PROXIES: '127.0.0.1/32', STRATHON_ENCRYPTION_KEY: ENCRYPTION_KEY, ...receiverEnv });
  const d = await startDashboard({
    env: {
      DASHBOARD_HOST: '127.0.0.1', DASHBOARD_PORT: '0', STRATHON_RECEIVER_URL: r.url, DATABASE_URL: r.databaseUrl,
      DASHBOARD_TRUSTED_PROXIES: '127.0.0.1/32', ...dashboardEnv,
    },
    log: silentLogger,
  });
  after(() => d.close());
  return { r, d };
}

// ---- a small HTTP client with a cookie jar ----------------------------------------------------------

export interface Reply { status: number; headers: Headers; text: string; location: string | null; setCookies: string[] }

export class Client {
  readonly jar = new Map<string, string>();
  constructor(readonly base: string, readonly ip = freshIp()) {}

  private async send(method: string, path: string, body?: URLSearchParams, headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { 'x-forwarded-for': this.ip, ...headers };
    if (this.jar.size) h.cookie = [...this.jar].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
    if (body) h['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(`${this.base}${path}`, { method, headers: h, body: body?.toString(), redirect: 'manual' });
    const setCookies = res.headers.getSetCookie();
    for (const c of setCookies) {
      const [pair] = c.split(';');
      const eq = (pair as string).indexOf('=');
      const name = (pair as string).slice(0, eq);
      const value = decodeURIComponent((pair as string).slice(eq + 1));
      if (/Max-Age=0/i.test(c) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, headers: res.headers, text: await res.text(), location: res.headers.get('location'), setCookies };
  }

  get(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.send('GET', path, undefined, headers);
  }

  post(path: string, form: Record<string, string | string[]>, headers?: Record<string, string>): Promise<Reply> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    return this.send('POST', path, body, headers);
  }

  /** The CSRF token of the first form on a page. */
  static csrfOf(page: string): string {
    const m = /name="csrf" value="([^"]+)"/.exec(page);
    if (!m) throw new Error('no CSRF field on the page');
    return m[1] as string;
  }

  /** Sign in through the dashboard's login form (password only). */
  async login(email: string, password = GOOD_PASSWORD): Promise<Reply> {
    const form = await this.get('/login');
    return this.post('/login', { csrf: Client.csrfOf(form.text), email, password, next: '/' });
  }
}

/** Register through the receiver API (the first user becomes owner of the default project). */
export async function registerOwner(r: TestReceiver, email = uniqueEmail('owner')): Promise<{ email: string; token: string }> {
  const res = await fetch(`${r.url}/v1/auth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': freshIp() },
    body: JSON.stringify({ email, password: GOOD_PASSWORD, display_name: 'Olga Owner' }),
  });
  const body = (await res.json()) as { token: string };
  if (res.status !== 201) throw new Error(`register owner: ${res.status} ${JSON.stringify(body)}`);
  return { email, token: body.token };
}

/** A user of `role` in the owner's project, created by the owner through the API. */
export async function addUser(r: TestReceiver, ownerToken: string, role: string, email = uniqueEmail(role)): Promise<string> {
  const res = await fetch(`${r.url}/v1/auth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerToken}`, 'x-forwarded-for': freshIp() },
    body: JSON.stringify({ email, password: GOOD_PASSWORD, role }),
  });
  if (res.status !== 201) throw new Error(`register ${role}: ${res.status} ${await res.text()}`);
  return email;
}

// ---- the browser ------------------------------------------------------------------------------------

export const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium); browser tests skipped`;
}

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
  after(() => browser.close());
  mkdirSync(ARTIFACTS, { recursive: true });
  return browser;
}

export const shot = (name: string) => path.join(ARTIFACTS, `${name}.png`);
