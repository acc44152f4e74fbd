// Partition maintenance is the only remover of audit rows (SPEC §10): it records a signed 'prune'
// anchor first, verification continues from it, and the guard lets ensure_month_partitions move
// rows out of the DEFAULT partition. Its own database: dropping this month's partition touches
// every project in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auditKeys, dropAuditPartition, ensureAuditPartitions, verifyChain } from '../../src/audit/audit.js';
import { makeProject } from '../helpers.js';
import { appendN, auditDatabase, sequences, tamper } from './support.js';

const db = await auditDatabase();
const keys = auditKeys(db.config);
const verify = (project: string) => verifyChain(db.pool, project, keys.verifying);

test('dropping a partition records a prune anchor first; the chain then verifies from it, and deletions after it are still caught', async () => {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, 6);
  const other = await makeProject(db.pool);
  await appendN(db.pool, db.deps, other, 2);
  const now = new Date();
  const partition = `events_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  const c = await db.pool.connect();
  try {
    assert.equal(await dropAuditPartition(c, partition, keys), 2, 'one prune anchor per project in the partition');
  } finally {
    c.release();
  }
  assert.deepEqual(await sequences(db.pool, project), [], 'the partition held every row');
  const prune = (await db.pool.query(`SELECT kind, sequence_no::int AS s FROM audit.anchors WHERE project_id = $1`, [project])).rows;
  assert.deepEqual(prune, [{ kind: 'prune', s: 6 }]);
  assert.deepEqual(await verify(project), { valid: true, checked: 0, first_bad_sequence: null, reason: null });
  assert.deepEqual(await verify(other), { valid: true, checked: 0, first_bad_sequence: null, reason: null });

  // New rows (in the DEFAULT partition until this month's partition is back) continue the chain.
  await appendN(db.pool, db.deps, project, 3);
  assert.deepEqual(await sequences(db.pool, project), [7, 8, 9]);
  assert.deepEqual(await verify(project), { valid: true, checked: 3, first_bad_sequence: null, reason: null });
  // Recreating the month moves those rows out of the DEFAULT partition (the guard allows exactly that).
  const c2 = await db.pool.connect();
  try {
    assert.ok((await ensureAuditPartitions(c2, 3)) >= 1);
  } finally {
    c2.release();
  }
  const where = await db.pool.query(`SELECT DISTINCT tableoid::regclass::text AS t FROM audit.events WHERE project_id = $1`, [project]);
  assert.deepEqual(where.rows, [{ t: `audit.${partition}` }]);
  assert.deepEqual(await verify(project), { valid: true, checked: 3, first_bad_sequence: null, reason: null });

  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no = 7`, [project]]]);
  assert.deepEqual(await verify(project), { valid: false, checked: 0, first_bad_sequence: 7, reason: 'row 7 is missing (deleted)' });
});

test('a partition whose rows do not start every chain in it is not dropped', async () => {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, 3);
  await tamper(db.pool, [[`DELETE FROM audit.events WHERE project_id = $1 AND sequence_no = 1`, [project]]]);
  const now = new Date();
  const partition = `events_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  const c = await db.pool.connect();
  try {
    await assert.rejects(dropAuditPartition(c, partition, keys), /do not start its chain/);
    await assert.rejects(dropAuditPartition(c, 'events_default', keys), /not an audit.events monthly partition/);
  } finally {
    c.release();
  }
  assert.deepEqual(await sequences(db.pool, project), [2, 3], 'nothing was dropped');
  const anchors = await db.pool.query(`SELECT count(*)::int AS n FROM audit.anchors WHERE project_id = $1`, [project]);
  assert.equal(anchors.rows[0].n, 0, 'and no anchor recorded');
});
