// GET /v1/audit/events, GET /v1/audit/verify and POST /v1/compliance/export over HTTP, served by
// auditRoutes on an app built next to a real receiver (its pool, metrics, ingest and keys).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendAudit, runAuditMaintenance } from '../../src/audit/audit.js';
import { DEFAULT_PROJECT_ID, makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { postSpans, traceId } from '../api/otlp-json.js';
import { call, startAuditApi, tamper, type AuditApi } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });
const api: AuditApi = await startAuditApi(r);
const deps = api.ctx;
const P = DEFAULT_PROJECT_ID;

const ACTIONS = ['api_key.create', 'auth.login', 'halt.create'] as const;
const USER = { type: 'user' as const, id: '7d1c1d62-0000-4000-8000-00000000000a', display: 'ada@example.com' };
const KEY_ACTOR = { type: 'api_key' as const, id: '7d1c1d62-0000-4000-8000-00000000000b', display: 'stra_AbCdEfG', keyPrefix: 'stra_AbCdEfG' };
const TOTAL = 60;
const occurred: string[] = [];
for (let i = 1; i <= TOTAL; i++) {
  const action = ACTIONS[i % 3] as string;
  const a = await appendAudit(r.pool, {
    projectId: P,
    actor: i % 2 ? USER : KEY_ACTOR,
    action,
    outcome: action === 'auth.login' && i % 4 === 0 ? 'failure' : 'success',
    resource: { type: action.split('.')[0] as string, id: `r-${i}` },
    requestId: `req-${i}`,
    sourceIp: '198.51.100.9',
    details: { i, ...(i === 1 ? { on_behalf_of: 'grace@example.com', resource_parent: 'project:default' } : {}) },
  }, deps);
  occurred.push(a.occurredAt);
}

// Another project with its own events and its own audit:read key.
const other = await makeProject(r.pool);
const otherKey = await makeKey(r.pool, ['audit:read'], other);
await appendAudit(r.pool, { projectId: other, actor: USER, action: 'other.secret_thing', resource: { type: 'other' } }, deps);

const get = (path: string, key: string | undefined = r.key) => call(api.url, key, 'GET', path);
const post = (path: string, body: unknown, key: string | undefined = r.key) => call(api.url, key, 'POST', path, body);
const seqs = (body: { data: { sequence_no: number }[] }) => body.data.map((e) => e.sequence_no);

test('GET /v1/audit/events: newest first, exactly the SPEC §7.3 shape', async () => {
  const res = await get('/v1/audit/events');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.data.length, 50, 'default limit 50');
  assert.deepEqual(seqs(res.json), Array.from({ length: 50 }, (_, i) => TOTAL - i));
  assert.equal(typeof res.json.next_cursor, 'string');
  const first = (await get('/v1/audit/events?limit=500')).json.data.at(-1);
  assert.deepEqual(Object.keys(first).sort(), [
    'action', 'action_category', 'actor', 'actor_ip', 'actor_key_prefix', 'category', 'created_at', 'details', 'id', 'occurred_at',
    'outcome', 'project_id', 'request_id', 'resource', 'resource_type', 'sequence_no', 'source_ip',
  ]);
  assert.deepEqual(first.actor, { type: 'user', id: USER.id, display: 'ada@example.com', on_behalf_of: 'grace@example.com' });
  assert.deepEqual(first.resource, { type: 'auth', id: 'r-1', parent: 'project:default' });
  assert.equal(first.sequence_no, 1);
  assert.equal(first.project_id, P);
  assert.equal(first.action, 'auth.login');
  assert.equal(first.action_category, 'auth');
  assert.equal(first.category, 'auth');
  assert.equal(first.outcome, 'success');
  assert.equal(first.resource_type, 'auth');
  assert.equal(first.request_id, 'req-1');
  assert.equal(first.source_ip, '198.51.100.9');
  assert.equal(first.actor_ip, '198.51.100.9');
  assert.equal(first.actor_key_prefix, null);
  assert.equal(first.occurred_at, occurred[0]);
  assert.equal(first.created_at, occurred[0]);
  assert.match(first.id, /^[0-9a-f-]{36}$/);
  assert.equal(first.details.i, 1);
  const second = (await get('/v1/audit/events?limit=500')).json.data.at(-2);
  assert.equal(second.actor_key_prefix, 'stra_AbCdEfG');
  assert.deepEqual(second.actor, { type: 'api_key', id: KEY_ACTOR.id, display: 'stra_AbCdEfG', on_behalf_of: null });
});

