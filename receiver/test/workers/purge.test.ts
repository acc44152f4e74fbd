// retention_cleanup_task purges expired sessions, tokens, mfa challenges and limit counters, and keeps live ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createTestDatabase } from '../helpers.js';
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
