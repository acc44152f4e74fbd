// Keyset pagination of the governance lists (SPEC §7.1): GET /v1/approvals (newest first),
// /v1/budgets (oldest first) and /v1/policies (highest priority first) walked page by page reach
// every row exactly once in the list's order, ties on the timestamp included; another project's
// rows never appear; a bad cursor or limit is a 422.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestReceiver } from '../helpers.js';
import { call, freshProject } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { workers: { intervals: { budget_monitor_task: 3600 } } });
const POLICY = 'a0a0a0a0-1111-4222-8333-444444444444';
const TIE = '2026-01-02T03:04:05.123456Z';

type Api = Awaited<ReturnType<typeof freshProject>>['api'];

/** Every page of `path` at `limit` rows: the ids in page order, and the number of pages. */
async function walk(api: Api, path: string, envelope: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const body = await api('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    pages++;
    assert.ok(body[envelope].length <= limit, 'a page holds at most limit rows');
    ids.push(...body[envelope].map((x: { id: string }) => x.id));
    cursor = body.next_cursor;
    if (cursor !== null) assert.equal(body[envelope].length, limit, 'only a full page has a next cursor');
    assert.ok(pages <= 50, 'the walk ends');
  } while (cursor !== null);
  return { ids, pages };
}

/** The ids of a table's rows of one project in the order the list must give them. */
async function expectedOrder(sql: string, projectId: string): Promise<string[]> {
  return (await r.pool.query<{ id: string }>(sql, [projectId])).rows.map((x) => x.id);
}

async function twoProjects() {
  return [await freshProject(r), await freshProject(r)] as const;
}

test('approvals: every page walked with status=all gives each approval once, newest first', async () => {
  const [a, other] = await twoProjects();
  for (let i = 0; i < 8; i++) await a.api('POST', '/v1/approvals', { policy_id: POLICY, tool_name: `t${i}` });
  for (let i = 0; i < 3; i++) await other.api('POST', '/v1/approvals', { policy_id: POLICY, tool_name: 'other' });
  // Four share one requested_at, so the id breaks the tie across a page boundary.
  await r.pool.query(`UPDATE core.approvals SET requested_at = $2, expires_at = now() + interval '1 hour'
    WHERE id IN (SELECT id FROM core.approvals WHERE project_id = $1 ORDER BY id LIMIT 4)`, [a.id, TIE]);
  // Two decided, so status filters page too.
  const decided = await expectedOrder('SELECT id FROM core.approvals WHERE project_id = $1 ORDER BY id DESC LIMIT 2', a.id);
  for (const id of decided) await a.api('POST', `/v1/approvals/${id}/deny`, {});

  const want = await expectedOrder('SELECT id::text FROM core.approvals WHERE project_id = $1 ORDER BY requested_at DESC, id DESC', a.id);
  assert.equal(want.length, 8);
  const all = await walk(a.api, '/v1/approvals?status=all', 'approvals', 3);
  assert.deepEqual(all.ids, want);
  assert.equal(all.pages, 3);
  const pending = await walk(a.api, '/v1/approvals', 'approvals', 2);
  assert.deepEqual(pending.ids, want.filter((id) => !decided.includes(id)));
  assert.deepEqual((await walk(a.api, '/v1/approvals?status=denied', 'approvals', 1)).ids, want.filter((id) => decided.includes(id)));
  assert.deepEqual((await a.api('GET', '/v1/approvals?status=all&limit=8')).next_cursor, null, 'an exactly full last page has no cursor');
});

test('budgets: every page gives each budget once, oldest first; include_inactive pages too', async () => {
  const [a, other] = await twoProjects();
  for (let i = 0; i < 7; i++) await a.api('POST', '/v1/budgets', { name: `b${i}`, scope: 'project', max_spend_usd: '10', budget_duration: '1d', action: 'alert', is_active: i % 3 !== 0 });
  await other.api('POST', '/v1/budgets', { name: 'other', scope: 'project', max_spend_usd: '10', budget_duration: '1d', action: 'alert' });
  await r.pool.query('UPDATE core.budgets SET created_at = $2 WHERE id IN (SELECT id FROM core.budgets WHERE project_id = $1 ORDER BY id LIMIT 3)', [a.id, TIE]);

  const want = await expectedOrder('SELECT id::text FROM core.budgets WHERE project_id = $1 ORDER BY created_at, id', a.id);
  const active = await expectedOrder('SELECT id::text FROM core.budgets WHERE project_id = $1 AND is_active ORDER BY created_at, id', a.id);
  assert.ok(active.length > 0 && active.length < want.length);
  assert.deepEqual((await walk(a.api, '/v1/budgets?include_inactive=true', 'budgets', 2)).ids, want);
  assert.deepEqual((await walk(a.api, '/v1/budgets', 'budgets', 2)).ids, active);
});

test('policies: every page gives each policy once, highest priority first; without limit the whole set', async () => {
  const [a, other] = await twoProjects();
  for (let i = 0; i < 9; i++) await a.api('POST', '/v1/policies', { name: `p${i}`, match_expression: 'true', action: 'log', priority: i % 3 });
  await other.api('POST', '/v1/policies', { name: 'other', match_expression: 'true', action: 'log' });
  await r.pool.query('UPDATE core.policies SET created_at = $2 WHERE id IN (SELECT id FROM core.policies WHERE project_id = $1 ORDER BY id LIMIT 5)', [a.id, TIE]);

  const want = await expectedOrder('SELECT id::text FROM core.policies WHERE project_id = $1 ORDER BY priority DESC, created_at, id', a.id);
  assert.equal(want.length, 9);
  assert.deepEqual((await walk(a.api, '/v1/policies', 'policies', 2)).ids, want);
  assert.deepEqual((await walk(a.api, '/v1/policies', 'policies', 4)).ids, want);
  // Strathon's SDK loads its policies with one bare GET and enforces them client-side.
  const whole = await a.api('GET', '/v1/policies');
  assert.deepEqual([whole.policies.map((p: { id: string }) => p.id), whole.next_cursor, whole.intervention_default_action], [want, null, 'allow']);
});

test('a bad cursor or limit is a 422 naming the parameter; a cursor of another list is refused', async () => {
  const [a] = await twoProjects();
  for (let i = 0; i < 2; i++) await a.api('POST', '/v1/budgets', { name: `b${i}`, scope: 'project', max_spend_usd: '1', budget_duration: '1d', action: 'alert' });
  const budgetCursor = (await a.api('GET', '/v1/budgets?limit=1')).next_cursor;
  assert.equal(typeof budgetCursor, 'string');
  const forged = Buffer.from(JSON.stringify({ k: 'budget', t: '2026-13-45T00:00:00.000000Z', id: '00000000-0000-0000-0000-000000000000' })).toString('base64url');
  for (const path of ['/v1/approvals', '/v1/budgets', '/v1/policies']) {
    for (const q of ['cursor=nope!', 'cursor=e30', `cursor=${forged}`, 'limit=0', 'limit=501', 'limit=abc']) {
      const res = await call(r.url, 'GET', `${path}?${q}`, a.key);
      assert.equal(res.status, 422, `${path}?${q} → ${res.status} ${res.text}`);
      assert.deepEqual((res.body as { detail: { loc: string[] }[] }).detail[0]?.loc, ['query', q.split('=')[0]]);
    }
  }
  for (const path of ['/v1/approvals', '/v1/policies']) {
    assert.equal((await call(r.url, 'GET', `${path}?cursor=${budgetCursor}`, a.key)).status, 422, `a budget cursor on ${path}`);
  }
});

test.after(() => r.close());
