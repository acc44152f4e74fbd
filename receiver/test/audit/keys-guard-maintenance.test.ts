// Key rotation (previous keys keep verifying old rows), the append-only guard against the
// application, and audit_partition_task (partitions ahead, anchors of moved heads).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  appendAudit, auditedProjects, auditKeys, auditPartitionWorker, runAuditMaintenance, verifyChain, AUDIT_PARTITION_TASK,
} from '../../src/audit/audit.js';
import { createFramework } from '../../src/workers/framework.js';
import { memoryLogger, makeProject, testConfig } from '../helpers.js';
import { appendN, auditDatabase, depsWith, event, KEY_1, KEY_2, testPool } from './support.js';

const db = await auditDatabase();
const { log, lines } = memoryLogger('debug');
const maintenanceCtx = { config: db.config, pool: db.pool, log };

const ROTATED = { STRATHON_AUDIT_HMAC_KEY: KEY_2, STRATHON_AUDIT_HMAC_KEY_ID: '2', STRATHON_AUDIT_HMAC_KEYS_PREVIOUS: `1:${KEY_1}` };
const ROTATED_OLD_KEY_DROPPED = { STRATHON_AUDIT_HMAC_KEY: KEY_2, STRATHON_AUDIT_HMAC_KEY_ID: '2' };

test('rows signed with a previous key verify while that key is configured, and fail as unknown key id without it', async () => {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, 3);
  await runAuditMaintenance(maintenanceCtx);
  const rotated = depsWith(db, ROTATED);
  await appendN(db.pool, rotated, project, 2);
  const ids = await db.pool.query('SELECT hmac_key_id FROM audit.events WHERE project_id = $1 ORDER BY sequence_no', [project]);
  assert.deepEqual(ids.rows.map((r) => r.hmac_key_id), [1, 1, 1, 2, 2]);

  assert.deepEqual(await verifyChain(db.pool, project, auditKeys(testConfig(db.url, ROTATED)).verifying),
    { valid: true, checked: 5, first_bad_sequence: null, reason: null });
  assert.deepEqual(await verifyChain(db.pool, project, auditKeys(testConfig(db.url, ROTATED_OLD_KEY_DROPPED)).verifying),
    { valid: false, checked: 0, first_bad_sequence: 1, reason: 'row 1 is signed with unknown key id 1' });

  // Anchors are judged by the same rule: rows signed with key 2, the anchor of their head with key 1.
  const p3 = await makeProject(db.pool);
  await appendN(db.pool, rotated, p3, 2);
  await runAuditMaintenance(maintenanceCtx);
  assert.equal((await verifyChain(db.pool, p3, auditKeys(testConfig(db.url, ROTATED)).verifying)).valid, true);
  const v = await verifyChain(db.pool, p3, auditKeys(testConfig(db.url, ROTATED_OLD_KEY_DROPPED)).verifying);
  assert.equal(v.valid, false);
  assert.equal(v.first_bad_sequence, 2);
  assert.match(v.reason ?? '', /^the periodic anchor of \S+ \(sequence 2\) is signed with unknown key id 1$/);

  const p2 = await makeProject(db.pool);
  await appendN(db.pool, db.deps, p2, 2);
  await appendN(db.pool, rotated, p2, 1);
  assert.deepEqual(await verifyChain(db.pool, p2, auditKeys(testConfig(db.url, ROTATED_OLD_KEY_DROPPED)).verifying),
    { valid: false, checked: 0, first_bad_sequence: 1, reason: 'row 1 is signed with unknown key id 1' });
  // A wrong key under the right id is a mismatch, not an unknown id.
  const wrong = { STRATHON_AUDIT_HMAC_KEY: KEY_2, STRATHON_AUDIT_HMAC_KEY_ID: '2', STRATHON_AUDIT_HMAC_KEYS_PREVIOUS: `1:${'33'.repeat(32)}` };
  assert.deepEqual(await verifyChain(db.pool, p2, auditKeys(testConfig(db.url, wrong)).verifying),
    { valid: false, checked: 0, first_bad_sequence: 1, reason: 'row 1 was modified (hash mismatch)' });
});

