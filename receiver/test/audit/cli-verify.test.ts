// strathon-admin audit-verify and create-api-key: audited as actor "cli"; verify reports a tampered chain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTestDatabase, DEFAULT_PROJECT_ID } from '../helpers.js';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../dist/cli.js');

test('create-api-key and audit-verify are audited as cli; audit-verify finds a modified row', async () => {
  const url = await createTestDatabase();
  const env = { ...process.env, DATABASE_URL: url, STRATHON_LOG_LEVEL: 'error' };
  const created = await run(process.execPath, [CLI, 'create-api-key', '--project', DEFAULT_PROJECT_ID, '--scopes', 'traces:write', '--name', 'ci'], { env });
  assert.match(created.stdout.trim(), /^stra_/);
  await run(process.execPath, [CLI, 'create-api-key', '--project', DEFAULT_PROJECT_ID, '--name', 'second'], { env });

  const ok = await run(process.execPath, [CLI, 'audit-verify', '--project', DEFAULT_PROJECT_ID], { env });
  const line = JSON.parse(ok.stdout.trim()) as { valid: boolean; checked: number; first_bad_sequence: number | null };
  assert.equal(line.valid, true);
  assert.equal(line.checked, 2);

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const rows = await db.query(`SELECT action, actor_type, details FROM audit.events WHERE project_id = $1 ORDER BY sequence_no`, [DEFAULT_PROJECT_ID]);
    assert.deepEqual(rows.rows.map((r) => [r.action, r.actor_type]), [['api_key.create', 'cli'], ['api_key.create', 'cli'], ['audit.verify', 'cli']]);
    assert.ok(!JSON.stringify(rows.rows).includes(created.stdout.trim()), 'the raw key is never in the audit log');
    // Tamper as the database owner (the guard trigger refuses the application).
    await db.query('ALTER TABLE audit.events DISABLE TRIGGER USER');
    await db.query(`UPDATE audit.events SET details = '{"name":"forged"}' WHERE project_id = $1 AND sequence_no = 2`, [DEFAULT_PROJECT_ID]);
    await db.query('ALTER TABLE audit.events ENABLE TRIGGER USER');
  } finally {
    await db.end();
  }
  const bad = await run(process.execPath, [CLI, 'audit-verify'], { env }).catch((e) => e);
  assert.equal(bad.code, 4, 'exit 4 when a chain is invalid');
  const v = JSON.parse(String(bad.stdout).trim().split('\n')[0] as string) as { valid: boolean; first_bad_sequence: number };
  assert.equal(v.valid, false);
  assert.equal(v.first_bad_sequence, 2);
});
