// Intervention sync from memory (governance/sync.ts SyncSnapshots): the same answer as the SQL for
// every filter and window, a change is seen at once on the replica that made it and within 1 s on
// another (LISTEN/NOTIFY), and while the LISTEN connection is down every sync is the SQL.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidationListener } from '../../src/auth/invalidation.js';
import { createPool } from '../../src/db/pool.js';
import { interventionState, SyncSnapshots, type SyncState } from '../../src/governance/sync.js';
import { createTestDatabase, makeKey, makeProject, memoryLogger, silently, startTestReceiver, waitFor } from '../helpers.js';
import { startTcpProxy } from '../tcp-proxy.js';
import { call } from './support.js';

const url = await createTestDatabase();
const pool = createPool(url, { max: 4 });
after(() => pool.end());
const { log } = memoryLogger('error');

async function snapshots(listenUrl = url) {
  const invalidation = new InvalidationListener({ ...pool.options, connectionString: listenUrl }, log);
  invalidation.start();
  after(() => invalidation.close());
  await waitFor(() => invalidation.listening, 'listener up');
  return { snaps: new SyncSnapshots(pool, invalidation), invalidation };
}

const halt = (p: string, agent: string | null) => pool.query<{ id: string }>(
  `INSERT INTO core.halts (project_id, scope, scope_value, reason, actor_type) VALUES ($1, $2, $3, 'test', 'user') RETURNING id`,
  [p, agent === null ? 'project' : 'agent', agent]).then((r) => r.rows[0]?.id as string);

const budget = (p: string, scope: string, value: string | null, opts: { active?: boolean; exhausted?: boolean } = {}) => pool.query(
  `INSERT INTO core.budgets (project_id, name, scope, scope_value, budget_type, max_spend_usd, is_active, exhausted)
   VALUES ($1, 'b', $2, $3, 'cost', 10, $4, $5)`, [p, scope, value, opts.active ?? true, opts.exhausted ?? false]);

/** An approval; `expiresIn`/`resolvedAgo` in seconds (resolved ones get `status`). */
const approval = (p: string, agent: string | null, o: { expiresIn?: number; resolvedAgo?: number; status?: string } = {}) => pool.query(
  `INSERT INTO core.approvals (project_id, agent_name, tool_name, status, timeout_seconds, expires_at, resolved_at)
   VALUES ($1, $2, 'tool', $3, 60, now() + make_interval(secs => $4::float8),
           CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() - make_interval(secs => $5::float8) END)`,
  [p, agent, o.resolvedAgo === undefined ? 'pending' : o.status ?? 'approved', o.expiresIn ?? 600, o.resolvedAgo ?? null]);

/** Wait until every notification of what was committed so far has been handled (they arrive in commit order). */
async function settle(invalidation: InvalidationListener) {
  const marker = await makeProject(pool);
  let seen = false;
  const off = invalidation.subscribe((inv) => { if (inv.kind === 'sync' && inv.id === marker) seen = true; });
  await halt(marker, null);
  await waitFor(() => seen, 'marker notification');
  off();
}

const sorted = (s: SyncState) => ({
  halts: s.halts, budgets: s.budgets,
  // Pending approvals tie on agent_name: compare as sets within each status.
  approvals: [...s.approvals].sort((a, b) => `${a.status}${a.agent_name}${a.id}`.localeCompare(`${b.status}${b.agent_name}${b.id}`)),
});

test('the snapshot answers exactly what the SQL answers, for every agent filter and decision window', async () => {
  const { snaps } = await snapshots();
  const p = await makeProject(pool);
  await halt(p, null);
  await halt(p, 'a1');
  await halt(p, 'a2');
  const cleared = await halt(p, 'a3');
  await pool.query('UPDATE core.halts SET cleared_at = now() WHERE project_id = $1 AND id = $2', [p, cleared]);
  await budget(p, 'project', null);
  await budget(p, 'agent', 'a1', { exhausted: true });
  await budget(p, 'agent', 'a2', { active: false });
  await budget(p, 'model', 'gpt-4o');
  await approval(p, 'a1');
  await approval(p, 'a2', { expiresIn: -5 });
  await approval(p, null);
  await approval(p, 'a1', { resolvedAgo: 120 });
  await approval(p, 'a2', { resolvedAgo: 480, status: 'denied' });
  await approval(p, 'a1', { resolvedAgo: 1200, status: 'expired' });

  const agentSets = [null, [], ['a1'], ['a2', 'a3'], ['nobody']];
  const sinces = [300, 540, 1800, -60].map((s) => new Date(Date.now() - s * 1000));
  for (const agents of agentSets) {
    for (const since of sinces) {
      const fromSql = await interventionState(pool, p, agents, since);
      const fromSnap = await snaps.state(p, agents, since);
      assert.deepEqual(sorted(fromSnap), sorted(fromSql), `agents ${JSON.stringify(agents)}, since ${since.toISOString()}`);
    }
  }
  assert.equal(snaps.cachedProjects, 1, 'answered from a snapshot');
  const all = await snaps.state(p, null, new Date(Date.now() - 1800_000));
  assert.equal(all.approvals.filter((a) => a.status === 'expired').length, 2, 'a since older than the snapshot holds still sees the 20-minute-old decision (SQL)');
  const now = await snaps.state(p, ['a2'], new Date(Date.now() - 300_000));
  assert.deepEqual(now.approvals.map((a) => a.status), ['expired'], 'a pending approval past its expiry is reported expired');
  assert.deepEqual(now.halts.map((h) => h.scope_value).sort(), ['a2', null].sort());
});

