// Appending to and verifying a project's chain: the stored rows, the hash definition, transactions
// (the caller's and appendAudit's own), hash-stable details, redaction, the metric.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { appendAudit, auditKeys, GENESIS_HASH, verifyChain } from '../../src/audit/audit.js';
import { canonicalRow } from '../../src/audit/canonical.js';
import { DEFAULT_PROJECT_ID, makeProject } from '../helpers.js';
import { appendN, auditDatabase, event, KEY_1, sequences } from './support.js';

const db = await auditDatabase();
const keys = auditKeys(db.config).verifying;

test('appended rows form a gap-free chain that verifies, each hash = HMAC(key, canonical || prev_hash)', async () => {
  const project = await makeProject(db.pool);
  const appended = await appendN(db.pool, db.deps, project, 12);
  assert.deepEqual(appended.map((a) => a.sequenceNo), [...Array(12).keys()].map((i) => i + 1));
  assert.deepEqual(await verifyChain(db.pool, project, keys), { valid: true, checked: 12, first_bad_sequence: null, reason: null });

  const rows = (await db.pool.query(
    `SELECT id, sequence_no, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
            actor_type, actor_id, actor_display, actor_key_prefix, action, action_category, outcome, resource_type, resource_id,
            request_id, source_ip, details, hmac_key_id, prev_hash, hash
     FROM audit.events WHERE project_id = $1 ORDER BY sequence_no`, [project])).rows;
  assert.equal(rows.length, 12);
  assert.ok(rows[0].prev_hash.equals(GENESIS_HASH), 'sequence 1 links to the genesis hash');
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (i > 0) assert.ok(r.prev_hash.equals(rows[i - 1].hash), `row ${i + 1} links to row ${i}`);
    assert.match(r.occurred_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    if (i > 0) assert.ok(r.occurred_at >= rows[i - 1].occurred_at, 'occurred_at never decreases along the chain');
    // The documented definition, computed independently of appendAudit.
    const canonical = JSON.stringify([
      'strathon.audit.v1', r.id, project, r.sequence_no, r.occurred_at, r.actor_type, r.actor_id, r.actor_display, r.actor_key_prefix,
      r.action, r.action_category, r.outcome, r.resource_type, r.resource_id, r.request_id, r.source_ip,
      { n: i + 1, name: `key ${i + 1}` }, 1,
    ]);
    const expected = createHmac('sha256', Buffer.from(KEY_1, 'hex')).update(canonical).update(r.prev_hash).digest();
    assert.ok(r.hash.equals(expected), `row ${i + 1} hash matches the documented canonical form`);
    assert.equal(r.action_category, 'api_key', 'category defaults to the action prefix');
    assert.equal(r.outcome, 'success');
    assert.equal(r.hmac_key_id, 1);
  }
  const head = (await db.pool.query('SELECT last_sequence_no::int AS s, last_hash FROM audit.chain_heads WHERE project_id = $1', [project])).rows[0];
  assert.equal(head.s, 12);
  assert.ok(head.last_hash.equals(rows[11].hash));
});

test('an empty chain verifies', async () => {
  const project = await makeProject(db.pool);
  assert.deepEqual(await verifyChain(db.pool, project, keys), { valid: true, checked: 0, first_bad_sequence: null, reason: null });
});

test('inside the caller\'s transaction: the row commits or rolls back with the caller\'s change, and rollback leaves no gap', async () => {
  const project = await makeProject(db.pool);
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`UPDATE core.projects SET name = 'renamed' WHERE id = $1`, [project]);
    const a = await appendAudit(c, event(project, 1, { action: 'project.update' }), db.deps);
    assert.equal(a.sequenceNo, 1);
    // Not visible to anyone else before COMMIT.
    assert.deepEqual(await sequences(db.pool, project), []);
    await c.query('ROLLBACK');
    assert.deepEqual(await sequences(db.pool, project), [], 'rolled back with the caller');
    const name = (await db.pool.query('SELECT name FROM core.projects WHERE id = $1', [project])).rows[0].name;
    assert.notEqual(name, 'renamed');

    await c.query('BEGIN');
    await c.query(`UPDATE core.projects SET name = 'renamed' WHERE id = $1`, [project]);
    const b = await appendAudit(c, event(project, 1, { action: 'project.update' }), db.deps);
    assert.equal(b.sequenceNo, 1, 'the rolled-back sequence number is reused: no gap');
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  assert.deepEqual(await sequences(db.pool, project), [1]);
  // A client outside a transaction: appendAudit opens and commits its own.
  const c2 = await db.pool.connect();
  try {
    assert.equal((await appendAudit(c2, event(project, 2), db.deps)).sequenceNo, 2);
    assert.equal(c2.getTransactionStatus(), 'I', 'its own transaction is closed again');
  } finally {
    c2.release();
  }
  assert.deepEqual(await sequences(db.pool, project), [1, 2]);
  assert.equal((await verifyChain(db.pool, project, keys)).valid, true);
});

