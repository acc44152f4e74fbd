// `npm start`: the receiver (embedded Postgres unless DATABASE_URL) and the dashboard, side by side.
// Signals are forwarded; when either process exits, the other is stopped and we exit with its code.
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const children = [];
let exiting = false;

// glibc gives each thread (libuv's pool does gzip/zstd) its own malloc arena; two keep the receiver's
// RSS at max ingest load ~45 MB lower at no measurable throughput cost (bench/RESULTS.md, RSS).
const MALLOC = { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };

function run(name, script, env) {
  const child = spawn(process.execPath, [path.join(root, script)], { stdio: 'inherit', env: { ...process.env, ...MALLOC, ...env } });
  child.on('exit', (code, signal) => {
    if (!exiting) {
      process.stderr.write(`${name} exited (${signal ?? code}); stopping\n`);
      stopAll(code ?? 1);
    }
  });
  children.push(child);
  return child;
}

function stopAll(code) {
  exiting = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  const t = setTimeout(() => process.exit(code), 11_000);
  t.unref();
  Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.on('exit', r))))).then(() => process.exit(code));
}

const port = process.env.PORT ?? '4318';
// The dashboard runs beside the receiver on this machine and forwards the browser's address in
// X-Forwarded-For, so per-IP login limits and audit rows name the user, not the dashboard.
run('receiver', 'receiver/dist/main.js', process.env.STRATHON_TRUSTED_PROXIES ? {} : { STRATHON_TRUSTED_PROXIES: '127.0.0.1/32,::1/128' });
run('dashboard', 'dashboard/dist/server.js', { STRATHON_RECEIVER_URL: process.env.STRATHON_RECEIVER_URL ?? `http://localhost:${port}` });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => stopAll(0));