test('UPDATE, DELETE and TRUNCATE by the application are refused (trigger for every role, no grants for a plain role)', async () => {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, 2);
  // The receiver's own connection (here the database owner): the guard trigger refuses.
  await assert.rejects(db.pool.query(`UPDATE audit.events SET action = 'x' WHERE project_id = $1`, [project]),
    (err: pg.DatabaseError) => err.code === '42501' && /audit.events is append-only: UPDATE refused/.test(err.message));
  await assert.rejects(db.pool.query(`DELETE FROM audit.events WHERE project_id = $1`, [project]),
    (err: pg.DatabaseError) => err.code === '42501' && /append-only: DELETE refused/.test(err.message));
  await assert.rejects(db.pool.query('TRUNCATE audit.events'), /append-only: TRUNCATE refused/);
  const now = new Date();
  const month = `events_y${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  await assert.rejects(db.pool.query(`TRUNCATE audit.${month}`), /append-only: TRUNCATE refused/, 'partitions too');
  await assert.rejects(db.pool.query(`DELETE FROM audit.anchors`), /audit.anchors is append-only/);
  assert.equal((await verifyChain(db.pool, project, auditKeys(db.config).verifying)).checked, 2);

  // A plain application role that was granted what the application needs (SELECT, INSERT).
  const role = `audit_app_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  after(async () => {
    await db.pool.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await db.pool.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  });
  await db.pool.query(`GRANT USAGE ON SCHEMA audit TO ${role}; GRANT SELECT, INSERT ON audit.events TO ${role}`);
  const u = new URL(db.url);
  u.username = role;
  u.password = password;
  const app = testPool(u.toString(), 1);
  assert.equal((await app.query('SELECT count(*)::int AS n FROM audit.events WHERE project_id = $1', [project])).rows[0].n, 2);
  for (const sql of [`UPDATE audit.events SET action = 'x'`, 'DELETE FROM audit.events', 'TRUNCATE audit.events']) {
    await assert.rejects(app.query(sql), (err: pg.DatabaseError) => err.code === '42501', sql);
  }
});

test('runAuditMaintenance anchors every head that moved (once), and recreates missing partitions', async () => {
  const a = await makeProject(db.pool);
  const b = await makeProject(db.pool);
  await appendN(db.pool, db.deps, a, 2);
  await appendN(db.pool, db.deps, b, 1);
  const first = await runAuditMaintenance(maintenanceCtx);
  assert.ok(first.anchors_written >= 2);
  assert.deepEqual(await runAuditMaintenance(maintenanceCtx), { partitions_created: 0, anchors_written: 0 }, 'nothing moved: nothing written');
  await appendAudit(db.pool, event(a, 3), db.deps);
  assert.deepEqual(await runAuditMaintenance(maintenanceCtx), { partitions_created: 0, anchors_written: 1 });
  const anchors = await db.pool.query(`SELECT kind, sequence_no::int AS s FROM audit.anchors WHERE project_id = $1 ORDER BY anchored_at`, [a]);
  assert.deepEqual(anchors.rows, [{ kind: 'periodic', s: 2 }, { kind: 'periodic', s: 3 }]);
  assert.deepEqual(await verifyChain(db.pool, a, auditKeys(db.config).verifying), { valid: true, checked: 3, first_bad_sequence: null, reason: null });

  // A partition months ahead goes missing (dropped by hand): the next tick creates it again.
  const ahead = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 2, 1));
  const name = `events_y${ahead.getUTCFullYear()}m${String(ahead.getUTCMonth() + 1).padStart(2, '0')}`;
  await db.pool.query(`DROP TABLE audit.${name}`);
  const r = await runAuditMaintenance(maintenanceCtx);
  assert.equal(r.partitions_created, 1);
  assert.ok(lines.some((l) => l.includes('audit partitions created')));
  const exists = await db.pool.query('SELECT to_regclass($1)::text AS t', [`audit.${name}`]);
  assert.equal(exists.rows[0].t, `audit.${name}`);
});

test('auditPartitionWorker runs under the worker framework with its advisory lock', async () => {
  const project = await makeProject(db.pool);
  await appendN(db.pool, db.deps, project, 1);
  const def = auditPartitionWorker({ config: db.config });
  assert.equal(def.name, AUDIT_PARTITION_TASK);
  assert.equal(def.intervalSeconds, 60);
  assert.deepEqual(def.lock, { kind: 'advisory', key: 'strathon.worker.audit_partition_task' });
  const workers = createFramework({ pool: db.pool, log, registry: db.metrics.registry }, [def], { graceSeconds: 5 });
  after(() => workers.stop(2000));
  assert.equal(await workers.runOnce(AUDIT_PARTITION_TASK), 'succeeded');
  assert.deepEqual(workers.state(AUDIT_PARTITION_TASK)?.lastDetails, { partitions_created: 0, anchors_written: 1 });
  const status = await db.pool.query(`SELECT runs::int AS runs FROM core.worker_status WHERE worker = $1`, [AUDIT_PARTITION_TASK]);
  assert.equal(status.rows[0].runs, 1);
  // Every chain is listed for strathon-admin audit-verify, and every one verifies.
  const projects = await auditedProjects(db.pool);
  assert.ok(projects.includes(project));
  for (const p of projects) assert.equal((await verifyChain(db.pool, p, auditKeys(testConfig(db.url, ROTATED)).verifying)).valid, true, p);
});
