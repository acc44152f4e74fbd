// Every environment variable of SPEC §2, parsed once, validated with all problems reported at once.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';

export type Env = Record<string, string | undefined>;

const bool = (name: string, dflt: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `${name}: expected true/false, got "${v}"` });
      return dflt;
    });

const int = (name: string, dflt: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt;
      const n = Number(v.trim());
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `${name}: expected an integer in ${min}..${max}, got "${v}"` });
        return dflt;
      }
      return n;
    });

const LOG_LEVELS: Record<string, string> = {
  debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error',
  trace: 'trace', fatal: 'fatal', silent: 'silent',
};

export interface TrustedProxies { list: BlockList; cidrs: string[] }

export interface Config {
  env: 'development' | 'production';
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPgPort: number;
  host: string;
  port: number;
  grpcEnabled: boolean;
  grpcPort: number;
  metricsListen: { host: string; port: number } | undefined;
  logLevel: string;
  logFormat: 'text' | 'json';
  autoMigrate: boolean;
  seedDevKey: boolean;
  samplingRate: number;
  maxBodyBytes: number;
  ingestQueueMaxSpans: number;
  ingestQueueMaxBytes: number;
  ingestBatchMaxSpans: number;
  ingestWriters: number;
  retentionEnabled: boolean;
  retentionIntervalSeconds: number;
  retentionBatchSize: number;
  retentionDays: number;
  rateLimitEnabled: boolean;
  rateLimitRps: number;
  rateLimitBurst: number;
  trustedProxies: TrustedProxies;
  auditHmacKey: Buffer;
  auditHmacKeyId: number;
  auditHmacKeysPrevious: Map<number, Buffer>;
  encryptionKey: string | undefined;
  passwordPepper: Buffer | undefined;
  jwtSecret: Buffer;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  sessionTtlSeconds: number;
  cookieSecure: boolean;
  webhookAllowPrivate: boolean;
  webhookMaxAttempts: number;
  budgetMonitorIntervalSeconds: number;
  webhookSweeperIntervalSeconds: number;
  partitionMonthsAhead: number;
  dashboardPort: number;
  receiverUrl: string;
  dashboardDatabaseUrl: string | undefined;
  version: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Secrets that may come as X or X_FILE; setting both is an error. */
const SECRET_VARS = [
  'DATABASE_URL', 'DASHBOARD_DATABASE_URL', 'STRATHON_AUDIT_HMAC_KEY', 'STRATHON_AUDIT_HMAC_KEYS_PREVIOUS',
  'STRATHON_ENCRYPTION_KEY', 'STRATHON_PASSWORD_PEPPER', 'STRATHON_JWT_SECRET', 'POSTGRES_PASSWORD',
] as const;

const HOW_TO_GENERATE: Record<string, string> = {
  STRATHON_AUDIT_HMAC_KEY: 'openssl rand -hex 32',
  STRATHON_PASSWORD_PEPPER: 'openssl rand -hex 32',
  STRATHON_JWT_SECRET: 'openssl rand -hex 32',
  STRATHON_ENCRYPTION_KEY:
    `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`,
};

/** Resolve X / X_FILE into plain values; never puts a secret's value into an error message. */
function resolveFileSecrets(env: Env, problems: string[]): Env {
  const out: Env = { ...env };
  for (const name of SECRET_VARS) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name} and ${name}_FILE are both set: set only one`);
      continue;
    }
    try {
      out[name] = readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(`${name}_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

function parseTrustedProxies(raw: string | undefined, problems: string[]): TrustedProxies {
  const list = new BlockList();
  const cidrs: string[] = [];
  for (const part of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr, bitsRaw] = part.split('/');
    const family = addr ? isIP(addr) : 0;
    const bits = bitsRaw === undefined ? (family === 6 ? 128 : 32) : Number(bitsRaw);
    if (!addr || family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
      problems.push(`STRATHON_TRUSTED_PROXIES: "${part}" is not a CIDR (e.g. 10.0.0.0/8)`);
      continue;
    }
    if (bits === 0) {
      problems.push(`STRATHON_TRUSTED_PROXIES: "${part}" would trust every client's X-Forwarded-For; name your proxies' networks`);
      continue;
    }
    list.addSubnet(addr, bits, family === 6 ? 'ipv6' : 'ipv4');
    cidrs.push(part);
  }
  return { list, cidrs };
}