test('keyset pagination visits every event exactly once, while new events are appended', async () => {
  const seen: number[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await get(`/v1/audit/events?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.status, 200, res.text);
    seen.push(...seqs(res.json));
    cursor = res.json.next_cursor;
    // Appended mid-walk: newer than the cursor, so never shown on a later page.
    if (pages++ === 2) await appendAudit(r.pool, { projectId: P, actor: USER, action: 'late.event' }, deps);
  } while (cursor);
  assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => TOTAL - i));
  assert.equal(pages, Math.ceil(TOTAL / 7));
});

test('filters: action, Strathon\'s filter=, actor, resource_type, outcome, since/until', async () => {
  const byAction = await get('/v1/audit/events?action=auth.login&limit=500');
  assert.equal(byAction.json.data.length, TOTAL / 3);
  assert.ok(byAction.json.data.every((e: { action: string }) => e.action === 'auth.login'));
  // The CLI's form (strathon audit list --action auth.login).
  const scim = await get(`/v1/audit/events?limit=500&filter=${encodeURIComponent('action eq "auth.login"')}`);
  assert.deepEqual(seqs(scim.json), seqs(byAction.json));
  const failed = await get(`/v1/audit/events?limit=500&filter=${encodeURIComponent('action eq "auth.login" and outcome eq "failure"')}`);
  assert.ok(failed.json.data.length > 0);
  assert.ok(failed.json.data.every((e: { action: string; outcome: string }) => e.action === 'auth.login' && e.outcome === 'failure'));

  const byUser = await get('/v1/audit/events?limit=500&actor=ada@example.com');
  assert.ok(byUser.json.data.length >= TOTAL / 2);
  assert.ok(byUser.json.data.every((e: { actor: { type: string } }) => e.actor.type === 'user'));
  const byPrefix = await get('/v1/audit/events?limit=500&actor=stra_AbCdEfG');
  assert.equal(byPrefix.json.data.length, TOTAL / 2);
  const byResource = await get('/v1/audit/events?limit=500&resource_type=halt');
  assert.equal(byResource.json.data.length, TOTAL / 3);
  assert.ok(byResource.json.data.every((e: { resource_type: string }) => e.resource_type === 'halt'));

  // since (RFC 3339, inclusive) .. until (unix ns, exclusive), on occurred_at.
  const since = occurred[9] as string;
  const untilNs = (BigInt(Date.parse(occurred[19] as string)) * 1_000_000n + BigInt((occurred[19] as string).slice(23, 26)) * 1000n).toString();
  const ranged = await get(`/v1/audit/events?limit=500&since=${since}&until=${untilNs}`);
  assert.equal(ranged.status, 200, ranged.text);
  const inRange = occurred.map((t, i) => ({ t, s: i + 1 })).filter((x) => x.t >= since && x.t < (occurred[19] as string)).map((x) => x.s).reverse();
  assert.deepEqual(seqs(ranged.json), inRange);
  assert.ok(inRange.includes(10) && !inRange.includes(20));
});

test('bad parameters are 422 with the parameter named', async () => {
  for (const [qs, loc] of [
    ['limit=0', 'limit'], ['limit=501', 'limit'], ['cursor=nope!', 'cursor'], ['cursor=eyJrIjoidCJ9', 'cursor'],
    [`filter=${encodeURIComponent('action = "x"')}`, 'filter'], [`filter=${encodeURIComponent('color eq "x"')}`, 'filter'],
    [`filter=${encodeURIComponent('action eq "x" or action eq "y"')}`, 'filter'], ['since=yesterday', 'since'],
  ] as const) {
    const res = await get(`/v1/audit/events?${qs}`);
    assert.equal(res.status, 422, `${qs}: ${res.text}`);
    assert.deepEqual(res.json.detail[0].loc, ['query', loc], qs);
  }
});

test('GET /v1/audit/verify: the §10 shape, valid, then the first bad sequence after tampering', async () => {
  const p = await makeProject(r.pool);
  const key = await makeKey(r.pool, ['audit:read'], p);
  for (let i = 0; i < 5; i++) await appendAudit(r.pool, { projectId: p, actor: USER, action: 'policy.update', details: { i } }, deps);
  const ok = await get('/v1/audit/verify', key);
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json, { valid: true, checked: 5, first_bad_sequence: null, reason: null });
  await tamper(r.pool, [[`UPDATE audit.events SET details = '{"i": 42}' WHERE project_id = $1 AND sequence_no = 4`, [p]]]);
  assert.deepEqual((await get('/v1/audit/verify', key)).json, { valid: false, checked: 3, first_bad_sequence: 4, reason: 'row 4 was modified (hash mismatch)' });
});

test('another project\'s key sees none of this project\'s audit log', async () => {
  const list = await get('/v1/audit/events?limit=500', otherKey);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.data.map((e: { action: string }) => e.action), ['other.secret_thing']);
  assert.equal((await get('/v1/audit/events?action=auth.login', otherKey)).json.data.length, 0);
  // A cursor from this project's list does not reach into it either.
  const cursor = (await get('/v1/audit/events?limit=1')).json.next_cursor;
  assert.deepEqual((await get(`/v1/audit/events?cursor=${cursor}`, otherKey)).json.data.map((e: { project_id: string }) => e.project_id), [other]);
  assert.deepEqual((await get('/v1/audit/verify', otherKey)).json, { valid: true, checked: 1, first_bad_sequence: null, reason: null });
  const nd = await post('/v1/compliance/export', { format: 'ndjson' }, otherKey);
  const lines = nd.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.type), ['event', 'verification']);
  assert.equal(lines[0].project_id, other);
  const report = await post('/v1/compliance/export', { format: 'json' }, otherKey);
  assert.equal(report.json.project_id, other);
  assert.equal(report.json.audit.events, 1);
  // And this project's key does not see the other project's event.
  const mine = await get('/v1/audit/events?limit=500&action=other.secret_thing');
  assert.equal(mine.json.data.length, 0);
});

test('the audit:read scope is required; no credential is 401', async () => {
  const tracesOnly = await makeKey(r.pool, ['traces:read']);
  for (const [method, path] of [['GET', '/v1/audit/events'], ['GET', '/v1/audit/verify'], ['POST', '/v1/compliance/export']] as const) {
    const denied = await call(api.url, tracesOnly, method, path, method === 'POST' ? {} : undefined);
    assert.equal(denied.status, 403, path);
    assert.deepEqual(denied.json, { detail: 'missing required scope: audit:read' });
    const anonymous = await call(api.url, undefined, method, path, method === 'POST' ? {} : undefined);
    assert.equal(anonymous.status, 401, path);
  }
});

test('POST /v1/compliance/export json: computed from the project\'s real state', async () => {
  const p = await makeProject(r.pool);
  const key = await makeKey(r.pool, ['audit:read', 'traces:write'], p);
  for (let i = 0; i < 3; i++) await appendAudit(r.pool, { projectId: p, actor: USER, action: 'budget.create' }, deps);
  let res = await post('/v1/compliance/export', { format: 'json' }, key);
  assert.equal(res.status, 200, res.text);
  const rep = res.json;
  assert.equal(rep.framework, 'eu-ai-act');
  assert.equal(rep.project_id, p);
  assert.ok(!Number.isNaN(Date.parse(rep.generated_at)));
  assert.deepEqual(Object.keys(rep.articles).sort(),
    ['art_12_record_keeping', 'art_13_transparency', 'art_14_human_oversight', 'art_15_robustness', 'art_9_risk_management']);
  for (const a of Object.values(rep.articles) as { compliant: unknown; evidence: unknown }[]) {
    assert.equal(typeof a.compliant, 'boolean');
    assert.equal(typeof a.evidence, 'object');
  }
  assert.deepEqual(rep.audit, { events: 3, verified: true });
  assert.equal(rep.articles.art_12_record_keeping.evidence.audit_chain.valid, true);
  // Default retention (30 days) is below the six months Article 19 asks for: honestly not compliant.
  assert.equal(rep.articles.art_12_record_keeping.compliant, false);
  assert.equal(rep.articles.art_12_record_keeping.evidence.retention_days, 30);
  assert.ok(rep.recommendations.some((x: string) => /at least 180 days/.test(x)));
  // Features this build lacks are reported as not configured, never assumed.
  assert.equal(rep.articles.art_14_human_oversight.compliant, false);
  assert.equal(rep.articles.art_14_human_oversight.evidence.approval_policies.configured, false);
  assert.equal(rep.articles.art_9_risk_management.compliant, false);
  assert.equal(rep.articles.art_15_robustness.evidence.budgets.configured, false);
  assert.equal(rep.articles.art_13_transparency.compliant, false, 'no traces yet');

  // Give it what it asked for: a year of retention and some traces.
  await r.pool.query('UPDATE core.projects SET retention_days = 365 WHERE id = $1', [p]);
  await postSpans(r.url, key, 'svc', [{ traceId: traceId(), name: 'agent-run', startNs: BigInt(Date.now()) * 1_000_000n, attrs: { 'gen_ai.agent.name': { stringValue: 'planner' } } }]);
  res = await post('/v1/compliance/export', {}, key);
  assert.equal(res.json.articles.art_12_record_keeping.compliant, true);
  assert.equal(res.json.articles.art_12_record_keeping.evidence.retention_days, 365);
  assert.equal(res.json.articles.art_13_transparency.compliant, true);
  assert.equal(res.json.articles.art_13_transparency.evidence.traces_in_period, 1);

  // A tampered chain makes record-keeping fail, with the evidence saying where.
  await tamper(r.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no = 2`, [p]]]);
  res = await post('/v1/compliance/export', { format: 'json' }, key);
  assert.equal(res.json.articles.art_12_record_keeping.compliant, false);
  assert.equal(res.json.articles.art_12_record_keeping.evidence.audit_chain.first_bad_sequence, 2);
  assert.deepEqual(res.json.audit, { events: 2, verified: false });

  // since/until narrow the period counted.
  const future = await post('/v1/compliance/export', { format: 'json', since: '2200-01-01T00:00:00Z' }, key);
  assert.equal(future.json.audit.events, 0);
  assert.equal(future.json.articles.art_13_transparency.evidence.traces_in_period, 0);
});

