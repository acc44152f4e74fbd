// Fixtures for the access tests: users with a membership and a live session (inserted directly,
// so these tests need no /v1/auth endpoints), and a small JSON client.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { createSession } from '../../src/auth/sessions.js';
import type { Role } from '../../src/auth/principal.js';

export interface TestUser { userId: string; email: string; token: string }

/** A user who is `role` in `projectId`, with a session token usable as a Bearer credential. */
export async function makeUser(pool: pg.Pool, projectId: string, role: Role, email = `u-${randomBytes(4).toString('hex')}@example.com`): Promise<TestUser> {
  const u = await pool.query<{ id: string }>(
    `INSERT INTO core.users (email, display_name, password_hash) VALUES ($1, $2, 'not-a-real-hash') RETURNING id`, [email, email.split('@')[0]]);
  const userId = (u.rows[0] as { id: string }).id;
  await pool.query('INSERT INTO core.members (project_id, user_id, role) VALUES ($1, $2, $3)', [projectId, userId, role]);
  const { token } = await createSession(pool, userId, 3600);
  return { userId, email, token };
}

export interface Reply { status: number; body: any; text: string; headers: Headers }

/** One JSON request; `credential` goes in `Authorization: Bearer`. */
export async function call(
  baseUrl: string, method: string, path: string, credential?: string, body?: unknown, headers: Record<string, string> = {},
): Promise<Reply> {
  const h: Record<string, string> = { ...headers };
  if (credential) h.authorization = `Bearer ${credential}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = undefined;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/** A client bound to a receiver URL. */
export function client(baseUrl: string) {
  return (method: string, path: string, credential?: string, body?: unknown, headers?: Record<string, string>) =>
    call(baseUrl, method, path, credential, body, headers);
}
