// Self-hosting (SPEC §14): docker-compose.yml, the Dockerfiles, .env.example, the README's operator
// sections, the Makefile and the Kubernetes manifests, each checked against the code it deploys.
// There is no Docker engine here, so the containers' commands run directly on this machine with the
// environment compose and Kubernetes would give them (and in a copy of the image's file layout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import dotenv from 'dotenv';
import pg from 'pg';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { createTestDatabase, DEFAULT_PROJECT_ID, hex } from './helpers.js';
import { freePort } from '../src/db/embedded.js';
import { loadConfig } from '../src/config.js';

const root = path.resolve(import.meta.dirname, '../..');
const read = (rel: string) => readFileSync(path.join(root, rel), 'utf8');
const run = promisify(execFile);
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const scratch = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'strathon-selfhost-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

// ------------------------------------------------------------------------------------------------
// Sources of truth
// ------------------------------------------------------------------------------------------------

const compose = parseYaml(read('docker-compose.yml')) as any;
const dotenvDefaults = dotenv.parse(read('.env.example'));
const ENV_NAME = /\b(STRATHON_[A-Z0-9_]+|DATABASE_URL|DASHBOARD_[A-Z0-9_]+|POSTGRES_PASSWORD|PORT)\b/g;
const namesIn = (text: string) => new Set(text.match(ENV_NAME) ?? []);
const tsFiles = (dir: string): string[] => readdirSync(path.join(root, dir), { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));

/** Variables the code reads: config.ts (the only reader in the receiver) and the dashboard's sources. */
const configSource = read('receiver/src/config.ts');
const codeVars = new Set([...namesIn(configSource), ...tsFiles('dashboard/src').flatMap((f) => [...namesIn(read(f))])]);
/** Secrets config.ts accepts as X_FILE. */
const fileSecrets = new Set([...(/const SECRET_VARS = \[([^\]]*)\]/.exec(configSource)?.[1] ?? '').matchAll(/'([A-Z0-9_]+)'/g)].map((m) => m[1] as string));

/** Compose's ${VAR}, ${VAR:-default}, ${VAR-default} and $$, with `vars` playing .env. */
function interpolate(s: string, vars: Record<string, string | undefined>): string {
  return s.replace(/\$\$|\$\{([A-Za-z0-9_]+)(?::?-([^}]*))?\}/g, (m, name: string | undefined, dflt: string | undefined) =>
    m === '$$' ? '$' : (vars[name as string] || dflt || ''));
}

/** The receiver container's environment: env_file (.env = a copy of .env.example, as `make up` makes it) under `environment:`. */
function composeEnv(service: string): Record<string, string> {
  const svc = compose.services[service];
  const env: Record<string, string> = {};
  if (svc.env_file) Object.assign(env, dotenvDefaults);
  for (const [k, v] of Object.entries(svc.environment ?? {})) env[k] = interpolate(String(v ?? ''), dotenvDefaults);
  return env;
}

interface Instruction { op: string; args: string }
interface Stage { base: string; name?: string; instructions: Instruction[] }

/** Dockerfile → stages (comments dropped, continuations joined, global ARGs substituted in FROM). */
function parseDockerfile(rel: string): Stage[] {
  const text = read(rel).split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ');
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const OP = op.toUpperCase();
    if (OP === 'ARG' && stages.length === 0) {
      const [k, v = ''] = rest.split('=');
      args[k as string] = v;
    } else if (OP === 'FROM') {
      const [, image = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest) ?? [];
      stages.push({ base: image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => args[a ?? b] ?? ''), name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: OP, args: rest });
    }
  }
  return stages;
}
const ops = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op).map((i) => i.args);
const jsonForm = (args: string) => JSON.parse(args) as string[];

// ------------------------------------------------------------------------------------------------
// Running a container's command on this machine
// ------------------------------------------------------------------------------------------------

interface Proc { child: ChildProcess; out: () => string; waitFor: (re: RegExp, ms: number) => Promise<void>; stop: (ms: number) => Promise<number | null> }

