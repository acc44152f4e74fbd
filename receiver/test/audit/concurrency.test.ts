// 50 writers on separate connections, each appending inside its own transaction next to a state
// change, all on one project at once: the head lock serializes them into one gap-free chain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendAudit, auditKeys, verifyChain } from '../../src/audit/audit.js';
import { makeProject } from '../helpers.js';
import { auditDatabase, event, sequences } from './support.js';

const WRITERS = 50;
const PER_WRITER = 4;
const db = await auditDatabase(undefined, WRITERS + 5);
const keys = auditKeys(db.config).verifying;

test(`${WRITERS} concurrent writers on one project leave a gap-free chain that verifies`, { timeout: 120_000 }, async () => {
  const project = await makeProject(db.pool);
  const other = await makeProject(db.pool);
  await db.pool.query('CREATE TABLE public.state_changes (writer int, round int)');
  // Every writer holds its own connection for the whole run, so all 50 really are concurrent.
  const clients = await Promise.all(Array.from({ length: WRITERS }, () => db.pool.connect()));
  let start!: () => void;
  const go = new Promise<void>((r) => { start = r; });
  const sequencesSeen: number[] = [];
  const runs = clients.map(async (c, w) => {
    try {
      await go;
      for (let round = 0; round < PER_WRITER; round++) {
        await c.query('BEGIN');
        await c.query('INSERT INTO public.state_changes VALUES ($1, $2)', [w, round]);
        const a = await appendAudit(c, event(w % 5 === 0 ? other : project, w * 100 + round, { details: { writer: w, round } }), db.deps);
        if (w % 5 !== 0) sequencesSeen.push(a.sequenceNo);
        // A little work after the append keeps the head locked while others queue behind it.
        await c.query('SELECT pg_sleep(0.001)');
        await c.query('COMMIT');
      }
    } finally {
      c.release();
    }
  });
  start();
  await Promise.all(runs);

  const onProject = WRITERS - WRITERS / 5;
  const expected = onProject * PER_WRITER;
  assert.deepEqual(sequencesSeen.sort((a, b) => a - b), Array.from({ length: expected }, (_, i) => i + 1), 'each writer got a distinct number');
  assert.deepEqual(await sequences(db.pool, project), Array.from({ length: expected }, (_, i) => i + 1), 'stored: 1..N, no gap, no duplicate');
  assert.deepEqual(await verifyChain(db.pool, project, keys), { valid: true, checked: expected, first_bad_sequence: null, reason: null });
  assert.deepEqual(await verifyChain(db.pool, other, keys), { valid: true, checked: (WRITERS / 5) * PER_WRITER, first_bad_sequence: null, reason: null });
  const changes = await db.pool.query('SELECT count(*)::int AS n FROM public.state_changes');
  assert.equal(changes.rows[0].n, WRITERS * PER_WRITER, 'every state change committed with its audit row');
});

test('writers that roll back leave no hole, and pool-level appends interleave safely', { timeout: 120_000 }, async () => {
  const project = await makeProject(db.pool);
  const jobs = Array.from({ length: 40 }, async (_, i) => {
    if (i % 4 === 0) {
      const c = await db.pool.connect();
      try {
        await c.query('BEGIN');
        await appendAudit(c, event(project, i), db.deps);
        await c.query('ROLLBACK');
      } finally {
        c.release();
      }
      return;
    }
    await appendAudit(db.pool, event(project, i), db.deps);
  });
  await Promise.all(jobs);
  assert.deepEqual(await sequences(db.pool, project), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.deepEqual(await verifyChain(db.pool, project, keys), { valid: true, checked: 30, first_bad_sequence: null, reason: null });
});
