// Configuration: every problem reported at once, X_FILE secrets, production fail-fast rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('defaults follow SPEC §2 and development warns about each missing secret', () => {
  const { config, warnings } = loadConfig({});
  assert.equal(config.port, 4318);
  assert.equal(config.grpcPort, 4317);
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.dataDir, './.data');
  assert.equal(config.maxBodyBytes, 4194304);
  assert.equal(config.samplingRate, 1);
  assert.equal(config.rateLimitRps, 100);
  assert.equal(config.rateLimitBurst, 200);
  assert.equal(config.partitionMonthsAhead, 3);
  assert.equal(config.autoMigrate, true);
  assert.equal(config.logFormat, 'text');
  assert.equal(config.cookieSecure, false);
  assert.equal(config.webhookAllowPrivate, true);
  assert.ok(Object.isFrozen(config));
  for (const name of ['STRATHON_AUDIT_HMAC_KEY', 'STRATHON_ENCRYPTION_KEY', 'STRATHON_PASSWORD_PEPPER', 'STRATHON_JWT_SECRET']) {
    assert.ok(warnings.some((w) => w.startsWith(name)), `warning for ${name}`);
  }
});

test('every invalid value is reported at once, naming the variable and what was expected', () => {
  const p = problems({ PORT: 'abc', STRATHON_SAMPLING_RATE: '2', STRATHON_LOG_LEVEL: 'loud', STRATHON_AUTO_MIGRATE: 'maybe', STRATHON_MAX_BODY_BYTES: '-1' });
  assert.equal(p.length, 5, p.join('\n'));
  assert.ok(p.some((x) => x.startsWith('PORT:') && x.includes('"abc"')));
  assert.ok(p.some((x) => x.startsWith('STRATHON_SAMPLING_RATE:')));
  assert.ok(p.some((x) => x.startsWith('STRATHON_LOG_LEVEL:')));
  assert.ok(p.some((x) => x.startsWith('STRATHON_AUTO_MIGRATE:')));
  assert.ok(p.some((x) => x.startsWith('STRATHON_MAX_BODY_BYTES:')));
});

test('log levels: Strathon names and pino names, case-insensitive', () => {
  assert.equal(loadConfig({ STRATHON_LOG_LEVEL: 'WARNING' }).config.logLevel, 'warn');
  assert.equal(loadConfig({ STRATHON_LOG_LEVEL: 'debug' }).config.logLevel, 'debug');
  assert.equal(loadConfig({ STRATHON_LOG_LEVEL: 'Error' }).config.logLevel, 'error');
});

test('production: every missing secret is a boot failure naming how to generate it', () => {
  const p = problems({ STRATHON_ENV: 'production' });
  for (const name of ['STRATHON_AUDIT_HMAC_KEY', 'STRATHON_ENCRYPTION_KEY', 'STRATHON_PASSWORD_PEPPER', 'STRATHON_JWT_SECRET']) {
    const line = p.find((x) => x.startsWith(name));
    assert.ok(line, `problem for ${name}`);
    assert.match(line, /generate with: /);
  }
  assert.ok(problems({ STRATHON_ENV: 'production', STRATHON_SEED_DEV_KEY: 'true' }).some((x) => x.includes('STRATHON_SEED_DEV_KEY')));
});

test('production with all secrets set boots; secret values never appear in problems', () => {
  const env = {
    STRATHON_ENV: 'production', STRATHON_AUDIT_HMAC_KEY: 'ab'.repeat(32), STRATHON_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url'),
    STRATHON_PASSWORD_PEPPER: 'cd'.repeat(32), STRATHON_JWT_SECRET: 'x'.repeat(40),
  };
  const { config, warnings } = loadConfig(env);
  assert.equal(config.env, 'production');
  assert.equal(config.cookieSecure, true);
  assert.equal(config.webhookAllowPrivate, false);
  assert.deepEqual(warnings, []);
  const bad = problems({ ...env, STRATHON_AUDIT_HMAC_KEY: 'not-hex-secret-value' });
  assert.equal(bad.length, 1);
  assert.ok(!bad[0]?.includes('not-hex-secret-value'), 'the secret itself is not echoed');
});

test('X_FILE secrets are read from files; X and X_FILE together is an error', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-cfg-'));
  const f = path.join(dir, 'jwt');
  writeFileSync(f, `${'s'.repeat(40)}\n`);
  const { config } = loadConfig({ STRATHON_JWT_SECRET_FILE: f });
  assert.equal(config.jwtSecret.toString(), 's'.repeat(40));
  assert.ok(problems({ STRATHON_JWT_SECRET_FILE: f, STRATHON_JWT_SECRET: 'y'.repeat(40) }).some((x) => x.includes('both set')));
  assert.ok(problems({ STRATHON_JWT_SECRET_FILE: path.join(dir, 'missing') }).some((x) => x.includes('cannot read')));
  const db = path.join(dir, 'db');
  writeFileSync(db, 'postgres://u:p@h:5432/d');
  assert.equal(loadConfig({ DATABASE_URL_FILE: db }).config.databaseUrl, 'postgres://u:p@h:5432/d');
});

test('trusted proxies: CIDRs parsed; 0.0.0.0/0 and ::/0 refused; garbage refused', () => {
  const { config } = loadConfig({ STRATHON_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.5, fd00::/8' });
  assert.deepEqual(config.trustedProxies.cidrs, ['10.0.0.0/8', '192.168.1.5', 'fd00::/8']);
  assert.ok(config.trustedProxies.list.check('10.1.2.3', 'ipv4'));
  assert.ok(!config.trustedProxies.list.check('11.1.2.3', 'ipv4'));
  assert.ok(problems({ STRATHON_TRUSTED_PROXIES: '0.0.0.0/0' }).some((x) => x.includes('0.0.0.0/0')));
  assert.ok(problems({ STRATHON_TRUSTED_PROXIES: '::/0' }).some((x) => x.includes('::/0')));
  assert.ok(problems({ STRATHON_TRUSTED_PROXIES: 'banana' }).some((x) => x.includes('banana')));
});

test('STRATHON_METRICS_LISTEN parses host:port and refuses junk', () => {
  assert.deepEqual(loadConfig({ STRATHON_METRICS_LISTEN: '127.0.0.1:9464' }).config.metricsListen, { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(loadConfig({ STRATHON_METRICS_LISTEN: '[::1]:9464' }).config.metricsListen, { host: '::1', port: 9464 });
  assert.ok(problems({ STRATHON_METRICS_LISTEN: 'nope' }).length === 1);
});

test('.env.example lists every SPEC §2 variable and parses cleanly as a configuration', async () => {
  const { readFileSync } = await import('node:fs');
  const dotenv = (await import('dotenv')).default;
  const root = path.resolve(import.meta.dirname, '../..');
  const text = readFileSync(path.join(root, '.env.example'), 'utf8');
  const parsed = dotenv.parse(text);
  const spec = readFileSync(path.join(root, '../shared/SPEC.md'), 'utf8').split('## 3. Boot')[0] ?? '';
  const specVars = new Set([...spec.matchAll(/`((?:STRATHON_|DATABASE_|DASHBOARD_|POSTGRES_)[A-Z_]+|PORT)`/g)].map((m) => m[1] as string));
  for (const v of specVars) {
    if (v.endsWith('_FILE')) continue;
    assert.ok(v in parsed, `${v} is in .env.example`);
  }
  const { config } = loadConfig(parsed);
  assert.equal(config.port, 4318);
  assert.equal(config.samplingRate, 1);
});
