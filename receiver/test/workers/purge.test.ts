// retention_cleanup_task purges expired sessions, tokens, mfa challenges and limit counters, and keeps live ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createTestDatabase, makeProject } from '../helpers.js';
import { createPool } from '../../src/db/pool.js';
import { purgeExpiredRows } from '../../src/workers/purge.js';

test('expired auth rows are purged, live ones kept', async () => {
  const pool = createPool(await createTestDatabase(), { max: 2 });
  try {
    const u = await pool.query(`INSERT INTO core.users (email, password_hash) VALUES ('p@example.com', 'x') RETURNING id`);
    const uid = u.rows[0].id;
    const ins = (sql: string, ...v: unknown[]) => pool.query(sql, v);
    await ins(`INSERT INTO core.sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() - interval '2 days'), ($3, $2, now() + interval '1 day')`, randomBytes(32), uid, randomBytes(32));
    await ins(`INSERT INTO core.mfa_challenges (token_hash, user_id, expires_at) VALUES ($1, $2, now() - interval '2 hours'), ($3, $2, now() + interval '5 minutes')`, randomBytes(32), uid, randomBytes(32));
    await ins(`INSERT INTO core.revoked_tokens (jti, expires_at) VALUES ('old', now() - interval '1 minute'), ('live', now() + interval '1 hour')`);
    await ins(`INSERT INTO core.rate_events (bucket, identifier, at) VALUES ('login', 'a', now() - interval '2 hours'), ('login', 'a', now())`);
    const client = await pool.connect();
    let counts;
    try {
      counts = await purgeExpiredRows(client, new AbortController().signal);
    } finally {
      client.release();
    }
    assert.equal(counts.sessions, 1);
    assert.equal(counts.mfa_challenges, 1);
    assert.equal(counts.revoked_tokens, 1);
    assert.equal(counts.rate_events, 1);
    for (const t of ['core.sessions', 'core.mfa_challenges', 'core.revoked_tokens', 'core.rate_events']) {
      const r = await pool.query(`SELECT count(*)::int n FROM ${t}`);
      assert.equal(r.rows[0].n, 1, `${t} keeps its live row`);
    }
  } finally {
    await pool.end();
  }
});

/** Run one purge pass on its own client. */
async function purgeOnce(pool: ReturnType<typeof createPool>, opts?: { defaultRetentionDays?: number }) {
  const client = await pool.connect();
  try {
    return await purgeExpiredRows(client, new AbortController().signal, opts);
  } finally {
    client.release();
  }
}