function startProcess(cmd: string[], cwd: string, env: Record<string, string>): Proc {
  const [bin, ...args] = cmd;
  const child = spawn(bin === 'node' ? process.execPath : (bin as string), args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => { out += String(d); });
  child.stderr?.on('data', (d) => { out += String(d); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    out: () => out,
    async waitFor(re, ms) {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before ${re}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`no ${re} within ${ms} ms:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(ms) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
      const code = await Promise.race([exited, timer]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        throw new Error(`still running ${ms} ms after SIGTERM:\n${out}`);
      }
      return code;
    },
  };
}

/** Run a healthcheck command (compose `test: [CMD, ...]` or Dockerfile `HEALTHCHECK CMD [...]`) until it exits 0. */
async function untilHealthy(cmd: string[], env: Record<string, string>, ms: number): Promise<void> {
  const [bin, ...args] = cmd;
  assert.equal(bin, 'node', 'healthchecks use node (slim images have no curl)');
  const deadline = Date.now() + ms;
  for (;;) {
    const r = spawnSync(process.execPath, args, { env, timeout: 5000 });
    if (r.status === 0) return;
    if (Date.now() > deadline) throw new Error(`healthcheck ${args.join(' ')} still failing: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** compose's DATABASE_URL (host `postgres`) pointed at the test database instead. */
function pointAtTestDatabase(composeUrl: string, testUrl: string): string {
  const c = new URL(composeUrl);
  const t = new URL(testUrl);
  assert.equal(c.hostname, 'postgres', 'compose points the receiver at the postgres service');
  c.hostname = t.hostname;
  c.port = t.port;
  c.pathname = t.pathname;
  c.username = t.username;
  c.password = t.password;
  return c.toString();
}

const receiverImage = parseDockerfile('receiver/Dockerfile');
const receiverRuntime = receiverImage.at(-1) as Stage;
const receiverCmd = jsonForm(ops(receiverRuntime, 'CMD')[0] ?? '[]');
const imageEnv = (stage: Stage) => Object.fromEntries(ops(stage, 'ENV').map((a) => a.split('=') as [string, string]));

/**
 * Boot the receiver's CMD with the compose environment on an EMPTY database; the healthchecks of
 * compose and the Dockerfile must pass, then SIGTERM must end it with status 0 within 10 s.
 */
async function bootLikeCompose(cwd: string, during?: (port: number, env: Record<string, string>) => Promise<void>) {
  const db = await createTestDatabase({ fromTemplate: false });
  const [port, grpcPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...imageEnv(receiverRuntime),
    ...composeEnv('receiver'),
  };
  env.DATABASE_URL = pointAtTestDatabase(env.DATABASE_URL as string, db);
  env.PORT = String(port);
  env.STRATHON_GRPC_PORT = String(grpcPort);
  const proc = startProcess(receiverCmd, cwd, env);
  try {
    await proc.waitFor(/is up/, 60_000); // the line `make up` waits for
    const composeCheck = (compose.services.receiver.healthcheck.test as string[]).slice(1).map((a) => a.replaceAll('4318', String(port)));
    await untilHealthy(composeCheck, env, 15_000);
    const dockerCheck = jsonForm(/CMD\s+(\[.*\])\s*$/.exec(ops(receiverRuntime, 'HEALTHCHECK')[0] ?? '')?.[1] ?? '[]');
    await untilHealthy(dockerCheck, env, 5_000);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');

    const client = new pg.Client({ connectionString: db });
    await client.connect();
    try {
      const applied = await client.query('SELECT name FROM pgmigrations ORDER BY name');
      const files = readdirSync(path.join(root, 'migrations')).filter((f) => /\.(sql|js|ts)$/.test(f)).map((f) => f.replace(/\.\w+$/, '')).sort();
      assert.deepEqual(applied.rows.map((r) => r.name), files, 'every migration applied on the empty database');
    } finally {
      await client.end();
    }
    if (during) await during(port, env);
  } catch (err) {
    await proc.stop(10_000).catch(() => undefined);
    throw err;
  }
  const t0 = Date.now();
  const code = await proc.stop(10_000);
  assert.equal(code, 0, `exit status after SIGTERM:\n${proc.out()}`);
  assert.ok(Date.now() - t0 < 10_000);
  return proc.out();
}

// ------------------------------------------------------------------------------------------------
// docker-compose.yml
// ------------------------------------------------------------------------------------------------

test('docker-compose.yml: postgres, receiver and dashboard exactly as SPEC §14', () => {
  assert.deepEqual(Object.keys(compose.services).sort(), ['dashboard', 'postgres', 'receiver']);

  const postgres = compose.services.postgres;
  assert.match(postgres.image, /^postgres:(1[5-9]|[2-9]\d)(\.|-|$)/, 'the official image, Postgres 15+');
  assert.deepEqual(postgres.ports, ['127.0.0.1:5432:5432'], '5432 on loopback only');
  assert.deepEqual(Object.keys(compose.volumes), ['strathon_postgres_data']);
  assert.equal(compose.volumes.strathon_postgres_data?.name ?? 'strathon_postgres_data', 'strathon_postgres_data');
  assert.ok(postgres.volumes.includes('strathon_postgres_data:/var/lib/postgresql/data'), 'data on the named volume');
  assert.equal(postgres.healthcheck.test[0], 'CMD-SHELL');
  assert.match(postgres.healthcheck.test[1], /^pg_isready\b/);
  assert.equal(postgres.environment.POSTGRES_PASSWORD, '${POSTGRES_PASSWORD:-strathon_dev}');

  const receiver = compose.services.receiver;
  assert.deepEqual(receiver.build, { context: '.', dockerfile: 'receiver/Dockerfile' });
  assert.deepEqual(receiver.ports, ['4318:4318', '4317:4317']);
  assert.deepEqual(receiver.depends_on, { postgres: { condition: 'service_healthy' } });
  assert.equal(receiver.env_file, '.env');
  const url = new URL(interpolate(receiver.environment.DATABASE_URL, {}));
  assert.equal(url.hostname, 'postgres');
  assert.equal(url.port, '5432');
  assert.equal(url.username, postgres.environment.POSTGRES_USER);
  assert.equal(url.password, 'strathon_dev');
  assert.equal(url.pathname, `/${postgres.environment.POSTGRES_DB}`);
  assert.equal(receiver.environment.PORT, '4318');
  assert.equal(receiver.environment.STRATHON_GRPC_PORT, '4317');
  assert.equal(receiver.healthcheck.test[0], 'CMD');
  assert.match(receiver.healthcheck.test.join(' '), /127\.0\.0\.1:4318\/ready/);

  const dashboard = compose.services.dashboard;
  assert.deepEqual(dashboard.build, { context: '.', dockerfile: 'dashboard/Dockerfile' });
  assert.deepEqual(dashboard.ports, ['3000:3000']);
  assert.deepEqual(dashboard.depends_on, { receiver: { condition: 'service_healthy' } });
  assert.equal(dashboard.environment.STRATHON_RECEIVER_URL, 'http://receiver:4318');
  assert.match(dashboard.healthcheck.test.join(' '), /127\.0\.0\.1:3000\/health/);

  for (const svc of Object.values(compose.services) as any[]) {
    for (const k of ['interval', 'timeout', 'retries', 'start_period']) assert.ok(svc.healthcheck[k] !== undefined, `healthcheck.${k}`);
    if (svc.build) assert.ok(existsSync(path.join(root, svc.build.context, svc.build.dockerfile)), `${svc.build.dockerfile} exists`);
  }
});

/** The commented production variant, uncommented: what the user pastes into docker-compose.override.yml. */
function productionOverride(): string {
  const m = /^# BEGIN docker-compose\.override\.yml\n([\s\S]*?)^# END docker-compose\.override\.yml$/m.exec(read('docker-compose.yml'));
  assert.ok(m, 'docker-compose.yml carries the secrets variant between BEGIN/END lines');
  return (m[1] as string).split('\n').map((l) => l.replace(/^# ?/, '')).join('\n');
}

test('the secrets variant: every *_FILE is a compose secret config.ts accepts, and the plain variable is switched off', () => {
  const o = parseYaml(productionOverride()) as any;
  for (const [name, svc] of Object.entries(o.services) as [string, any][]) {
    for (const [k, v] of Object.entries(svc.environment as Record<string, string>)) {
      if (!k.endsWith('_FILE')) continue;
      const plain = k.slice(0, -5);
      if (name === 'receiver') assert.ok(fileSecrets.has(plain), `${k}: config.ts reads ${plain} as a file secret`);
      const secret = /^\/run\/secrets\/([\w-]+)$/.exec(v)?.[1];
      assert.ok(secret && svc.secrets.includes(secret) && o.secrets[secret]?.file, `${k} → a declared secret mounted in ${name}`);
      const base = compose.services[name].environment?.[plain];
      if (base !== undefined) assert.equal(svc.environment[plain], '', `${plain} blanked so it does not clash with ${k}`);
    }
  }
  const receiverEnv = o.services.receiver.environment;
  assert.equal(receiverEnv.STRATHON_ENV, 'production');
  for (const s of ['STRATHON_AUDIT_HMAC_KEY', 'STRATHON_ENCRYPTION_KEY', 'STRATHON_PASSWORD_PEPPER', 'STRATHON_JWT_SECRET', 'DATABASE_URL']) {
    assert.ok(receiverEnv[`${s}_FILE`], `${s} comes from a secret file`);
  }
});

test('docker-compose config validates the file and the secrets variant (when a compose binary is installed)', async (t) => {
  const cmd = spawnSync('docker', ['compose', 'version']).status === 0 ? ['docker', 'compose'] : has('docker-compose') ? ['docker-compose'] : undefined;
  if (!cmd) {
    t.skip('neither `docker compose` nor `docker-compose` is installed (Debian: apt-get install docker-compose)');
    return;
  }
  // A mirror of the repository root with .env as `make up` creates it; build contexts are real (symlinks).
  const dir = scratch();
  writeFileSync(path.join(dir, 'docker-compose.yml'), read('docker-compose.yml'));
  writeFileSync(path.join(dir, '.env'), read('.env.example'));
  for (const d of ['receiver', 'dashboard']) symlinkSync(path.join(root, d), path.join(dir, d));
  const [bin, ...pre] = cmd as [string, ...string[]];
  await run(bin, [...pre, 'config', '-q'], { cwd: dir });

  writeFileSync(path.join(dir, 'docker-compose.override.yml'), productionOverride());
  mkdirSync(path.join(dir, 'secrets'));
  for (const s of Object.keys((parseYaml(productionOverride()) as any).secrets)) writeFileSync(path.join(dir, 'secrets', s), 'x\n');
  await run(bin, [...pre, 'config', '-q'], { cwd: dir });
  const merged = parseYaml((await run(bin, [...pre, 'config'], { cwd: dir })).stdout) as any;
  assert.equal(merged.services.receiver.environment.DATABASE_URL, '');
  assert.equal(merged.services.receiver.environment.DATABASE_URL_FILE, '/run/secrets/database_url');
  assert.equal(merged.services.receiver.environment.STRATHON_ENV, 'production');
});

// ------------------------------------------------------------------------------------------------
// Configuration: code, .env.example and the README agree
// ------------------------------------------------------------------------------------------------

function readmeConfigTable(): Map<string, string> {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Configuration\n');
  assert.ok(start >= 0, 'README has a Configuration section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/gm)) rows.set(m[1] as string, (m[2] as string).trim());
  return rows;
}

test('every variable the code reads is in .env.example and the README table, and nothing else is', () => {
  const envExample = new Set([...read('.env.example').matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] as string));
  const table = readmeConfigTable();
  const sorted = (s: Iterable<string>) => [...s].sort();
  assert.ok(codeVars.has('DATABASE_URL') && codeVars.has('PORT') && codeVars.size > 40, `extracted ${codeVars.size} names`);
  assert.deepEqual(sorted(envExample), sorted(codeVars), '.env.example lists exactly the variables the code reads');
  assert.deepEqual(sorted(table.keys()), sorted(codeVars), 'the README Configuration table lists exactly the variables the code reads');
  // config.ts is the receiver's only reader: any variable named elsewhere in receiver/src is one of its.
  for (const f of tsFiles('receiver/src')) {
    for (const n of namesIn(read(f))) assert.ok(codeVars.has(n), `${f} names ${n}, which config.ts does not read`);
  }
});

test('the defaults in config.ts, .env.example and the README table agree', () => {
  const table = readmeConfigTable();
  let checked = 0;
  for (const m of configSource.matchAll(/\b(int|bool)\('([A-Z0-9_]+)', ([^,)]+)[,)]/g)) {
    const [, kind, name, expr] = m as unknown as [string, string, string, string];
    let dflt: string;
    if (kind === 'bool' && /^(true|false)$/.test(expr)) dflt = expr;
    else if (kind === 'int' && /^[\d_ *]+$/.test(expr)) dflt = String(expr.split('*').reduce((a, x) => a * Number(x.trim().replace(/_/g, '')), 1));
    else continue; // computed (e.g. `production`): described in words
    if (dotenvDefaults[name] !== '') assert.equal(dotenvDefaults[name], dflt, `.env.example ${name}`);
    assert.ok((table.get(name) ?? '').includes(`\`${dflt}\``), `README default of ${name} is \`${dflt}\`, table says ${table.get(name)}`);
    checked++;
  }
  assert.ok(checked >= 25, `compared ${checked} defaults`);
});

test("the README's secret-generation commands give a configuration that passes production validation", async (t) => {
  if (!has('openssl')) {
    t.skip('openssl is not installed');
    return;
  }
  const m = /^( *)```sh\n( *cp \.env\.example \.env\n *sed -i\.bak[\s\S]*?) *```/m.exec(read('README.md'));
  assert.ok(m, 'README has the sed block that fills .env');
  const block = (m[2] as string).split('\n').map((l) => l.slice((m[1] as string).length)).join('\n');
  const dir = scratch();
  writeFileSync(path.join(dir, '.env.example'), read('.env.example'));
  await run('sh', ['-c', block], { cwd: dir, env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` } });
  const env = dotenv.parse(readFileSync(path.join(dir, '.env'), 'utf8'));
  assert.equal(env.STRATHON_ENV, 'production');
  const { config, warnings } = loadConfig({ ...env, DATABASE_URL: 'postgres://strathon:x@postgres:5432/strathon' });
  assert.equal(config.env, 'production');
  assert.deepEqual(warnings, []);
  assert.match(env.POSTGRES_PASSWORD as string, /^[0-9a-f]{48}$/, 'URL-safe, as it is spliced into DATABASE_URL');
});

// ------------------------------------------------------------------------------------------------
// Dockerfiles and .dockerignore
// ------------------------------------------------------------------------------------------------

for (const [rel, workspace, cmd, port, check] of [
  ['receiver/Dockerfile', 'receiver', ['node', 'receiver/dist/main.js'], ['4318', '4317'], '/ready'],
  ['dashboard/Dockerfile', 'dashboard', ['node', 'dashboard/dist/server.js'], ['3000'], '/health'],
] as const) {
  test(`${rel}: multi-stage node:20 slim, production dependencies only, non-root, tini, HEALTHCHECK`, () => {
    const stages = parseDockerfile(rel);
    assert.ok(stages.length >= 2, 'multi-stage');
    for (const s of stages) assert.match(s.base, /^node:20(\.\d+)*-(bookworm-)?slim$/, `base ${s.base}`);
    const [build, runtime] = [stages[0] as Stage, stages.at(-1) as Stage];
    assert.ok(ops(build, 'RUN').some((r) => /\bnpm ci\b/.test(r)), 'build stage: npm ci');
    assert.ok(ops(build, 'RUN').some((r) => /\bnpm run build\b/.test(r)), 'build stage: npm run build');
    const install = ops(runtime, 'RUN').find((r) => /\bnpm (ci|prune)\b/.test(r)) ?? '';
    assert.match(install, /--omit=dev/, 'runtime: production dependencies only');
    assert.match(install, new RegExp(`-w ${workspace}\\b`), 'runtime: only this workspace');
    const user = ops(runtime, 'USER').at(-1) ?? '';
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `non-root USER (${user || 'none'})`);
    assert.ok(ops(runtime, 'RUN').some((r) => /apt-get install\b.*\btini\b/.test(r)), 'tini installed');
    assert.deepEqual(jsonForm(ops(runtime, 'ENTRYPOINT')[0] ?? '[]'), ['/usr/bin/tini', '--']);
    assert.deepEqual(jsonForm(ops(runtime, 'CMD')[0] ?? '[]'), cmd);
    assert.ok(existsSync(path.join(root, cmd[1])), `${cmd[1]} is built`);
    assert.deepEqual((ops(runtime, 'EXPOSE')[0] ?? '').split(/\s+/), [...port]);
    const hc = ops(runtime, 'HEALTHCHECK')[0] ?? '';
    assert.match(hc, /CMD \["node", "-e", /, 'HEALTHCHECK with node (no curl in slim images)');
    assert.ok(hc.includes(check), `HEALTHCHECK on ${check}`);
    assert.ok(!ops(runtime, 'COPY').some((c) => /node_modules/.test(c)), 'node_modules come from npm ci, not from the build stage');
  });
}

test('the receiver image copies dist, proto and migrations to where the compiled code resolves them', () => {
  const copies = ops(receiverRuntime, 'COPY');
  assert.ok(copies.includes('--from=build /app/receiver/dist receiver/dist'));
  assert.ok(copies.includes('receiver/proto receiver/proto'));
  assert.ok(copies.includes('migrations migrations'));
  assert.match(read('receiver/src/db/migrate.ts'), /new URL\('\.\.\/\.\.\/\.\.\/migrations', import\.meta\.url\)/);
  assert.match(read('receiver/src/ingest/otlp-wire.ts'), /new URL\('\.\.\/\.\.\/proto\/', import\.meta\.url\)/);
  assert.deepEqual(ops(receiverRuntime, 'WORKDIR'), ['/app']);
});

/** .dockerignore semantics enough for our patterns: `a/b`, `**\/x`, `*.ext`, `!exception`. */
function dockerIgnored(p: string): boolean {
  let ignored = false;
  for (const raw of read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const negate = raw.startsWith('!');
    const pat = negate ? raw.slice(1) : raw;
    const re = new RegExp(`^${pat.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(p)) ignored = !negate;
  }
  return ignored;
}

test('.dockerignore keeps secrets, local data and build output out of the context, and nothing the images COPY', () => {
  for (const p of ['.env', '.env.production', '.git', 'node_modules', 'receiver/node_modules', '.data', 'receiver/dist', 'dashboard/dist', 'bench/out', 'secrets', 'test-artifacts']) {
    assert.ok(dockerIgnored(p), `${p} is ignored`);
  }
  for (const rel of ['receiver/Dockerfile', 'dashboard/Dockerfile']) {
    for (const stage of parseDockerfile(rel)) {
      for (const c of ops(stage, 'COPY').filter((x) => !x.startsWith('--from='))) {
        const srcs = c.split(/\s+/).slice(0, -1);
        for (const s of srcs) assert.ok(!dockerIgnored(s.replace(/\/$/, '')), `${rel}: COPY ${s} is not ignored`);
        for (const s of srcs) assert.ok(existsSync(path.join(root, s)), `${rel}: COPY ${s} exists`);
      }
    }
  }
  for (const p of ['.env.example', 'receiver/src/main.ts', 'migrations/x.sql', 'receiver/proto']) assert.ok(!dockerIgnored(p), `${p} is in the context`);
});

test('hadolint accepts the Dockerfiles (when installed)', async (t) => {
  if (!has('hadolint')) {
    t.skip('hadolint is not installed (not packaged for Debian or npm)');
    return;
  }
  for (const rel of ['receiver/Dockerfile', 'dashboard/Dockerfile']) await run('hadolint', [path.join(root, rel)]);
});

// ------------------------------------------------------------------------------------------------
// The containers' commands, run here with the compose environment
// ------------------------------------------------------------------------------------------------

test("the receiver's CMD with the compose environment boots on an empty database, migrates, is healthy, and the README's curl and SDK settings work", async () => {
  await bootLikeCompose(root, async (port, env) => {
    // README "Verifying with curl": a key from the admin CLI in the container's environment ...
    const created = await run(process.execPath, ['receiver/dist/cli.js', 'create-api-key', '--project', DEFAULT_PROJECT_ID, '--scopes', 'traces:write,traces:read'], { cwd: root, env });
    const key = created.stdout.trim();
    assert.match(key, /^stra_/);
    const traceId = hex(16);
    const posted = await fetch(`http://127.0.0.1:${port}/v1/traces`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'curl' } }] },
        scopeSpans: [{ spans: [{ traceId, spanId: hex(8), name: 'hello', kind: 1, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000001000000000' }] }] }] }),
    });
    assert.equal(posted.status, 200, await posted.clone().text());
    const got = await fetch(`http://127.0.0.1:${port}/v1/traces/${traceId}`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(got.status, 200);
    assert.ok((await got.text()).includes(traceId));

    // README "SDK endpoint settings": the JS exporter configured only by OTEL_* variables, with %20.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
    process.env.OTEL_EXPORTER_OTLP_HEADERS = `Authorization=Bearer%20${key}`;
    let exporter: OTLPTraceExporter;
    try {
      exporter = new OTLPTraceExporter();
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
    }
    const codes: number[] = [];
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor({
      export: (spans, cb) => exporter.export(spans, (r) => { codes.push(r.code); cb(r); }),
      shutdown: () => exporter.shutdown(),
    })] });
    const span = provider.getTracer('selfhost').startSpan('sdk-env');
    const sdkTrace = span.spanContext().traceId;
    span.end();
    await provider.forceFlush();
    await provider.shutdown();
    assert.deepEqual(codes, [0], 'the export succeeded');
    const stored = await fetch(`http://127.0.0.1:${port}/v1/traces/${sdkTrace}`, { headers: { 'x-api-key': key } });
    assert.equal(stored.status, 200);

    // README "Troubleshooting": the answers it explains, produced for real.
    const readOnly = (await run(process.execPath, ['receiver/dist/cli.js', 'create-api-key', '--project', DEFAULT_PROJECT_ID, '--scopes', 'traces:read'], { cwd: root, env })).stdout.trim();
    const rows = troubleshootingRows();
    for (const [expected, init] of [
      [401, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }],
      [401, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer stra_${'x'.repeat(43)}` }, body: '{}' }],
      [403, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${readOnly}` }, body: '{}' }],
      [405, { method: 'PUT', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` }, body: '{}' }],
      [415, { method: 'POST', headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${key}` }, body: '{}' }],
      [415, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'br', Authorization: `Bearer ${key}` }, body: '{}' }],
    ] as [number, RequestInit][]) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, init);
      assert.equal(res.status, expected, `${init.method} ${JSON.stringify(init.headers)}: ${await res.text()}`);
      assert.ok(rows.has(expected), `README Troubleshooting explains ${expected}`);
    }
  });
});