test('a failed caller transaction is refused rather than silently appended to', async () => {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT 1/0').catch(() => undefined);
    // Postgres refuses too if node-pg has not yet seen the failed state.
    await assert.rejects(appendAudit(c, event(DEFAULT_PROJECT_ID, 1), db.deps), /already failed|current transaction is aborted/);
    await c.query('ROLLBACK');
  } finally {
    c.release();
  }
});

test('details round-trip hash-stably (nested keys, numbers, unicode, NUL, lone surrogates) and secrets are redacted', async () => {
  const project = await makeProject(db.pool);
  const details = {
    zeta: 1, alpha: { y: [3, { b: 2, a: 1 }], x: 'ü – 😀' }, big: 1e21, small: 5e-324, float: 0.1 + 0.2, neg: -0, bool: false, nothing: null,
    skipped: undefined, when: new Date('2026-01-02T03:04:05.678Z'), count: 12345678901234567890n, nul: 'a\u0000b', lone: 'x\ud800y',
    password: 'hunter2', nested: { refresh_token: 'abc', api_key: 'stra_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz' },
    note: 'rotated from stra_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA to a new key',
  };
  await appendAudit(db.pool, event(project, 1, { details, actor: { type: 'user', id: 'u1', display: 'ünï\u0000code@example.com' }, sourceIp: '::ffff:198.51.100.4' }), db.deps);
  assert.deepEqual(await verifyChain(db.pool, project, keys), { valid: true, checked: 1, first_bad_sequence: null, reason: null });
  const row = (await db.pool.query('SELECT details, actor_display, source_ip FROM audit.events WHERE project_id = $1', [project])).rows[0];
  assert.equal(row.details.password, '[REDACTED]');
  assert.equal(row.details.nested.refresh_token, '[REDACTED]');
  assert.equal(row.details.nested.api_key, '[REDACTED]');
  assert.equal(row.details.note, 'rotated from [REDACTED] to a new key');
  assert.equal(row.details.nul, 'ab');
  assert.equal(row.details.lone, 'x\ufffdy');
  assert.equal(row.details.when, '2026-01-02T03:04:05.678Z');
  assert.equal(row.details.count, '12345678901234567890');
  assert.equal('skipped' in row.details, false);
  assert.equal(row.actor_display, 'ünïcode@example.com');
  assert.equal(row.source_ip, '198.51.100.4', 'IPv4-mapped addresses are stored as plain IPv4');
  assert.ok(!JSON.stringify(row.details).includes('hunter2'));
});

test('canonical form sorts detail keys recursively, so key order never changes the hash', () => {
  const base = {
    id: 'i', projectId: 'p', sequenceNo: '1', occurredAt: '2026-01-01T00:00:00.000000Z', actorType: 'system' as const, actorId: null,
    actorDisplay: null, actorKeyPrefix: null, action: 'a', actionCategory: 'a', outcome: 'success' as const, resourceType: null,
    resourceId: null, requestId: null, sourceIp: null, hmacKeyId: 1,
  };
  const a = canonicalRow({ ...base, details: { b: 1, a: { d: 2, c: [{ f: 1, e: 2 }] } } });
  const b = canonicalRow({ ...base, details: { a: { c: [{ e: 2, f: 1 }], d: 2 }, b: 1 } });
  assert.equal(a.toString(), b.toString());
  assert.equal(a.toString(), '["strathon.audit.v1","i","p","1","2026-01-01T00:00:00.000000Z","system",null,null,null,"a","a","success",null,null,null,null,{"a":{"c":[{"e":2,"f":1}],"d":2},"b":1},1]');
});

test('strathon_audit_appends_total counts appends by category', async () => {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, 3, () => ({ action: 'auth.login' }));
  const text = await db.metrics.registry.metrics();
  const m = /strathon_audit_appends_total\{action_category="auth"\} (\d+)/.exec(text);
  assert.ok(m, text);
  assert.equal(Number(m[1]), 3);
});

test('invalid input is a programming error, not a row', async () => {
  await assert.rejects(appendAudit(db.pool, event('not-a-uuid', 1), db.deps), /not a UUID/);
  await assert.rejects(appendAudit(db.pool, event(DEFAULT_PROJECT_ID, 1, { action: ' ' }), db.deps), /action is required/);
});
