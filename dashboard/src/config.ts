// Every environment variable the dashboard reads (SPEC §2), parsed once. Nothing else reads process.env.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BlockList, isIP } from 'node:net';

export type Env = Record<string, string | undefined>;

/**
 * Where the read-only connection comes from (dashboard/README.md, "Database access"):
 * `dedicated` — DASHBOARD_DATABASE_URL, ideally a strathon_dashboard login (or a replica);
 * `derived` — the receiver's own credential (DATABASE_URL or the embedded cluster's password
 * file), every connection started as role strathon_dashboard, read-only.
 */
export type DatabaseSource =
  | { kind: 'dedicated'; url: string; provisionWith?: string }
  | { kind: 'derived'; url: string }
  | { kind: 'embedded'; passwordFile: string; port: number; database: string }
  | { kind: 'none' };

export interface DashboardConfig {
  env: 'development' | 'production';
  host: string;
  port: number;
  receiverUrl: string;
  database: DatabaseSource;
  /** `Secure` on cookies (STRATHON_COOKIE_SECURE; default true in production). Always set over TLS. */
  cookieSecure: boolean;
  /** Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (DASHBOARD_TRUSTED_PROXIES). */
  trustedProxies: { list: BlockList; cidrs: string[] };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid dashboard configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** X or X_FILE (Docker/Kubernetes secrets); both set is an error. Never echoes a secret. */
function secret(env: Env, name: string, problems: string[]): string | undefined {
  const file = env[`${name}_FILE`];
  const value = env[name];
  if (file) {
    if (value) {
      problems.push(`${name} and ${name}_FILE are both set: set only one`);
      return undefined;
    }
    try {
      return readFileSync(file, 'utf8').trim() || undefined;
    } catch (err) {
      problems.push(`${name}_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return undefined;
    }
  }
  return value || undefined;
}

function port(env: Env, name: string, dflt: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    problems.push(`${name}: expected a port number 0..65535, got "${raw}"`);
    return dflt;
  }
  return n;
}

function bool(env: Env, name: string, dflt: boolean, problems: string[]): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return dflt;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  problems.push(`${name}: expected true/false, got "${env[name]}"`);
  return dflt;
}

export function parseProxies(raw: string | undefined, problems: string[], name = 'DASHBOARD_TRUSTED_PROXIES'): { list: BlockList; cidrs: string[] } {
  const list = new BlockList();
  const cidrs: string[] = [];
  for (const part of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr, bitsRaw] = part.split('/');
    const family = addr ? isIP(addr) : 0;
    const bits = bitsRaw === undefined ? (family === 6 ? 128 : 32) : Number(bitsRaw);
    if (!addr || family === 0 || !Number.isInteger(bits) || bits < 1 || bits > (family === 6 ? 128 : 32)) {
      problems.push(`${name}: "${part}" is not a CIDR naming your proxies (e.g. 10.0.0.0/8; /0 is refused)`);
      continue;
    }
    list.addSubnet(addr, bits, family === 6 ? 'ipv6' : 'ipv4');
    cidrs.push(part);
  }
  return { list, cidrs };
}

function isPostgresUrl(u: string): boolean {
  return /^postgres(ql)?:\/\//.test(u);
}

export function loadConfig(env: Env): DashboardConfig {
  const problems: string[] = [];
  const stage = (env.STRATHON_ENV ?? 'development').trim().toLowerCase();
  if (stage !== 'development' && stage !== 'production') problems.push(`STRATHON_ENV: expected development or production, got "${env.STRATHON_ENV}"`);
  const production = stage === 'production';

  const dashboardUrl = secret(env, 'DASHBOARD_DATABASE_URL', problems);
  const ownerUrl = secret(env, 'DATABASE_URL', problems);
  for (const [name, u] of [['DASHBOARD_DATABASE_URL', dashboardUrl], ['DATABASE_URL', ownerUrl]] as const) {
    if (u && !isPostgresUrl(u)) problems.push(`${name}: expected postgres://user:password@host:port/database`);
  }
  let database: DatabaseSource;
  if (dashboardUrl) database = { kind: 'dedicated', url: dashboardUrl, ...(ownerUrl ? { provisionWith: ownerUrl } : {}) };
  else if (ownerUrl) database = { kind: 'derived', url: ownerUrl };
  else {
    const dataDir = path.resolve(env.STRATHON_DATA_DIR || './.data');
    database = { kind: 'embedded', passwordFile: path.join(dataDir, 'pg-password'), port: port(env, 'STRATHON_EMBEDDED_PG_PORT', 5433, problems), database: 'strathon' };
  }

  const receiverUrl = (env.STRATHON_RECEIVER_URL || 'http://localhost:4318').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(receiverUrl)) problems.push(`STRATHON_RECEIVER_URL: expected http(s)://host:port, got "${receiverUrl}"`);

  const level = (env.STRATHON_LOG_LEVEL ?? 'info').trim().toLowerCase();
  const logLevel = ({ debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error' } as const)[level as 'info'] ?? 'info';

  const config: DashboardConfig = {
    env: production ? 'production' : 'development',
    host: env.DASHBOARD_HOST || '0.0.0.0',
    port: port(env, 'DASHBOARD_PORT', 3000, problems),
    receiverUrl,
    database,
    cookieSecure: bool(env, 'STRATHON_COOKIE_SECURE', production, problems),
    trustedProxies: parseProxies(env.DASHBOARD_TRUSTED_PROXIES, problems),
    logLevel,
  };
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(config);
}