function parseListen(raw: string | undefined, problems: string[]): { host: string; port: number } | undefined {
  if (!raw) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(raw.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    problems.push(`STRATHON_METRICS_LISTEN: expected host:port (e.g. 127.0.0.1:9464), got "${raw}"`);
    return undefined;
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

const schema = z.object({
  STRATHON_ENV: z.string().optional().transform((v, ctx) => {
    const s = (v ?? 'development').trim().toLowerCase();
    if (s === 'development' || s === 'production') return s;
    ctx.addIssue({ code: 'custom', message: `STRATHON_ENV: expected development or production, got "${v}"` });
    return 'development' as const;
  }),
  STRATHON_DATA_DIR: z.string().optional(),
  STRATHON_EMBEDDED_PG_PORT: int('STRATHON_EMBEDDED_PG_PORT', 5433, 1, 65535),
  STRATHON_HOST: z.string().optional(),
  PORT: int('PORT', 4318, 0, 65535),
  STRATHON_GRPC_ENABLED: bool('STRATHON_GRPC_ENABLED', true),
  STRATHON_GRPC_PORT: int('STRATHON_GRPC_PORT', 4317, 0, 65535),
  STRATHON_LOG_LEVEL: z.string().optional().transform((v, ctx) => {
    const s = (v ?? 'INFO').trim().toLowerCase();
    const lvl = LOG_LEVELS[s];
    if (lvl) return lvl;
    ctx.addIssue({ code: 'custom', message: `STRATHON_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got "${v}"` });
    return 'info';
  }),
  STRATHON_LOG_FORMAT: z.string().optional().transform((v, ctx) => {
    const s = (v ?? 'text').trim().toLowerCase();
    if (s === 'text' || s === 'json') return s;
    ctx.addIssue({ code: 'custom', message: `STRATHON_LOG_FORMAT: expected text or json, got "${v}"` });
    return 'text' as const;
  }),
  STRATHON_AUTO_MIGRATE: bool('STRATHON_AUTO_MIGRATE', true),
  STRATHON_SEED_DEV_KEY: bool('STRATHON_SEED_DEV_KEY', false),
  STRATHON_SAMPLING_RATE: z.string().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return 1;
    const n = Number(v);
    if (Number.isFinite(n) && n >= 0 && n <= 1) return n;
    ctx.addIssue({ code: 'custom', message: `STRATHON_SAMPLING_RATE: expected a number in 0.0..1.0, got "${v}"` });
    return 1;
  }),
  STRATHON_MAX_BODY_BYTES: int('STRATHON_MAX_BODY_BYTES', 4 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
  STRATHON_INGEST_QUEUE_MAX_SPANS: int('STRATHON_INGEST_QUEUE_MAX_SPANS', 50_000, 1, 10_000_000),
  // Bytes of the queued rows as COPY text (about 1.5 KB per span of a GenAI agent: what the queue holds).
  STRATHON_INGEST_QUEUE_MAX_BYTES: int('STRATHON_INGEST_QUEUE_MAX_BYTES', 32 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024),
  STRATHON_INGEST_BATCH_MAX_SPANS: int('STRATHON_INGEST_BATCH_MAX_SPANS', 5000, 1, 100_000),
  STRATHON_INGEST_WRITERS: int('STRATHON_INGEST_WRITERS', 2, 1, 64),
  STRATHON_RETENTION_ENABLED: bool('STRATHON_RETENTION_ENABLED', true),
  STRATHON_RETENTION_INTERVAL_SECONDS: int('STRATHON_RETENTION_INTERVAL_SECONDS', 3600, 1, 31 * 86400),
  STRATHON_RETENTION_BATCH_SIZE: int('STRATHON_RETENTION_BATCH_SIZE', 5000, 1, 1_000_000),
  STRATHON_RETENTION_DAYS: int('STRATHON_RETENTION_DAYS', 30, 1, 36500),
  STRATHON_RATE_LIMIT_ENABLED: bool('STRATHON_RATE_LIMIT_ENABLED', true),
  STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND: int('STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND', 100, 1, 1_000_000),
  STRATHON_RATE_LIMIT_BURST: int('STRATHON_RATE_LIMIT_BURST', 200, 1, 10_000_000),
  STRATHON_AUDIT_HMAC_KEY_ID: int('STRATHON_AUDIT_HMAC_KEY_ID', 1, 1, 2 ** 31 - 1),
  STRATHON_ACCESS_TOKEN_TTL_SECONDS: int('STRATHON_ACCESS_TOKEN_TTL_SECONDS', 900, 30, 86400),
  STRATHON_REFRESH_TOKEN_TTL_SECONDS: int('STRATHON_REFRESH_TOKEN_TTL_SECONDS', 604800, 60, 365 * 86400),
  STRATHON_SESSION_TTL_SECONDS: int('STRATHON_SESSION_TTL_SECONDS', 86400, 60, 365 * 86400),
  STRATHON_WEBHOOK_MAX_ATTEMPTS: int('STRATHON_WEBHOOK_MAX_ATTEMPTS', 8, 1, 100),
  STRATHON_BUDGET_MONITOR_INTERVAL_SECONDS: int('STRATHON_BUDGET_MONITOR_INTERVAL_SECONDS', 30, 1, 86400),
  STRATHON_WEBHOOK_SWEEPER_INTERVAL_SECONDS: int('STRATHON_WEBHOOK_SWEEPER_INTERVAL_SECONDS', 5, 1, 3600),
  STRATHON_PARTITION_MONTHS_AHEAD: int('STRATHON_PARTITION_MONTHS_AHEAD', 3, 1, 120),
  DASHBOARD_PORT: int('DASHBOARD_PORT', 3000, 0, 65535),
});

function hexSecret(name: string, raw: string | undefined, minBytes: number, problems: string[]): Buffer | undefined {
  if (!raw) return undefined;
  if (!/^[0-9a-fA-F]+$/.test(raw) || raw.length % 2 !== 0 || raw.length / 2 < minBytes) {
    problems.push(`${name}: expected hex of at least ${minBytes} bytes (${minBytes * 2} hex chars); generate with: ${HOW_TO_GENERATE[name] ?? 'openssl rand -hex 32'}`);
    return undefined;
  }
  return Buffer.from(raw, 'hex');
}

const DEV_AUDIT_KEY = Buffer.from('strathon-dev-audit-hmac-key-not-for-production!!', 'utf8');

/**
 * Parse the environment. Returns the frozen config plus warnings (dev fallbacks), or throws
 * ConfigError naming every problem (and, in production, every missing secret).
 */
export function loadConfig(rawEnv: Env, version = '0.0.0'): { config: Config; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  const env = resolveFileSecrets(rawEnv, problems);
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(issue.message);
  }
  const p = parsed.success ? parsed.data : schema.parse({});
  const production = p.STRATHON_ENV === 'production';

  const missingSecret = (name: string, fallback: string) => {
    const how = HOW_TO_GENERATE[name];
    if (production) problems.push(`${name} is required when STRATHON_ENV=production; generate with: ${how}`);
    else warnings.push(`${name} is not set: ${fallback}. Set it before production; generate with: ${how}`);
  };

  let auditHmacKey = hexSecret('STRATHON_AUDIT_HMAC_KEY', env.STRATHON_AUDIT_HMAC_KEY, 32, problems);
  if (!env.STRATHON_AUDIT_HMAC_KEY) {
    missingSecret('STRATHON_AUDIT_HMAC_KEY', 'using a fixed development key, the audit chain is not tamper-proof');
    auditHmacKey = DEV_AUDIT_KEY;
  }
  const auditHmacKeysPrevious = new Map<number, Buffer>();
  for (const part of (env.STRATHON_AUDIT_HMAC_KEYS_PREVIOUS ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [id, hex] = part.split(':');
    const key = hexSecret('STRATHON_AUDIT_HMAC_KEYS_PREVIOUS', hex, 32, problems);
    if (!id || !/^\d+$/.test(id)) problems.push('STRATHON_AUDIT_HMAC_KEYS_PREVIOUS: expected id:hex,id:hex');
    else if (key) auditHmacKeysPrevious.set(Number(id), key);
  }

  const encryptionKey = env.STRATHON_ENCRYPTION_KEY || undefined;
  if (encryptionKey) {
    const bytes = Buffer.from(encryptionKey.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length !== 32) problems.push(`STRATHON_ENCRYPTION_KEY: expected a Fernet key (url-safe base64 of 32 bytes); generate with: ${HOW_TO_GENERATE.STRATHON_ENCRYPTION_KEY}`);
  } else {
    missingSecret('STRATHON_ENCRYPTION_KEY', 'TOTP and webhook secrets cannot be stored');
  }

  const passwordPepper = hexSecret('STRATHON_PASSWORD_PEPPER', env.STRATHON_PASSWORD_PEPPER, 16, problems);
  if (!env.STRATHON_PASSWORD_PEPPER) missingSecret('STRATHON_PASSWORD_PEPPER', 'passwords are hashed without a pepper');

  let jwtSecret: Buffer | undefined;
  if (env.STRATHON_JWT_SECRET) {
    jwtSecret = Buffer.from(env.STRATHON_JWT_SECRET, 'utf8');
    if (jwtSecret.length < 32) problems.push(`STRATHON_JWT_SECRET: expected at least 32 bytes; generate with: ${HOW_TO_GENERATE.STRATHON_JWT_SECRET}`);
  } else {
    missingSecret('STRATHON_JWT_SECRET', 'using a random secret per boot, tokens die on restart and differ between replicas');
    jwtSecret = randomBytes(32);
  }

  if (p.STRATHON_SEED_DEV_KEY && production) {
    problems.push('STRATHON_SEED_DEV_KEY=true is refused when STRATHON_ENV=production (the dev key is public)');
  }

  const trustedProxies = parseTrustedProxies(env.STRATHON_TRUSTED_PROXIES, problems);
  const metricsListen = parseListen(env.STRATHON_METRICS_LISTEN, problems);
  const cookieSecure = bool('STRATHON_COOKIE_SECURE', production).safeParse(env.STRATHON_COOKIE_SECURE);
  const allowPrivate = bool('STRATHON_WEBHOOK_ALLOW_PRIVATE', !production).safeParse(env.STRATHON_WEBHOOK_ALLOW_PRIVATE);
  if (!cookieSecure.success) problems.push(cookieSecure.error.issues[0]?.message ?? 'STRATHON_COOKIE_SECURE invalid');
  if (!allowPrivate.success) problems.push(allowPrivate.error.issues[0]?.message ?? 'STRATHON_WEBHOOK_ALLOW_PRIVATE invalid');

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL: expected postgres://user:password@host:port/database');
  }
  if (p.PORT !== 0 && p.PORT === p.STRATHON_GRPC_PORT && p.STRATHON_GRPC_ENABLED) {
    problems.push(`PORT and STRATHON_GRPC_PORT are both ${p.PORT}: they need different ports`);
  }

  if (problems.length > 0) throw new ConfigError(problems);

  const config: Config = {
    env: p.STRATHON_ENV,
    databaseUrl,
    dataDir: env.STRATHON_DATA_DIR || './.data',
    embeddedPgPort: p.STRATHON_EMBEDDED_PG_PORT,
    host: env.STRATHON_HOST || '0.0.0.0',
    port: p.PORT,
    grpcEnabled: p.STRATHON_GRPC_ENABLED,
    grpcPort: p.STRATHON_GRPC_PORT,
    metricsListen,
    logLevel: p.STRATHON_LOG_LEVEL,
    logFormat: p.STRATHON_LOG_FORMAT,
    autoMigrate: p.STRATHON_AUTO_MIGRATE,
    seedDevKey: p.STRATHON_SEED_DEV_KEY,
    samplingRate: p.STRATHON_SAMPLING_RATE,
    maxBodyBytes: p.STRATHON_MAX_BODY_BYTES,
    ingestQueueMaxSpans: p.STRATHON_INGEST_QUEUE_MAX_SPANS,
    ingestQueueMaxBytes: p.STRATHON_INGEST_QUEUE_MAX_BYTES,
    ingestBatchMaxSpans: p.STRATHON_INGEST_BATCH_MAX_SPANS,
    ingestWriters: p.STRATHON_INGEST_WRITERS,
    retentionEnabled: p.STRATHON_RETENTION_ENABLED,
    retentionIntervalSeconds: p.STRATHON_RETENTION_INTERVAL_SECONDS,
    retentionBatchSize: p.STRATHON_RETENTION_BATCH_SIZE,
    retentionDays: p.STRATHON_RETENTION_DAYS,
    rateLimitEnabled: p.STRATHON_RATE_LIMIT_ENABLED,
    rateLimitRps: p.STRATHON_RATE_LIMIT_REQUESTS_PER_SECOND,
    rateLimitBurst: p.STRATHON_RATE_LIMIT_BURST,
    trustedProxies,
    auditHmacKey: auditHmacKey ?? DEV_AUDIT_KEY,
    auditHmacKeyId: p.STRATHON_AUDIT_HMAC_KEY_ID,
    auditHmacKeysPrevious,
    encryptionKey,
    passwordPepper,
    jwtSecret,
    accessTokenTtlSeconds: p.STRATHON_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: p.STRATHON_REFRESH_TOKEN_TTL_SECONDS,
    sessionTtlSeconds: p.STRATHON_SESSION_TTL_SECONDS,
    cookieSecure: cookieSecure.success ? cookieSecure.data : production,
    webhookAllowPrivate: allowPrivate.success ? allowPrivate.data : !production,
    webhookMaxAttempts: p.STRATHON_WEBHOOK_MAX_ATTEMPTS,
    budgetMonitorIntervalSeconds: p.STRATHON_BUDGET_MONITOR_INTERVAL_SECONDS,
    webhookSweeperIntervalSeconds: p.STRATHON_WEBHOOK_SWEEPER_INTERVAL_SECONDS,
    partitionMonthsAhead: p.STRATHON_PARTITION_MONTHS_AHEAD,
    dashboardPort: p.DASHBOARD_PORT,
    receiverUrl: env.STRATHON_RECEIVER_URL || `http://localhost:${p.PORT}`,
    dashboardDatabaseUrl: env.DASHBOARD_DATABASE_URL || undefined,
    version,
  };
  return { config: Object.freeze(config), warnings };
}