function troubleshootingRows(): Set<number> {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Troubleshooting\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return new Set([...section.matchAll(/^\| `(\d{3})` \|/gm)].map((m) => Number(m[1])));
}

test('the README Troubleshooting table covers every answer of POST /v1/traces but 200', () => {
  assert.deepEqual([...troubleshootingRows()].sort(), [400, 401, 403, 405, 413, 415, 429, 503]);
});

test("the receiver image's file layout (its COPY lines, assembled in a scratch /app) boots with the compose environment", async () => {
  const app = path.join(scratch(), 'app');
  mkdirSync(app);
  for (const c of ops(receiverRuntime, 'COPY')) {
    const parts = c.split(/\s+/);
    const fromBuild = parts[0] === '--from=build';
    const [dest, ...srcsRev] = parts.slice(fromBuild ? 1 : 0).reverse();
    for (const src of srcsRev.reverse()) {
      // The build stage's /app is this repository after `npm run build`.
      const from = path.join(root, fromBuild ? src.replace(/^\/app\//, '') : src);
      const to = path.join(app, (dest as string).endsWith('/') ? path.join(dest as string, path.basename(src)) : (dest as string));
      mkdirSync(path.dirname(to), { recursive: true });
      cpSync(from, to, { recursive: true });
    }
  }
  // Stands in for the runtime stage's `npm ci --omit=dev --omit=optional -w receiver`.
  symlinkSync(path.join(root, 'node_modules'), path.join(app, 'node_modules'));
  assert.deepEqual(readdirSync(app).sort(), ['dashboard', 'migrations', 'node_modules', 'package-lock.json', 'package.json', 'receiver']);
  const out = await bootLikeCompose(app);
  assert.match(out, new RegExp(`Strathon-TS receiver ${JSON.parse(read('receiver/package.json')).version} is up`), 'version read from receiver/package.json');
});

test("the dashboard's CMD with the compose environment passes the compose and Dockerfile healthchecks and stops on SIGTERM", async () => {
  const port = await freePort();
  const runtime = parseDockerfile('dashboard/Dockerfile').at(-1) as Stage;
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...imageEnv(runtime), ...composeEnv('dashboard'), DASHBOARD_PORT: String(port) };
  const proc = startProcess(jsonForm(ops(runtime, 'CMD')[0] ?? '[]'), root, env);
  try {
    await untilHealthy((compose.services.dashboard.healthcheck.test as string[]).slice(1).map((a) => a.replaceAll('3000', String(port))), env, 15_000);
    await untilHealthy(jsonForm(/CMD\s+(\[.*\])\s*$/.exec(ops(runtime, 'HEALTHCHECK')[0] ?? '')?.[1] ?? '[]'), env, 5_000);
    assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /<h1>Sign in<\/h1>/);
  } finally {
    assert.equal(await proc.stop(10_000), 0);
  }
});