test('a pending approval that expires while its snapshot is held is reported expired, as the SQL does', async () => {
  const { snaps, invalidation } = await snapshots();
  const p = await makeProject(pool);
  await approval(p, 'a1', { expiresIn: 0.3 });
  await settle(invalidation);
  const since = new Date(Date.now() - 300_000);
  assert.deepEqual((await snaps.state(p, null, since)).approvals.map((a) => a.status), ['pending']);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(snaps.cachedProjects, 1);
  assert.deepEqual((await snaps.state(p, null, since)).approvals.map((a) => a.status), ['expired']);
  assert.deepEqual((await interventionState(pool, p, null, since)).approvals.map((a) => a.status), ['expired']);
});

test('a change straight in SQL reaches a snapshot within 1 s (trigger path); a change no trigger reports is not seen', async () => {
  const { snaps } = await snapshots();
  const p = await makeProject(pool);
  const since = new Date(Date.now() - 300_000);
  assert.deepEqual((await snaps.state(p, ['a1'], since)).halts, []);
  await silently(url, `INSERT INTO core.halts (project_id, scope, scope_value, reason, actor_type) VALUES ($1, 'agent', 'a1', 'x', 'user')`, [p]);
  assert.deepEqual((await snaps.state(p, ['a1'], since)).halts, [], 'served from the snapshot');
  const id = await halt(p, 'a1');
  await waitFor(async () => (await snaps.state(p, ['a1'], since)).halts.length === 2, 'new halt seen', 1000);
  await pool.query('UPDATE core.halts SET cleared_at = now() WHERE project_id = $1 AND id = $2', [p, id]);
  await waitFor(async () => (await snaps.state(p, ['a1'], since)).halts.length === 1, 'cleared halt gone', 1000);
  await budget(p, 'agent', 'a1');
  await waitFor(async () => (await snaps.state(p, ['a1'], since)).budgets.length === 1, 'budget seen', 1000);
  await pool.query('UPDATE core.budgets SET exhausted = true WHERE project_id = $1', [p]);
  await waitFor(async () => (await snaps.state(p, ['a1'], since)).budgets[0]?.exhausted === true, 'exhausted seen', 1000);
  await approval(p, 'a1');
  await waitFor(async () => (await snaps.state(p, ['a1'], since)).approvals.length === 1, 'approval seen', 1000);
});

test("the budget monitor's spend updates do not drop a snapshot; a change of what sync reports does", async () => {
  const { invalidation } = await snapshots();
  const p = await makeProject(pool);
  const marker = await makeProject(pool);
  await budget(p, 'project', null);
  await settle(invalidation);
  const seen: string[] = [];
  invalidation.subscribe((inv) => seen.push(inv.kind === 'all' ? 'all' : `${inv.kind}:${inv.id}`));
  await pool.query(`UPDATE core.budgets SET spent_usd = 5, current_count = 3, evaluated_at = now(), auto_halted = true WHERE project_id = $1`, [p]);
  await halt(marker, null);
  // Notifications arrive in commit order: the marker's means the spend update's would have come first.
  await waitFor(() => seen.includes(`sync:${marker}`), 'marker notification');
  assert.ok(!seen.includes(`sync:${p}`), `no invalidation for a spend update: ${seen.join(', ')}`);
  await pool.query('UPDATE core.budgets SET is_active = false WHERE project_id = $1', [p]);
  await waitFor(() => seen.includes(`sync:${p}`), 'is_active change notifies');
});

