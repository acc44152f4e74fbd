// Tampering by someone with database access (the owner, append-only guard lifted): every kind
// SPEC §10 / §13.8 names is detected, with the first bad sequence number and a reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendAudit, auditKeys, verifyChain, writeAnchors } from '../../src/audit/audit.js';
import { VERIFY_CHUNK } from '../../src/audit/verify.js';
import { makeProject } from '../helpers.js';
import { appendN, auditDatabase, event, sequences, tamper } from './support.js';

const db = await auditDatabase();
const keys = auditKeys(db.config);

async function chainOf(n: number): Promise<string> {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, n);
  assert.equal((await verifyChain(db.pool, project, keys.verifying)).valid, true);
  return project;
}

const verify = (project: string) => verifyChain(db.pool, project, keys.verifying);

test('a modified row: hash mismatch at that row', async () => {
  const project = await chainOf(10);
  await tamper(db.pool, [[`UPDATE audit.events SET details = details || '{"n": 999}' WHERE project_id = $1 AND sequence_no = 5`, [project]]]);
  const v = await verify(project);
  assert.equal(v.valid, false);
  assert.equal(v.first_bad_sequence, 5);
  assert.equal(v.checked, 4);
  assert.match(v.reason ?? '', /row 5 was modified \(hash mismatch\)/);

  // Any column: the outcome of a refused login turned into a success.
  const p2 = await chainOf(10);
  await tamper(db.pool, [[`UPDATE audit.events SET outcome = 'failure' WHERE project_id = $1 AND sequence_no = 7`, [p2]]]);
  assert.deepEqual(await verify(p2), { valid: false, checked: 6, first_bad_sequence: 7, reason: 'row 7 was modified (hash mismatch)' });
});

test('a deleted row: sequence gap at that row (also the oldest row)', async () => {
  const project = await chainOf(10);
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no = 4`, [project]]]);
  assert.deepEqual(await verify(project), { valid: false, checked: 3, first_bad_sequence: 4, reason: 'row 4 is missing (deleted)' });

  const p2 = await chainOf(10);
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no <= 3`, [p2]]]);
  assert.deepEqual(await verify(p2), { valid: false, checked: 0, first_bad_sequence: 1, reason: 'rows 1..3 are missing (deleted)' });
});

test('a truncated tail: the head (or, with the head rewritten too, the latest anchor) is ahead of the last row', async () => {
  const project = await chainOf(10);
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no >= 9`, [project]]]);
  assert.deepEqual(await verify(project), {
    valid: false, checked: 8, first_bad_sequence: 9, reason: 'truncated: the chain head records sequence 10 but the last row is 8',
  });

  // A careful attacker also rewinds the head to row 8: the anchor written at sequence 10 gives it away.
  const p2 = await chainOf(10);
  const c = await db.pool.connect();
  try {
    assert.ok((await writeAnchors(c, keys)) >= 1);
  } finally {
    c.release();
  }
  await tamper(db.pool, [
    [`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no >= 9`, [p2]],
    [`UPDATE audit.chain_heads h SET last_sequence_no = 8, last_hash = e.hash FROM audit.events e
      WHERE h.project_id = $1 AND e.project_id = $1 AND e.sequence_no = 8`, [p2]],
  ]);
  const v = await verify(p2);
  assert.equal(v.valid, false);
  assert.equal(v.first_bad_sequence, 9);
  assert.equal(v.checked, 8);
  assert.match(v.reason ?? '', /^truncated: the anchor of \S+ records sequence 10 but the last row is 8$/);

  // Every row gone, head kept.
  const p3 = await chainOf(3);
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1`, [p3]]]);
  assert.deepEqual(await verify(p3), {
    valid: false, checked: 0, first_bad_sequence: 1, reason: 'truncated: the chain head records sequence 3 but no rows remain',
  });
});