// ------------------------------------------------------------------------------------------------
// Makefile
// ------------------------------------------------------------------------------------------------

const TARGETS = ['up', 'logs', 'down', 'reset', 'dev', 'test', 'bench', 'lint', 'help'];

test('make help (the default goal) lists every target with a description; dev/test/bench/lint run npm', async (t) => {
  if (!has('make')) {
    t.skip('make is not installed');
    return;
  }
  const { stdout } = await run('make', ['-s', 'help'], { cwd: root });
  const listed = stdout.split('\n').map((l) => /^\s+([a-z-]+)\s+\S/.exec(l)?.[1]).filter(Boolean);
  assert.deepEqual([...listed].sort(), [...TARGETS].sort());
  const declared = [...read('Makefile').matchAll(/^([a-z][a-z-]*):/gm)].map((m) => m[1]);
  assert.deepEqual([...declared].sort(), [...TARGETS].sort(), 'every target is documented');
  assert.equal((await run('make', ['-s'], { cwd: root })).stdout, stdout, 'help is the default goal');
  for (const [target, command] of [['test', 'npm test'], ['dev', 'npm start'], ['bench', 'npm run bench'], ['lint', 'npm run lint']]) {
    assert.equal((await run('make', ['-n', target as string], { cwd: root })).stdout.trim(), command);
  }
  assert.match((await run('make', ['-n', 'reset'], { cwd: root })).stdout, /docker compose down -v\n/);
});

