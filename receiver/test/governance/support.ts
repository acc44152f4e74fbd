// Fixtures for the governance tests: a JSON client, OTLP spans with costs and tools, polling, and
// a webhook channel whose outbox rows count the events a change emitted.
import assert from 'node:assert/strict';
import type pg from 'pg';
import { makeKey, makeProject } from '../helpers.js';
import { av, postSpans, spanId, traceId, type AnyValue, type SpanSpec } from '../api/otlp-json.js';

export { av, postSpans, traceId, spanId };

export interface Reply { status: number; body: any; text: string }

export async function call(url: string, method: string, path: string, key: string | undefined, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  return { status: res.status, body: parsed, text };
}

/** A fresh project with a `*` key, and a JSON client that asserts a 2xx answer and returns its body. */
export async function freshProject(r: { url: string; pool: pg.Pool }) {
  const id = await makeProject(r.pool);
  const key = await makeKey(r.pool, ['*'], id);
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await call(r.url, method, path, key, body);
    assert.ok(res.status < 300, `${method} ${path} → ${res.status} ${res.text}`);
    return res.body;
  };
  return { id, key, api };
}

export const nowNs = () => BigInt(Date.now()) * 1_000_000n;

/** A span of `agent` (gen_ai.agent.name) started a moment ago, with extra attributes. */
export function span(agent: string, attrs: Record<string, AnyValue> = {}, extra: Partial<SpanSpec> = {}): SpanSpec {
  return { traceId: traceId(), name: `${agent}-span`, startNs: nowNs() - 1_000_000_000n, attrs: { 'gen_ai.agent.name': av.s(agent), ...attrs }, ...extra };
}

/** An LLM call of `agent` on `model` costing `usd` (gen_ai.usage.cost wins over the price table). */
export const costSpan = (agent: string, usd: number, model = 'gpt-4o') =>
  span(agent, { 'gen_ai.request.model': av.s(model), 'gen_ai.usage.cost': av.d(usd) }, { name: `${agent}-llm` });

/** A tool call of `agent`. */
export const toolSpan = (agent: string, tool: string, attrs: Record<string, AnyValue> = {}) =>
  span(agent, { 'gen_ai.operation.name': av.s('execute_tool'), 'gen_ai.tool.name': av.s(tool), ...attrs }, { name: `tool.${tool}` });

/** Poll `fn` until it returns a truthy value (or fail after `ms`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An enabled channel receiving every event type, so emitted events are kept in the outbox. */
export async function addChannel(pool: pg.Pool, projectId: string): Promise<void> {
  await pool.query(
    `INSERT INTO core.notification_channels (project_id, name, url, events, secret_enc) VALUES ($1, 'governance-test', 'http://127.0.0.1:9/hook', '{}', 'test-not-a-secret')`,
    [projectId]);
}

export async function events(pool: pg.Pool, projectId: string, type: string): Promise<any[]> {
  const r = await pool.query<{ payload: any }>('SELECT payload FROM core.webhook_events WHERE project_id = $1 AND type = $2 ORDER BY created_at', [projectId, type]);
  return r.rows.map((x) => x.payload);
}

export async function auditActions(pool: pg.Pool, projectId: string, prefix: string): Promise<string[]> {
  const r = await pool.query<{ action: string }>('SELECT action FROM audit.events WHERE project_id = $1 AND action LIKE $2 ORDER BY sequence_no', [projectId, `${prefix}%`]);
  return r.rows.map((x) => x.action);
}
