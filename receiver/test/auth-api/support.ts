// Shared helpers for the auth API tests: a JSON client, distinct client IPs (the receivers trust
// 127.0.0.1 as a proxy, so X-Forwarded-For names the client) and TOTP codes at chosen steps.
import { randomBytes, randomInt } from 'node:crypto';
import { generate } from 'otplib';
import { startTestReceiver, type TestReceiver } from '../helpers.js';

export const ENCRYPTION_KEY = randomBytes(32).toString('base64url');
/** Replicas must share the JWT secret (without it each boot picks a random one). */
export const JWT_SECRET = randomBytes(32).toString('hex');
export const GOOD_PASSWORD = 'correct-horse-battery-staple-42';

/** Receiver env for these tests: XFF from loopback is trusted; MFA can store secrets. */
export function authEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { STRATHON_TRUSTED_PROXIES: '127.0.0.1/32', STRATHON_ENCRYPTION_KEY: ENCRYPTION_KEY, STRATHON_JWT_SECRET: JWT_SECRET, ...extra };
}

export function startAuthReceiver(extra: Record<string, string> = {}, opts: { databaseUrl?: string } = {}): Promise<TestReceiver> {
  return startTestReceiver(authEnv(extra), opts);
}

/** A fresh client IP per call (TEST-NET-2/3 style), so the per-IP login limit never leaks between steps. */
export function freshIp(): string {
  return `198.${randomInt(18, 20)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

export const uniqueEmail = (prefix = 'u') => `${prefix}-${randomBytes(4).toString('hex')}@example.com`;

export interface Reply { status: number; body: any; headers: Headers }

export interface CallOptions { token?: string; ip?: string; headers?: Record<string, string>; cookie?: string }

export async function call(base: string, method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'x-forwarded-for': opts.ip ?? freshIp(), ...opts.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const post = (base: string, path: string, body: unknown = {}, opts: CallOptions = {}) => call(base, 'POST', path, body, opts);
export const get = (base: string, path: string, opts: CallOptions = {}) => call(base, 'GET', path, undefined, opts);

/** The 6-digit code of `secret` for the time step `step` (30 s steps since the epoch). */
export function codeAt(secret: string, step: number): Promise<string> {
  return generate({ secret, epoch: step * 30 + 1 });
}

export const currentStep = () => Math.floor(Date.now() / 30_000);

/** Register the first user (owner of the default project); returns the session token and user id. */
export async function registerOwner(r: TestReceiver, email = uniqueEmail('owner')): Promise<{ token: string; id: string; email: string }> {
  const res = await post(r.url, '/v1/auth/register', { email, password: GOOD_PASSWORD, display_name: 'Owner' });
  if (res.status !== 201) throw new Error(`register owner: ${res.status} ${JSON.stringify(res.body)}`);
  return { token: res.body.token, id: res.body.user.id, email };
}

/** A user created by `adminToken`'s caller in its project with `role`, then logged in. */
export async function addUser(r: TestReceiver, adminToken: string, role: string, email = uniqueEmail(role)): Promise<{ token: string; id: string; email: string }> {
  const res = await post(r.url, '/v1/auth/register', { email, password: GOOD_PASSWORD, role }, { token: adminToken });
  if (res.status !== 201) throw new Error(`register ${role}: ${res.status} ${JSON.stringify(res.body)}`);
  const login = await post(r.url, '/v1/auth/login', { email, password: GOOD_PASSWORD });
  if (login.status !== 200) throw new Error(`login ${role}: ${login.status} ${JSON.stringify(login.body)}`);
  return { token: login.body.token, id: res.body.user.id, email };
}