test('make up: creates .env, runs compose up -d, follows the receiver logs until the banner, then exits', async (t) => {
  if (!has('make')) {
    t.skip('make is not installed');
    return;
  }
  const dir = scratch();
  writeFileSync(path.join(dir, '.env.example'), read('.env.example'));
  const fake = path.join(dir, 'fake-compose');
  const banner = `\n  Strathon-TS receiver 0.1.0 is up\n  OTLP/HTTP endpoint:  http://0.0.0.0:4318/v1/traces\n`;
  // A stand-in for `docker compose`: records its arguments; the banner appears after a moment.
  writeFileSync(fake, `#!/bin/sh
echo "$*" >> "${dir}/calls"
case "$1" in
  up) [ -n "$FAIL_UP" ] && exit 1; date +%s > "${dir}/started"; exit 0 ;;
  logs)
    case "$*" in *" -f "*) printf 'migrating\\n'; exec sleep 30 ;; esac
    [ -n "$NO_BANNER" ] && { echo booting; exit 0; }
    [ $(( $(date +%s) - $(cat "${dir}/started") )) -ge 1 ] && printf '${banner.replace(/\n/g, '\\n')}' || echo booting ;;
esac
`);
  chmodSync(fake, 0o755);
  const makefile = path.join(root, 'Makefile');
  const t0 = Date.now();
  const ok = await run('make', ['-s', '-f', makefile, '-C', dir, 'up', `COMPOSE=${fake}`], { timeout: 20_000 });
  assert.ok(Date.now() - t0 < 15_000, 'exits once the banner is there');
  assert.match(ok.stdout, /created \.env from \.env\.example/);
  assert.equal(readFileSync(path.join(dir, '.env'), 'utf8'), read('.env.example'));
  const calls = readFileSync(path.join(dir, 'calls'), 'utf8');
  assert.match(calls, /^up -d --build$/m);
  assert.match(calls, /^logs -f --no-log-prefix receiver$/m);
  assert.match(calls, /^logs --no-log-prefix receiver$/m);

  const stuck = await run('make', ['-s', '-f', makefile, '-C', dir, 'up', `COMPOSE=${fake}`, 'UP_TIMEOUT=2'], { timeout: 20_000, env: { ...process.env, NO_BANNER: '1' } }).catch((e) => e);
  assert.notEqual(stuck.code, 0, 'no banner: make up fails');
  assert.match(stuck.stderr, /no banner from the receiver after 2 s/);
  assert.doesNotMatch(stuck.stdout, /created \.env/, '.env is kept once it exists');

  const failed = await run('make', ['-s', '-f', makefile, '-C', dir, 'up', `COMPOSE=${fake}`], { timeout: 20_000, env: { ...process.env, FAIL_UP: '1' } }).catch((e) => e);
  assert.notEqual(failed.code, 0, 'compose up failing fails make up');
  assert.match(readFileSync(path.join(dir, 'calls'), 'utf8'), /^logs --tail=60 receiver$/m, 'and shows the receiver logs');
});

