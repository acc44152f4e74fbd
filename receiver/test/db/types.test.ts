// The committed Kysely types match the schema the migrations produce (regenerate: npm run db:types).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { createTestDatabase } from '../helpers.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');

test('generated Kysely types have not drifted from the migrated schema', async () => {
  const url = await createTestDatabase();
  const args = ['--dialect', 'postgres', '--exclude-pattern', 'public.pgmigrations', '--numeric-parser', 'string', '--type-only-imports',
    '--url', url, '--out-file', path.join(root, 'receiver/src/db/types.ts'), '--verify'];
  const r = await run(path.join(root, 'node_modules/.bin/kysely-codegen'), args, { cwd: root }).then(
    (x) => ({ ok: true, out: x.stdout + x.stderr }),
    (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
  assert.ok(r.ok, `receiver/src/db/types.ts is out of date; run \`npm run db:types\`:\n${r.out}`);
});
