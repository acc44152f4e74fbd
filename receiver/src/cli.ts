#!/usr/bin/env node
// strathon-admin: administration against DATABASE_URL without a running receiver (SPEC §3).
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './observability/logger.js';
import { createPool } from './db/pool.js';
import { migrationStatus, runMigrations } from './db/migrate.js';
import { ensurePartitions } from './db/partitions.js';
import { Registry } from 'prom-client';
import type pg from 'pg';
import { createApiKey, DEFAULT_KEY_SCOPES, DEFAULT_PROJECT_ID, validateScopes } from './auth/keys.js';
import { cliCreateUser, cliResetPassword } from './auth/accounts.js';
import type { AuditHook, AuthActor } from './auth/events.js';
import { PasswordHasher } from './auth/passwords.js';
import { ROLES, type Role } from './auth/principal.js';
import { appendAudit, auditKeys, auditedProjects, verifyChainAndReport } from './audit/audit.js';
import { HttpError } from './errors.js';
import { VERSION } from './version.js';

dotenv.config({ quiet: true });

const USAGE = `usage: strathon-admin <command> [options]

commands:
  migrate [up|status]                        apply pending migrations (default up) or show status
  create-api-key --project ID [--scopes a,b] [--name NAME]
                                             create an API key; the raw key is printed once
  create-user --email E [--password P] [--role R] [--project ID] [--name NAME]
                                             create a user (role default: owner for the first user,
                                             else viewer; project default: the default project).
                                             Without --password a temporary one is generated and
                                             printed; it must be changed at the first login
  reset-password --email E [--disable-mfa]   print a one-time temporary password (must be changed at
                                             the next login); revokes the user's sessions
  audit-verify [--project ID]                recompute the audit chain of one project (default: all);
                                             one JSON line per project, exit 4 if any is invalid

Connects to DATABASE_URL, or to the embedded Postgres of a running \`npm start\` (STRATHON_DATA_DIR).`;

function fail(msg: string, code = 1): never {
  process.stderr.write(`strathon-admin: ${msg}\n`);
  process.exit(code);
}

/** Admin CLI actions are audited as actor "cli" with the OS user who ran them (SPEC §10). */
function cliAudit(config: Config): { actor: AuthActor; audit: AuditHook } {
  let osUser: string | null = null;
  try {
    osUser = userInfo().username;
  } catch {
    osUser = null;
  }
  const deps = { config, metrics: { registry: new Registry() } };
  return {
    actor: { type: 'cli', id: osUser, display: 'strathon-admin' },
    audit: async (db: pg.Pool | pg.PoolClient, event) => { await appendAudit(db, event, deps); },
  };
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
      const { actor, audit } = cliAudit(config);
      const client = await pool.connect();
      let k;
      try {
        await client.query('BEGIN');
        k = await createApiKey(client, { projectId: values.project, name: values.name ?? 'created by strathon-admin', scopes: finalScopes, createdBy: 'cli' });
        await audit(client, { projectId: values.project, actor, action: 'api_key.create', resource: { type: 'api_key', id: k.id }, details: { key_prefix: k.prefix, scopes: finalScopes, name: values.name ?? 'created by strathon-admin' } });
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
      process.stdout.write(`${k.key}\n`);
      process.stderr.write(`created API key ${k.id} (prefix ${k.prefix}, scopes ${finalScopes.join(',')}) on project ${values.project}; it is shown only once\n`);
      return;
    }
    if (command === 'create-user') {
      const { values } = parseArgs({
        args: argv.slice(1), strict: true,
        options: { email: { type: 'string' }, password: { type: 'string' }, role: { type: 'string' }, project: { type: 'string' }, name: { type: 'string' } },
      });
      if (!values.email || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email.trim())) fail('--email is required (an email address)', 2);
      if (values.role !== undefined && !(ROLES as string[]).includes(values.role)) fail(`--role must be one of: ${ROLES.join(', ')}`, 2);
      const firstUser = !(await pool.query('SELECT 1 FROM core.users LIMIT 1')).rowCount;
      const role = (values.role ?? (firstUser ? 'owner' : 'viewer')) as Role;
      const projectId = values.project ?? DEFAULT_PROJECT_ID;
      const { actor, audit } = cliAudit(config);
      const r = await cliCreateUser({ pool, hasher: new PasswordHasher(config.passwordPepper), audit }, actor, {
        email: values.email.trim().toLowerCase(), password: values.password, displayName: values.name ?? null, role, projectId,
      });
      if (r.temporaryPassword) {
        process.stdout.write(`${r.temporaryPassword}\n`);
        process.stderr.write(`created user ${values.email} (${r.userId}) as ${role} of project ${projectId}; the temporary password above works once and must be changed at the first login\n`);
      } else {
        process.stdout.write(`${r.userId}\n`);
        process.stderr.write(`created user ${values.email} as ${role} of project ${projectId}\n`);
      }
      return;
    }
    if (command === 'reset-password') {
      const { values } = parseArgs({ args: argv.slice(1), strict: true, options: { email: { type: 'string' }, 'disable-mfa': { type: 'boolean' } } });
      if (!values.email) fail('--email is required', 2);
      const { actor, audit } = cliAudit(config);
      const r = await cliResetPassword({ pool, hasher: new PasswordHasher(config.passwordPepper), audit }, actor, values.email.trim(), { disableMfa: values['disable-mfa'] === true });
      process.stdout.write(`${r.temporaryPassword}\n`);
      process.stderr.write(`temporary password set for ${values.email}: it must be changed at the next login; ${r.revokedSessions} session(s) revoked${values['disable-mfa'] ? '; MFA disabled' : ''}\n`);
      return;
    }
    if (command === 'audit-verify') {
      const { values } = parseArgs({ args: argv.slice(1), strict: true, options: { project: { type: 'string' } } });
      const projects = values.project ? [values.project] : await auditedProjects(pool);
      const keys = auditKeys(config).verifying;
      const { actor, audit } = cliAudit(config);
      let allValid = true;
      for (const projectId of projects) {
        const v = await verifyChainAndReport(pool, projectId, keys, 'cli');
        allValid &&= v.valid;
        process.stdout.write(`${JSON.stringify({ project_id: projectId, ...v })}\n`);
        // The verification is itself an audited admin action (appended after the check).
        await audit(pool, { projectId, actor, action: 'audit.verify', outcome: v.valid ? 'success' : 'failure', resource: { type: 'audit_chain', id: projectId }, details: { checked: v.checked, first_bad_sequence: v.first_bad_sequence } });
      }
      if (projects.length === 0) process.stdout.write('no audited projects\n');
      process.exitCode = allValid ? 0 : 4;
      return;
    }
    fail(`unknown command "${command}"\n${USAGE}`, 2);
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => fail((err as Error).message, err instanceof HttpError && err.status < 500 ? 2 : 1));