// ------------------------------------------------------------------------------------------------
// Kubernetes
// ------------------------------------------------------------------------------------------------

const k8sDir = 'deploy/kubernetes';
const k8sDocs = readdirSync(path.join(root, k8sDir)).filter((f) => f.endsWith('.yaml')).flatMap((f) =>
  parseAllDocuments(read(path.join(k8sDir, f))).map((d) => {
    assert.deepEqual(d.errors, [], `${f} parses`);
    return { file: f, obj: d.toJS() as any };
  }));
const k8s = (kind: string, name: string) => {
  const found = k8sDocs.find((d) => d.obj?.kind === kind && d.obj?.metadata?.name === name);
  assert.ok(found, `${kind}/${name} in ${k8sDir}`);
  return found.obj;
};
const secretExample = k8s('Secret', 'strathon-secrets');

/** A pod's env, with the *_FILE files written into `dir` from generated values (as the Secret would hold). */
function podEnv(pod: any, container: any, dir: string, values: Record<string, string>): Record<string, string> {
  const mounts = new Map<string, string>(container.volumeMounts.map((m: any) => [m.name, m.mountPath]));
  const files = new Map<string, string>();
  for (const v of pod.volumes ?? []) {
    if (!v.secret) continue;
    assert.equal(v.secret.secretName, secretExample.metadata.name);
    for (const item of v.secret.items) {
      assert.ok(item.key in secretExample.stringData, `secret key ${item.key} is in secret.example.yaml`);
      files.set(path.posix.join(mounts.get(v.name) as string, item.path), item.key);
    }
  }
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.valueFrom?.secretKeyRef) {
      assert.ok(e.valueFrom.secretKeyRef.key in secretExample.stringData, `${e.name}: key in secret.example.yaml`);
      continue;
    }
    if (e.name.endsWith('_FILE')) {
      assert.ok(fileSecrets.has(e.name.slice(0, -5)), `${e.name}: config.ts reads it`);
      const key = files.get(e.value);
      assert.ok(key, `${e.name}=${e.value} is a mounted secret file`);
      const local = path.join(dir, key);
      writeFileSync(local, `${values[key]}\n`);
      env[e.name] = local;
    } else {
      env[e.name] = String(e.value);
    }
  }
  return env;
}

