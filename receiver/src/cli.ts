#!/usr/bin/env node
// strathon-admin: administration against DATABASE_URL without a running receiver (SPEC §3).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './observability/logger.js';
import { createPool } from './db/pool.js';
import { migrationStatus, runMigrations } from './db/migrate.js';
import { ensurePartitions } from './db/partitions.js';
import { createApiKey, DEFAULT_KEY_SCOPES, validateScopes } from './auth/keys.js';
import { VERSION } from './version.js';

dotenv.config({ quiet: true });

const USAGE = `usage: strathon-admin <command> [options]

commands:
  migrate [up|status]                        apply pending migrations (default up) or show status
  create-api-key --project ID [--scopes a,b] [--name NAME]
                                             create an API key; the raw key is printed once

Connects to DATABASE_URL, or to the embedded Postgres of a running \`npm start\` (STRATHON_DATA_DIR).`;

function fail(msg: string, code = 1): never {
  process.stderr.write(`strathon-admin: ${msg}\n`);
  process.exit(code);
}

function databaseUrl(config: Config): string {
  if (config.databaseUrl) return config.databaseUrl;
  const pw = path.join(path.resolve(config.dataDir), 'pg-password');
  if (existsSync(pw)) {
    return `postgres://postgres:${encodeURIComponent(readFileSync(pw, 'utf8').trim())}@127.0.0.1:${config.embeddedPgPort}/strathon`;
  }
  return fail('DATABASE_URL is not set and no embedded Postgres was found under STRATHON_DATA_DIR; set DATABASE_URL');
}

async function main() {
  const argv = process.argv.slice(2);
  const command = argv[0];
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let config: Config;
  try {
    config = loadConfig({ ...process.env, STRATHON_LOG_LEVEL: process.env.STRATHON_LOG_LEVEL ?? 'warning' }, VERSION).config;
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const url = databaseUrl(config);
  const pool = createPool(url, { max: 2, applicationName: 'strathon-admin' });
  try {
    await pool.query('select 1').catch((err: Error) => fail(`cannot connect to Postgres: ${err.message}`));
    if (command === 'migrate') {
      const sub = argv[1] ?? 'up';
      if (sub === 'status') {
        const s = await migrationStatus(pool);
        process.stdout.write(`current: ${s.current ?? '(none)'}\nhead:    ${s.head}\npending: ${s.pending.length ? s.pending.join(', ') : 'none'}\n`);
        process.exitCode = s.atHead ? 0 : 3;
        return;
      }
      if (sub !== 'up') fail(`unknown migrate subcommand "${sub}" (use up or status)`, 2);
      const applied = await runMigrations(url, log);
      await ensurePartitions(pool, config.partitionMonthsAhead);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema already at head\n');
      return;
    }
    if (command === 'create-api-key') {
      const { values } = parseArgs({ args: argv.slice(1), options: { project: { type: 'string' }, scopes: { type: 'string', multiple: true }, name: { type: 'string' } }, strict: true });
      if (!values.project) fail('--project is required', 2);
      const scopes = (values.scopes ?? []).flatMap((s) => s.split(/[ ,]+/)).filter(Boolean);
      const finalScopes = scopes.length ? scopes : DEFAULT_KEY_SCOPES;
      const bad = validateScopes(finalScopes);
      if (bad) fail(`unknown scope "${bad}"`, 2);
      const proj = await pool.query('select 1 from core.projects where id::text = $1 and deleted_at is null', [values.project]);
      if (!proj.rowCount) fail(`project ${values.project} not found`, 2);
      const k = await createApiKey(pool, { projectId: values.project, name: values.name ?? 'created by strathon-admin', scopes: finalScopes, createdBy: 'cli' });
      process.stdout.write(`${k.key}\n`);
      process.stderr.write(`created API key ${k.id} (prefix ${k.prefix}, scopes ${finalScopes.join(',')}) on project ${values.project}; it is shown only once\n`);
      return;
    }
    fail(`unknown command "${command}"\n${USAGE}`, 2);
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => fail((err as Error).message));