test('policy evaluations older than their project retention are purged, per project', async () => {
  const pool = createPool(await createTestDatabase(), { max: 2 });
  try {
    const short = await makeProject(pool); // retention_days 7
    const dflt = await makeProject(pool); // STRATHON_RETENTION_DAYS (30 here)
    await pool.query('UPDATE core.projects SET retention_days = 7 WHERE id = $1', [short]);
    const evaluationsAged = async (project: string, agesInDays: number[]) => {
      const pol = await pool.query(`INSERT INTO core.policies (project_id, name, match_expression, action) VALUES ($1, 'p', 'true', 'log') RETURNING id`, [project]);
      for (const [i, age] of agesInDays.entries()) {
        await pool.query(
          `INSERT INTO core.policy_evaluations (project_id, policy_id, outcome, action, shadow, trace_id, span_id, span_name, evaluated_at)
           VALUES ($1, $2, 'matched', 'log', false, $3, $4, $5, now() - make_interval(days => $6))`,
          [project, pol.rows[0].id, randomBytes(16), randomBytes(8), `age-${age}-${i}`, age]);
      }
    };
    await evaluationsAged(short, [1, 6, 8, 40]);
    await evaluationsAged(dflt, [1, 8, 29, 31, 40]);
    const left = async (project: string) =>
      (await pool.query(`SELECT span_name FROM core.policy_evaluations WHERE project_id = $1 ORDER BY evaluated_at DESC`, [project])).rows.map((r) => r.span_name);

    const without = await purgeOnce(pool);
    assert.equal(without.policy_evaluations, undefined, 'without a default retention the evaluations are left alone');
    assert.equal((await left(short)).length, 4);

    const counts = await purgeOnce(pool, { defaultRetentionDays: 30 });
    assert.equal(counts.policy_evaluations, 4);
    assert.deepEqual(await left(short), ['age-1-0', 'age-6-1'], 'the project retention (7 days) applies');
    assert.deepEqual(await left(dflt), ['age-1-0', 'age-8-1', 'age-29-2'], 'the default retention (30 days) applies');
    assert.equal((await purgeOnce(pool, { defaultRetentionDays: 30 })).policy_evaluations, 0, 'a second pass finds nothing');

    // With many live rows, a batch is found through the new index, not by filtering the project's rows.
    await pool.query(
      `INSERT INTO core.policy_evaluations (project_id, policy_id, outcome, action, shadow, trace_id, span_id)
       SELECT p.project_id, p.policy_id, 'matched', 'log', false, decode(md5(g::text), 'hex'), substr(decode(md5(g::text), 'hex'), 1, 8)
       FROM (SELECT project_id, policy_id FROM core.policy_evaluations WHERE project_id = $1 LIMIT 1) p, generate_series(1, 3000) g`, [short]);
    await pool.query('ANALYZE core.policy_evaluations');
    const client = await pool.connect();
    try {
      const plan = (await client.query(`EXPLAIN SELECT ctid FROM core.policy_evaluations WHERE project_id = $1 AND evaluated_at < now() - interval '7 days' LIMIT 10`, [short])).rows
        .map((r) => r['QUERY PLAN']).join('\n');
      assert.match(plan, /policy_evaluations_evaluated_idx/);
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
});

test('webhook events older than 30 days are purged once none of their deliveries is due or recent', async () => {
  const pool = createPool(await createTestDatabase(), { max: 2 });
  try {
    const project = await makeProject(pool);
    const ch = await pool.query(`INSERT INTO core.notification_channels (project_id, name, url, secret_enc) VALUES ($1, 'c', 'https://example.com/h', 'x') RETURNING id`, [project]);
    // name → [event age in days, deliveries as [status, age in days]]
    const cases: Record<string, [number, [string, number][]]> = {
      'old-none': [40, []],
      'old-succeeded': [40, [['succeeded', 40]]],
      'old-dead': [40, [['dead', 35]]],
      'old-pending': [40, [['pending', 40]]],
      'old-delivering': [40, [['delivering', 40]]],
      'old-recent-retry': [40, [['dead', 5]]],
      'recent-none': [5, []],
      'recent-succeeded': [5, [['succeeded', 5]]],
    };
    for (const [type, [age, deliveries]] of Object.entries(cases)) {
      const ev = await pool.query(`INSERT INTO core.webhook_events (project_id, type, payload, created_at) VALUES ($1, $2, '{}', now() - make_interval(days => $3)) RETURNING id`, [project, type, age]);
      for (const [status, dAge] of deliveries) {
        await pool.query(
          `INSERT INTO core.webhook_deliveries (project_id, channel_id, event_id, webhook_id, status, created_at) VALUES ($1, $2, $3, $4, $5, now() - make_interval(days => $6))`,
          [project, ch.rows[0].id, ev.rows[0].id, `msg_${randomBytes(8).toString('hex')}`, status, dAge]);
      }
    }
    const counts = await purgeOnce(pool);
    assert.equal(counts.webhook_events, 3);
    const types = (await pool.query(`SELECT type FROM core.webhook_events ORDER BY type`)).rows.map((r) => r.type);
    assert.deepEqual(types, ['old-delivering', 'old-pending', 'old-recent-retry', 'recent-none', 'recent-succeeded']);
    const deliveries = (await pool.query(`SELECT e.type FROM core.webhook_deliveries d JOIN core.webhook_events e ON e.project_id = d.project_id AND e.id = d.event_id ORDER BY e.type`)).rows.map((r) => r.type);
    assert.deepEqual(deliveries, ['old-delivering', 'old-pending', 'old-recent-retry', 'recent-succeeded'], 'the purged events took their dead deliveries with them');
    assert.equal((await pool.query(`SELECT count(*)::int n FROM core.webhook_deliveries`)).rows[0].n, 4, 'no orphan delivery is left');
  } finally {
    await pool.end();
  }
});