test('k8s receiver Deployment: probes, resources, hardened securityContext, and its env is a valid production config', () => {
  const dep = k8s('Deployment', 'strathon-receiver');
  const pod = dep.spec.template.spec;
  assert.deepEqual(dep.spec.selector.matchLabels, Object.fromEntries(Object.entries(dep.spec.template.metadata.labels).filter(([k]) => k in dep.spec.selector.matchLabels)));
  const c = pod.containers[0];
  assert.deepEqual(c.livenessProbe, { httpGet: { path: '/health', port: 'http' }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 1 });
  assert.deepEqual(c.readinessProbe, { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2 });
  assert.deepEqual(c.ports.map((p: any) => [p.name, p.containerPort]), [['http', 4318], ['grpc', 4317]]);
  for (const k of ['cpu', 'memory']) assert.ok(c.resources.requests[k] && c.resources.limits[k], `resources ${k}`);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(String(pod.securityContext.runAsUser), (ops(receiverRuntime, 'USER').at(-1) ?? '').split(':')[0], 'runAsUser is the image USER');
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  const tmp = c.volumeMounts.find((m: any) => m.mountPath === '/tmp');
  assert.ok(tmp && pod.volumes.find((v: any) => v.name === tmp.name)?.emptyDir, '/tmp is an emptyDir');
  assert.ok(pod.terminationGracePeriodSeconds > 10, 'longer than the 10 s drain');

  const values = {
    'database-url': 'postgres://strathon:x@postgres:5432/strathon',
    'audit-hmac-key': randomBytes(32).toString('hex'),
    'encryption-key': randomBytes(32).toString('base64url'),
    'password-pepper': randomBytes(32).toString('hex'),
    'jwt-secret': randomBytes(32).toString('hex'),
  };
  const env = podEnv(pod, c, scratch(), values);
  assert.equal(env.STRATHON_ENV, 'production');
  const { config, warnings } = loadConfig(env);
  assert.equal(config.env, 'production');
  assert.equal(config.databaseUrl, values['database-url']);
  assert.deepEqual(warnings, []);
});

