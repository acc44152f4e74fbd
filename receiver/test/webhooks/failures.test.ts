// Hostile endpoints (SPEC §9): one that hangs, redirects, answers a huge body or resets the
// connection costs one failed attempt with its reason — never a stuck sweeper.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createChannel, deliveryRows, endpoint, waitFor, webhookReceiver } from './support.js';

const TIMEOUT_MS = 400;
const r = await webhookReceiver({ STRATHON_WEBHOOK_MAX_ATTEMPTS: '1' }, {
  firstRunDelaySeconds: 0.05,
  intervals: { webhook_sweeper_task: 0.05 },
  webhookSweeper: { timeoutMs: TIMEOUT_MS, backoffBaseMs: 20 },
});

const hook = await endpoint({
  // Headers never come; the request stays open until the test server closes.
  '/hang': () => undefined,
  // Sends headers, then trickles a byte every 100 ms forever: only a whole-attempt deadline ends it.
  '/trickle': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const t = setInterval(() => res.write('.'), 100);
    res.on('close', () => clearInterval(t));
  },
  '/redirect': (_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${hook.port}/ok` }).end(),
  '/huge': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.alloc(8 * 1024 * 1024, 0x61));
  },
  '/reset': (req) => req.socket.resetAndDestroy(),
});

async function deadWith(path: string): Promise<{ last_error: string | null; attempts: number; last_status_code: number | null }> {
  const { id } = await createChannel(r, hook.url(path));
  const sent = await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  assert.equal(sent.status, 202);
  const row = await waitFor(`${path}: dead delivery`, async () => {
    const x = await deliveryRows(r.pool, id);
    return x[0]?.status === 'dead' ? x[0] : undefined;
  }, 15_000);
  assert.equal(row.attempts, 1);
  assert.ok(hook.at(path).length >= 1, `${path} was called`);
  return row;
}

test('a hanging endpoint: failed attempt "timed out" after the attempt timeout', async () => {
  const t0 = Date.now();
  const row = await deadWith('/hang');
  assert.equal(row.last_error, `timed out after ${TIMEOUT_MS} ms`);
  assert.equal(row.last_status_code, null);
  assert.ok(Date.now() - t0 < 5000);
});

test('an endpoint trickling its body forever: failed at the deadline, with its status code', async () => {
  const row = await deadWith('/trickle');
  assert.equal(row.last_error, `timed out after ${TIMEOUT_MS} ms`);
  assert.equal(row.last_status_code, 200);
});

test('a redirect is not followed: failed attempt naming it', async () => {
  const row = await deadWith('/redirect');
  assert.equal(row.last_error, 'redirect (HTTP 302) not followed');
  assert.equal(row.last_status_code, 302);
  assert.equal(hook.at('/ok').length, 0, 'the redirect target was never called');
});

test('a huge response body: the read stops at 64 KiB and the attempt fails', async () => {
  const row = await deadWith('/huge');
  assert.match(String(row.last_error), /^response body larger than 65536 bytes \(HTTP 200\); read abandoned$/);
  assert.equal(row.last_status_code, 200);
});

test('a connection reset: failed attempt with ECONNRESET', async () => {
  const row = await deadWith('/reset');
  assert.match(String(row.last_error), /ECONNRESET/);
  assert.equal(row.last_status_code, null);
});

test('after all that the sweeper still delivers, and its ticks keep succeeding', async () => {
  const { id } = await createChannel(r, hook.url('/fine'));
  await api(r.url, 'POST', `/v1/notification-channels/${id}/test`, r.key, {});
  await waitFor('normal delivery', async () => (await deliveryRows(r.pool, id))[0]?.status === 'succeeded');
  const state = r.workers.state('webhook_sweeper_task');
  assert.equal(state?.consecutiveFailures, 0);
  assert.ok((state?.lastDurationMs ?? Infinity) < TIMEOUT_MS + 2000, `a tick lasts at most about one attempt timeout (${state?.lastDurationMs} ms)`);
  const ready = await (await fetch(`${r.url}/ready`)).json() as { checks: Record<string, { status: string }> };
  assert.equal(ready.checks.webhook_sweeper_task?.status, 'ok');
});