test('POST /v1/compliance/export sarif: SARIF 2.1.0, one result per non-compliant article', async () => {
  const res = await post('/v1/compliance/export', { format: 'sarif' });
  assert.equal(res.status, 200, res.text);
  assert.match(res.contentType, /^application\/sarif\+json/);
  const sarif = res.json;
  assert.equal(sarif.version, '2.1.0');
  assert.match(sarif.$schema, /sarif-2\.1\.0/);
  assert.equal(sarif.runs.length, 1);
  const run = sarif.runs[0];
  assert.equal(run.tool.driver.name, 'strathon-ts');
  assert.equal(run.tool.driver.rules.length, 5);
  const report = (await post('/v1/compliance/export', { format: 'json' })).json;
  const nonCompliant = Object.entries(report.articles).filter(([, a]) => !(a as { compliant: boolean }).compliant).map(([k]) => k).sort();
  assert.deepEqual(run.results.map((x: { ruleId: string }) => x.ruleId).sort(), nonCompliant);
  for (const result of run.results) {
    assert.equal(result.level, 'error');
    assert.equal(run.tool.driver.rules[result.ruleIndex].id, result.ruleId);
    assert.equal(typeof result.message.text, 'string');
  }
});

test('POST /v1/compliance/export ndjson: events and anchors of the range, then the verification as the last line', async () => {
  const p = await makeProject(r.pool);
  const key = await makeKey(r.pool, ['audit:read'], p);
  const times: string[] = [];
  for (let i = 0; i < 7; i++) times.push((await appendAudit(r.pool, { projectId: p, actor: KEY_ACTOR, action: 'api_key.rotate', details: { i } }, deps)).occurredAt);
  await runAuditMaintenance({ config: deps.config, pool: r.pool, log: deps.log });
  const res = await post('/v1/compliance/export', { format: 'ndjson' }, key);
  assert.equal(res.status, 200);
  assert.match(res.contentType, /^application\/x-ndjson/);
  assert.ok(res.text.endsWith('\n'));
  const lines = res.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.type), ['event', 'event', 'event', 'event', 'event', 'event', 'event', 'anchor', 'verification']);
  assert.deepEqual(lines.slice(0, 7).map((l) => l.sequence_no), [1, 2, 3, 4, 5, 6, 7], 'oldest first');
  assert.match(lines[0].hash, /^[0-9a-f]{64}$/);
  assert.equal(lines[1].prev_hash, lines[0].hash, 'chain fields are exported for offline checking');
  assert.equal(lines[7].sequence_no, 7);
  assert.equal(lines[7].hash, lines[6].hash);
  assert.deepEqual(lines.at(-1), { type: 'verification', valid: true, checked: 7, first_bad_sequence: null, reason: null });

  // A range: only the events inside it (and no anchor: it was written after them).
  const ranged = await post('/v1/compliance/export', { format: 'ndjson', since: times[2], until: times[5] }, key);
  const rl = ranged.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rl.filter((l) => l.type === 'event').map((l) => l.sequence_no), [3, 4, 5]);
  assert.equal(rl.filter((l) => l.type === 'anchor').length, 0);
  assert.equal(rl.at(-1).type, 'verification');
});

test('compliance export validates its body', async () => {
  for (const [body, loc] of [
    [{ format: 'pdf' }, ['body', 'format']], [{ format: 'json', since: 'last week' }, ['body', 'since']],
    [{ since: '2025-02-01T00:00:00Z', until: '2025-01-01T00:00:00Z' }, ['body', 'since']], [{ until: true }, ['body', 'until']],
  ] as const) {
    const res = await post('/v1/compliance/export', body);
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.deepEqual(res.json.detail[0].loc, loc);
  }
  assert.equal((await post('/v1/compliance/export', { format: 'JSON', since: 0 })).status, 200, 'case-insensitive format, numeric ns');
});