test('k8s Services select their Deployments and name their container ports; the dashboard is wired to the receiver Service', () => {
  for (const [svcName, depName] of [['strathon-receiver', 'strathon-receiver'], ['strathon-dashboard', 'strathon-dashboard']]) {
    const svc = k8s('Service', svcName as string);
    const dep = k8s('Deployment', depName as string);
    const labels = dep.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v, `${svcName} selects ${depName}`);
    const portNames = dep.spec.template.spec.containers[0].ports.map((p: any) => p.name);
    for (const p of svc.spec.ports) assert.ok(portNames.includes(p.targetPort), `${svcName} → port ${p.targetPort}`);
  }
  assert.deepEqual(k8s('Service', 'strathon-receiver').spec.ports.map((p: any) => p.port), [4318, 4317]);
  const dash = k8s('Deployment', 'strathon-dashboard').spec.template.spec;
  const env = Object.fromEntries(dash.containers[0].env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
  assert.equal(env.STRATHON_RECEIVER_URL, 'http://strathon-receiver:4318');
  assert.equal(dash.securityContext.runAsNonRoot, true);
  assert.equal(dash.containers[0].securityContext.readOnlyRootFilesystem, true);
  assert.deepEqual(dash.containers[0].livenessProbe.httpGet, { path: '/health', port: 'http' });
  const kustomization = k8sDocs.find((d) => d.obj?.kind === 'Kustomization')?.obj;
  for (const f of kustomization?.resources ?? []) assert.ok(existsSync(path.join(root, k8sDir, f)), `kustomization resource ${f}`);
});

test('k8s migrate Job: runs `migrate up` with the secret file, and that command migrates an empty database', async () => {
  const job = k8s('Job', 'strathon-migrate');
  const pod = job.spec.template.spec;
  const c = pod.containers[0];
  assert.deepEqual(c.command, ['node', 'receiver/dist/cli.js', 'migrate', 'up']);
  assert.equal(c.image, k8s('Deployment', 'strathon-receiver').spec.template.spec.containers[0].image, 'the same image as the Deployment');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  const db = await createTestDatabase({ fromTemplate: false });
  const env = podEnv(pod, c, scratch(), { 'database-url': db });
  const [bin, ...args] = c.command as string[];
  assert.equal(bin, 'node');
  const { stdout } = await run(process.execPath, args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...env, STRATHON_LOG_LEVEL: 'error' } });
  assert.match(stdout, /applied: 1764000000000_core-and-telemetry/);
});

test('deploy/kubernetes/README.md says PgBouncer must run in session mode, and why', () => {
  const md = read(`${k8sDir}/README.md`);
  assert.match(md, /PgBouncer/);
  assert.match(md, /pool_mode = session/);
  assert.match(md, /advisory lock/i);
  assert.match(md, /LISTEN\/NOTIFY/);
});

test('kubeconform accepts the manifests (when installed)', async (t) => {
  if (!has('kubeconform')) {
    t.skip('kubeconform is not installed (not packaged for Debian or npm)');
    return;
  }
  await run('kubeconform', ['-strict', '-summary', '-ignore-filename-pattern', 'kustomization', path.join(root, k8sDir)]);
});
