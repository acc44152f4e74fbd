// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// receiver: register, sign in, enrol MFA and sign in with a code, find a trace sent by the real
// OpenTelemetry exporter and read its waterfall, create/reveal-once/revoke an API key, resolve a
// halt, verify the audit chain; a viewer is told the role it lacks. Screenshots of the main pages
// go to test-artifacts/dashboard/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { generate } from 'otplib';
import type { BrowserContext, Page } from 'playwright-core';
import { withExporter } from '../../receiver/test/otel.js';
import { addUser, chromiumMissing, freshIp, GOOD_PASSWORD, launchBrowser, shot, startStack, uniqueEmail, type Stack } from './support.js';

const missing = chromiumMissing();

async function newPage(ctx: BrowserContext, cspErrors: string[]): Promise<Page> {
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (execute|apply|load)/i.test(m.text())) cspErrors.push(m.text());
  });
  page.on('dialog', (d) => void d.accept());
  return page;
}

async function signIn(page: Page, base: string, email: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(GOOD_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Send a four-span trace with the real OTLP/HTTP exporter: run → (llm → tool), post (failed). */
async function sendTrace(s: Stack, service: string): Promise<string> {
  let traceId = '';
  const t0 = Date.now() - 5000;
  const at = (ms: number): [number, number] => [Math.floor((t0 + ms) / 1000), ((t0 + ms) % 1000) * 1_000_000];
  const { results } = await withExporter(s.r.url, s.r.key, 'protobuf', true, { 'service.name': service }, (tracer) => {
    const root = tracer.startSpan('agent.run', { kind: SpanKind.SERVER, startTime: at(0), attributes: { 'gen_ai.agent.name': 'flow-agent' } });
    traceId = root.spanContext().traceId;
    const inRoot = trace.setSpan(context.active(), root);
    const llm = tracer.startSpan('llm.call', {
      kind: SpanKind.CLIENT, startTime: at(10),
      attributes: { 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 1200, 'gen_ai.usage.output_tokens': 300, 'prompt.kind': 'plan' },
      links: [{ context: { traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', spanId: 'bbbbbbbbbbbbbbbb', traceFlags: 1 } }],
    }, inRoot);
    llm.addEvent('token.first', { 'ev.n': 7 }, at(15));
    const tool = tracer.startSpan('tool.search', { startTime: at(20), attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' } }, trace.setSpan(context.active(), llm));
    tool.end(at(40));
    llm.end(at(45));
    const post = tracer.startSpan('post.process', { startTime: at(50) }, inRoot);
    post.setStatus({ code: SpanStatusCode.ERROR, message: 'formatter crashed <b>boom</b>' });
    post.end(at(80));
    root.end(at(90));
  });
  assert.deepEqual(results.map((x) => x.code), [0, 0, 0, 0], 'the exporter delivered every span');
  return traceId;
}

test('browser: sign-up, sign-in with MFA, traces and waterfall, one-time API key, halts, audit verify', async (t) => {
  if (missing) {
    t.skip(missing);
    return;
  }
  const s = await startStack();
  const base = s.d.url;
  const browser = await launchBrowser();
  const ctx = await browser.newContext({ extraHTTPHeaders: { 'x-forwarded-for': freshIp() }, viewport: { width: 1360, height: 900 } });
  const cspErrors: string[] = [];
  const page = await newPage(ctx, cspErrors);
  const email = uniqueEmail('owner');

  // Not signed in: every page leads to the sign-in form.
  await page.goto(`${base}/traces`);
  assert.match(page.url(), /\/login\?next=%2Ftraces$/);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.screenshot({ path: shot('login') });

  // Keyboard: the first Tab lands on the skip link.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to main content');

  // The first account, through the register page: it is signed in at once.
  await page.getByRole('link', { name: 'Create the first account' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Name').fill('Olga Owner');
  await page.getByLabel(/^Password/).fill(GOOD_PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  assert.equal(await page.locator('.who .role').textContent(), 'owner');

  // Sign out, then in through the login form.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out.').waitFor();
  await signIn(page, base, email);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  assert.match((await page.locator('header .who').textContent()) ?? '', /Olga Owner/);

  // MFA enrolment: the setup page shows the QR code and the secret; a code computed from it turns MFA on.
  await page.getByRole('link', { name: 'Olga Owner' }).click();
  await page.getByText('Two-factor authentication is off.', { exact: false }).waitFor();
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const qr = page.getByRole('img', { name: /QR code/ });
  await qr.waitFor();
  assert.match((await qr.getAttribute('src')) ?? '', /^data:image\/svg\+xml;base64,/);
  assert.ok(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0), 'the QR code renders under the CSP');
  const secret = ((await page.locator('#mfa-secret').textContent()) ?? '').trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await page.screenshot({ path: shot('mfa-setup') });
  await page.getByLabel('Code').fill(await generate({ secret }));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByRole('heading', { name: 'Two-factor authentication is on' }).waitFor();
  assert.equal(await page.locator('#backup-codes li').count(), 10);

  // Sign in again: password, then a code (the next time step: the enrolment code cannot be replayed).
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, base, email);
  await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
  assert.match(page.url(), /\/login\/mfa/);
  await page.getByLabel('Code').fill('000000');
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByText('That code is not valid').waitFor();
  await page.getByLabel('Code').fill(await generate({ secret, epoch: (Math.floor(Date.now() / 30_000) + 1) * 30 }));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const cookies = await ctx.cookies(base);
  const session = cookies.find((c) => c.name === 'strathon_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');

  // A trace from the real OpenTelemetry exporter, found by a filter.
  const service = `flow-svc-${randomBytes(3).toString('hex')}`;
  const traceId = await sendTrace(s, service);
  await sendTrace(s, `other-${service}`);
  await page.reload();
  assert.notEqual((await page.locator('#spans-today').textContent())?.trim(), '0', 'the overview counts today\'s spans');
  await page.screenshot({ path: shot('overview'), fullPage: true });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Traces' }).click();
  await page.getByLabel('Service').fill(service);
  await page.getByRole('button', { name: 'Apply filters' }).click();
  const rows = page.locator('#traces tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 1, 'only the trace of that service');
  assert.match((await rows.first().textContent()) ?? '', /agent\.run/);
  assert.match((await rows.first().textContent()) ?? '', /flow-agent/);
  await page.screenshot({ path: shot('traces'), fullPage: true });

  // Its waterfall: DOM order and indentation follow the span tree; the failed span is marked.
  await rows.first().getByRole('link', { name: 'agent.run' }).click();
  await page.locator('#waterfall').waitFor();
  assert.match(page.url(), new RegExp(`/traces/${traceId}$`));
  const wf = await page.locator('#waterfall tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    name: tr.querySelector('td.name a')?.textContent, depth: Number(tr.getAttribute('data-depth')), cls: tr.querySelector('td.name')?.className,
    error: tr.classList.contains('error'), indent: parseFloat(getComputedStyle(tr.querySelector('td.name') as Element).paddingLeft),
  })));
  assert.deepEqual(wf.map((r) => [r.name, r.depth]), [['agent.run', 0], ['llm.call', 1], ['tool.search', 2], ['post.process', 1]]);
  assert.deepEqual(wf.map((r) => r.error), [false, false, false, true]);
  assert.ok(wf[0]!.indent < wf[1]!.indent && wf[1]!.indent < wf[2]!.indent && wf[3]!.indent === wf[1]!.indent, `indentation grows with depth: ${wf.map((r) => r.indent)}`);
  assert.match(await page.locator('#waterfall tbody tr.error .badge-error').textContent() ?? '', /error/);
  assert.equal((await page.locator('#total-tokens').textContent())?.trim(), '1,200 / 300');
  assert.equal((await page.locator('#total-cost').textContent())?.trim(), '$0.006');
  // A span link opens its details: attributes, events, links; markup in the status message stays text.
  await page.locator('#waterfall').getByRole('link', { name: 'llm.call' }).click();
  const llmDetails = page.locator('details.span[open]');
  await llmDetails.getByText('gen_ai.request.model').waitFor();
  assert.match((await llmDetails.textContent()) ?? '', /token\.first[\s\S]*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/);
  assert.equal(await page.locator('details.span b').count(), 0, 'no injected markup');
  assert.match(await page.content(), /formatter crashed &lt;b&gt;boom&lt;\/b&gt;/);
  await page.screenshot({ path: shot('trace-waterfall'), fullPage: true });

  // API key: shown once after creation, gone on reload; works until revoked.
  await page.goto(`${base}/keys`);
  await page.getByLabel('Name').fill('flow-key');
  await page.getByRole('button', { name: 'Create key' }).click();
  const reveal = page.locator('#one-time-secret');
  await reveal.waitFor();
  const key = ((await reveal.textContent()) ?? '').trim();
  assert.match(key, /^stra_[A-Za-z0-9_-]{43}$/);
  await page.screenshot({ path: shot('api-key-created'), fullPage: true });
  const me = await fetch(`${s.r.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(me.status, 200, 'the revealed key works');
  await page.reload();
  await page.locator('#keys').waitFor();
  assert.equal(await page.locator('#one-time-secret').count(), 0, 'not shown again after a reload');
  assert.equal((await page.content()).includes(key), false);
  const keyRow = page.locator('#keys tbody tr', { hasText: 'flow-key' });
  await keyRow.getByRole('button', { name: 'Revoke' }).click();
  await page.getByText('Key revoked').waitFor();
  assert.equal(await page.locator('#keys tbody tr', { hasText: 'flow-key' }).count(), 0);
  assert.equal((await fetch(`${s.r.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } })).status, 401, 'the revoked key is refused');
  await page.screenshot({ path: shot('api-keys'), fullPage: true });

  // Halts: resolve one from the page (the receiver's halts API is mandatory).
  const created = await fetch(`${s.r.url}/v1/halts`, {
    method: 'POST', headers: { authorization: `Bearer ${s.r.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ scope: 'agent', scope_value: 'flow-agent', reason: 'flow test halt' }),
  });
  assert.equal(created.status, 201, `POST /v1/halts: ${created.status}`);
  const haltId = ((await created.json()) as { id: number }).id;
  await page.goto(`${base}/halts`);
  const active = page.locator(`#active-halts tr[data-halt-id="${haltId}"]`);
  await active.waitFor();
  assert.match((await active.textContent()) ?? '', /agent flow-agent[\s\S]*flow test halt/);
  await page.screenshot({ path: shot('halts'), fullPage: true });
  await active.getByRole('button', { name: 'Resolve' }).click();
  await page.getByText(`Halt ${haltId} resolved.`).waitFor();
  assert.equal(await page.locator(`#active-halts tr[data-halt-id="${haltId}"]`).count(), 0);
  assert.match((await page.locator(`#halt-history tr[data-halt-id="${haltId}"]`).textContent()) ?? '', /cleared/);
  const h = await fetch(`${s.r.url}/v1/halts/${haltId}`, { headers: { authorization: `Bearer ${s.r.key}` } });
  assert.equal(((await h.json()) as { halt: { state: string } }).halt.state, 'cleared');

  // The audit log, and its chain verified by the receiver.
  await page.goto(`${base}/audit`);
  assert.ok(await page.locator('#audit-events tbody tr').count() > 3, 'sign-ins, MFA and key changes are audited');
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page.getByText(/Audit chain verified: valid \(\d+ events checked\)/).waitFor();
  await page.screenshot({ path: shot('audit'), fullPage: true });

  for (const [path, name] of [['/agents', 'agents'], ['/budgets', 'budgets'], ['/policies', 'policies'], ['/webhooks', 'webhooks'], ['/members', 'members'], ['/workers', 'workers']]) {
    await page.goto(`${base}${path}`);
    await page.locator('main h1').waitFor();
    assert.equal(await page.locator('.notice-error').count(), 0, `${path}: ${await page.locator('.notice-error').allTextContents()}`);
    await page.screenshot({ path: shot(name as string), fullPage: true });
  }
  assert.deepEqual(cspErrors, [], 'the pages run under their CSP without violations');

  // A viewer is told which role creating a key needs.
  const viewerEmail = await addUser(s.r, session.value, 'viewer');
  const vctx = await browser.newContext({ extraHTTPHeaders: { 'x-forwarded-for': freshIp() } });
  const vpage = await newPage(vctx, cspErrors);
  await signIn(vpage, base, viewerEmail);
  await vpage.getByRole('heading', { name: 'Overview' }).waitFor();
  await vpage.goto(`${base}/keys`);
  await vpage.getByLabel('Name').fill('viewer-key');
  await vpage.getByRole('button', { name: 'Create key' }).click();
  await vpage.getByRole('alert').getByText('Not allowed: requires role admin.').waitFor();
  await vpage.screenshot({ path: shot('viewer-forbidden'), fullPage: true });
  assert.deepEqual(cspErrors, []);
});