test('reordered rows: prev_hash does not link', async () => {
  // Rows 3 and 4 trade places (their sequence numbers are swapped).
  const project = await chainOf(10);
  await tamper(db.pool, [
    [`UPDATE audit.events SET sequence_no = 1000 WHERE project_id = $1 AND sequence_no = 3`, [project]],
    [`UPDATE audit.events SET sequence_no = 3 WHERE project_id = $1 AND sequence_no = 4`, [project]],
    [`UPDATE audit.events SET sequence_no = 4 WHERE project_id = $1 AND sequence_no = 1000`, [project]],
  ]);
  assert.deepEqual(await sequences(db.pool, project), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'no gap to give it away');
  assert.deepEqual(await verify(project), {
    valid: false, checked: 2, first_bad_sequence: 3,
    reason: 'row 3 does not link to row 2 (prev_hash differs: rows reordered, replaced or re-linked)',
  });

  // The chain fields of rows 6 and 7 swapped instead (prev_hash and hash moved with them).
  const p2 = await chainOf(10);
  await tamper(db.pool, [[`
    UPDATE audit.events e SET prev_hash = o.prev_hash, hash = o.hash
    FROM audit.events o
    WHERE e.project_id = $1 AND o.project_id = $1 AND e.sequence_no IN (6, 7) AND o.sequence_no = 13 - e.sequence_no`, [p2]]]);
  assert.deepEqual(await verify(p2), {
    valid: false, checked: 5, first_bad_sequence: 6,
    reason: 'row 6 does not link to row 5 (prev_hash differs: rows reordered, replaced or re-linked)',
  });
});

test('a row signed with an unknown key id', async () => {
  const project = await chainOf(10);
  await tamper(db.pool, [[`UPDATE audit.events SET hmac_key_id = 99 WHERE project_id = $1 AND sequence_no = 6`, [project]]]);
  assert.deepEqual(await verify(project), { valid: false, checked: 5, first_bad_sequence: 6, reason: 'row 6 is signed with unknown key id 99' });
});

test('a duplicated row (forked chain) and a forged anchor are reported too', async () => {
  const project = await chainOf(5);
  await tamper(db.pool, [[`
    INSERT INTO audit.events SELECT project_id, sequence_no, occurred_at + interval '1 microsecond', gen_random_uuid(), actor_type,
      actor_id, actor_display, actor_key_prefix, action, action_category, outcome, resource_type, resource_id, request_id, source_ip,
      details, hmac_key_id, prev_hash, hash
    FROM audit.events WHERE project_id = $1 AND sequence_no = 3`, [project]]]);
  const v = await verify(project);
  assert.equal(v.valid, false);
  assert.equal(v.first_bad_sequence, 3);

  const p2 = await chainOf(5);
  const c = await db.pool.connect();
  try {
    await writeAnchors(c, keys);
  } finally {
    c.release();
  }
  await tamper(db.pool, [[`UPDATE audit.anchors SET sequence_no = 4 WHERE project_id = $1`, [p2]]]);
  const v2 = await verify(p2);
  assert.equal(v2.valid, false);
  assert.match(v2.reason ?? '', /anchor .* was modified or forged \(anchor HMAC mismatch\)/);
});

test('long chains are streamed in chunks: a hole wider than a chunk, and one across a chunk boundary, are found', { timeout: 120_000 }, async () => {
  const project = await makeProject(db.pool);
  const n = 2 * VERIFY_CHUNK + 100;
  // One transaction for all of them: one commit (fsync) instead of thousands.
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    for (let i = 1; i <= n; i++) await appendAudit(c, event(project, i), db.deps);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  assert.deepEqual(await verify(project), { valid: true, checked: n, first_bad_sequence: null, reason: null });
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no BETWEEN $2 AND $3`, [project, VERIFY_CHUNK + 1, 2 * VERIFY_CHUNK]]]);
  assert.deepEqual(await verify(project), {
    valid: false, checked: VERIFY_CHUNK, first_bad_sequence: VERIFY_CHUNK + 1, reason: `rows ${VERIFY_CHUNK + 1}..${2 * VERIFY_CHUNK} are missing (deleted)`,
  });
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no BETWEEN $2 AND $3`, [project, VERIFY_CHUNK - 5, VERIFY_CHUNK + 5]]]);
  assert.deepEqual(await verify(project), {
    valid: false, checked: VERIFY_CHUNK - 6, first_bad_sequence: VERIFY_CHUNK - 5, reason: `rows ${VERIFY_CHUNK - 5}..${2 * VERIFY_CHUNK} are missing (deleted)`,
  });
});