test('halts, budgets and approvals changed through a receiver are seen at once by its next sync, and by another receiver', async () => {
  const a = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const b = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const p = await makeProject(pool);
  const key = await makeKey(pool, ['*'], p);
  const sync = async (base: string) => {
    const res = await call(base, 'POST', '/v1/intervention/sync', key, { agents: ['bot'] });
    assert.equal(res.status, 200, res.text);
    return res.body as SyncState;
  };
  for (let i = 0; i < 3; i++) {
    assert.deepEqual((await sync(a.url)).halts, []);
    assert.deepEqual((await sync(b.url)).halts, []);
  }
  const created = await call(a.url, 'POST', '/v1/halts', key, { scope: 'agent', scope_value: 'bot', reason: 'r' });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual((await sync(a.url)).halts.map((h) => h.id), [created.body.id], 'same replica: at once');
  await waitFor(async () => (await sync(b.url)).halts.length === 1, 'other replica', 1000);
  const cleared = await call(a.url, 'DELETE', `/v1/halts/${created.body.id}`, key);
  assert.equal(cleared.status, 200, cleared.text);
  assert.deepEqual((await sync(a.url)).halts, []);
  await waitFor(async () => (await sync(b.url)).halts.length === 0, 'other replica', 1000);

  const bud = await call(a.url, 'POST', '/v1/budgets', key, { name: 'bb', scope: 'agent', scope_value: 'bot', budget_type: 'cost', max_spend_usd: 5 });
  assert.equal(bud.status, 201, bud.text);
  assert.equal((await sync(a.url)).budgets.length, 1);
  const off = await call(a.url, 'PATCH', `/v1/budgets/${bud.body.budget?.id ?? bud.body.id}`, key, { is_active: false });
  assert.equal(off.status, 200, off.text);
  assert.equal((await sync(a.url)).budgets.length, 0);

  const asked = await call(a.url, 'POST', '/v1/approvals', key, { policy_id: 'a0a0a0a0-1111-4222-8333-444444444444', tool_name: 'send', agent_name: 'bot' });
  assert.equal(asked.status, 201, asked.text);
  const id = asked.body.approval?.id ?? asked.body.id;
  assert.deepEqual((await sync(a.url)).approvals.map((x) => [x.id, x.status]), [[id, 'pending']]);
  const ok = await call(a.url, 'POST', `/v1/approvals/${id}/approve`, key, {});
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual((await sync(a.url)).approvals.map((x) => [x.id, x.status]), [[id, 'approved']]);
  await waitFor(async () => (await sync(b.url)).approvals[0]?.status === 'approved', 'other replica', 1000);
});

test('LISTEN connection down: every sync is the SQL; back up: snapshots again', async () => {
  const u = new URL(url);
  const proxy = await startTcpProxy(u.hostname, Number(u.port));
  after(() => proxy.close());
  const { snaps, invalidation } = await snapshots(proxy.url(url));
  const p = await makeProject(pool);
  const since = new Date(Date.now() - 300_000);
  assert.deepEqual((await snaps.state(p, null, since)).halts, []);
  assert.equal(snaps.cachedProjects, 1);
  proxy.set('down');
  await waitFor(() => !invalidation.listening, 'listener down');
  assert.equal(snaps.cachedProjects, 0, 'dropped');
  await silently(url, `INSERT INTO core.halts (project_id, scope, scope_value, reason, actor_type) VALUES ($1, 'project', NULL, 'x', 'user')`, [p]);
  assert.equal((await snaps.state(p, null, since)).halts.length, 1, 'the SQL answers');
  assert.equal(snaps.cachedProjects, 0, 'nothing kept while down');
  proxy.set('up');
  await waitFor(() => invalidation.listening, 'listener back');
  assert.equal((await snaps.state(p, null, since)).halts.length, 1);
  assert.equal(snaps.cachedProjects, 1);
});

test("this process's own writes drop its snapshots at once, without waiting for their NOTIFY", async () => {
  const u = new URL(url);
  const proxy = await startTcpProxy(u.hostname, Number(u.port));
  after(() => proxy.close());
  const { snaps, invalidation } = await snapshots(proxy.url(url));
  const a = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const p = await makeProject(pool);
  const key = await makeKey(pool, ['*'], p);
  const since = new Date(Date.now() - 300_000);
  assert.deepEqual((await snaps.state(p, null, since)).halts, []);
  // The LISTEN connection stays open but hears nothing: only the local invalidation can drop it.
  proxy.set('hang');
  await halt(p, null);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(invalidation.listening);
  assert.deepEqual((await snaps.state(p, null, since)).halts, [], 'a change by another process is not seen (its NOTIFY is held)');
  const created = await call(a.url, 'POST', '/v1/halts', key, { scope: 'agent', scope_value: 'bot', reason: 'r' });
  assert.equal(created.status, 201, created.text);
  assert.equal((await snaps.state(p, null, since)).halts.length, 2, 'dropped by the write of this process');
  const cleared = await call(a.url, 'DELETE', `/v1/halts/${created.body.id}`, key);
  assert.equal(cleared.status, 200, cleared.text);
  assert.equal((await snaps.state(p, null, since)).halts.length, 1);
  const bud = await call(a.url, 'POST', '/v1/budgets', key, { name: 'bb', scope: 'project', budget_type: 'cost', max_spend_usd: 5 });
  assert.equal(bud.status, 201, bud.text);
  assert.equal((await snaps.state(p, null, since)).budgets.length, 1);
  const asked = await call(a.url, 'POST', '/v1/approvals', key, { policy_id: 'a0a0a0a0-1111-4222-8333-444444444444', tool_name: 'send', agent_name: 'bot' });
  assert.equal(asked.status, 201, asked.text);
  assert.equal((await snaps.state(p, null, since)).approvals.length, 1);
  proxy.set('down');
});
