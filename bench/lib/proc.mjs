// Child processes that never outlive the benchmark, and /proc sampling (RSS, CPU time).
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';

const cleanups = [];

/** Register an async undo step; steps run last-in first-out on success, failure and signals. */
export function onCleanup(fn) {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup step failed: ${err?.message ?? err}`);
    }
  }
}

/** Run a benchmark body, always undo what it started, then exit (exporters keep sockets open). */
export async function benchMain(body) {
  let stopping = false;
  const onSignal = (sig) => {
    if (stopping) return; // the terminal and scripts/bench.mjs may both deliver it
    stopping = true;
    console.error(`${sig} received: stopping what the benchmark started`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  try {
    await body();
  } catch (err) {
    console.error(err?.stack ?? err);
    code = 1;
  }
  await runCleanups();
  process.exit(code);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawn a node process with its output in `logPath`; it is killed at cleanup if still alive. */
export function spawnNode(args, { env, cwd, logPath }) {
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, args, { env, cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.exited = exited;
  child.exitInfo = undefined;
  void exited.then((info) => { child.exitInfo = info; });
  const undo = onCleanup(() => stopChild(child, 10_000));
  void exited.then(undo);
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit info. */
export async function stopChild(child, graceMs = 10_000) {
  if (child.exitInfo) return child.exitInfo;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const info = await child.exited;
  clearTimeout(timer);
  return info;
}

let clkTck;
function ticksPerSecond() {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

function statFields(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": index 0 is field 3 (state), so field n is at index n - 3.
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** Resident set size of a process in bytes (VmRSS), or undefined once it is gone. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
  } catch {
    return 0;
  }
}

/**
 * CPU seconds per live process of a Postgres server (the postmaster and its children). Compare two
 * snapshots with cpuDelta: only processes alive at the end count, so a backend that exits inside
 * the window loses its share (reaped children's times are not used: they arrive at reap time).
 */
export function pgCpuSnapshot(rootPid) {
  const snap = new Map();
  if (!rootPid) return snap;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = statFields(name);
      if (Number(name) === rootPid || Number(f[1]) === rootPid) snap.set(name, (Number(f[11]) + Number(f[12])) / ticksPerSecond());
    } catch {
      // the process ended while we looked
    }
  }
  return snap;
}

/** CPU seconds used between two pgCpuSnapshot()s (undefined without a known server process). */
export function cpuDelta(before, after) {
  if (after.size === 0) return undefined;
  let s = 0;
  for (const [pid, t] of after) s += t - (before.get(pid) ?? 0);
  return s;
}

/** Busy CPU seconds of the whole machine so far (all processes: ours and everyone else's). */
export function machineCpuSeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
  const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3] - f[4];
  return busy / ticksPerSecond();
}

/**
 * CPU use over a window as fractions of one core: the receiver process, Postgres, this process
 * (the load generator) and everything else on the machine (other tenants of a shared host).
 */
export function cpuMeter({ receiverPid, postmasterPid }) {
  return {
    begin: () => ({
      rcv: receiverPid ? cpuSeconds(receiverPid) : 0, pg: pgCpuSnapshot(postmasterPid), me: cpuSeconds(process.pid), all: machineCpuSeconds(),
    }),
    end: (b, seconds) => {
      const receiver = receiverPid ? (cpuSeconds(receiverPid) - b.rcv) / seconds : 0;
      const pgSeconds = cpuDelta(b.pg, pgCpuSnapshot(postmasterPid));
      const pg = pgSeconds === undefined ? undefined : pgSeconds / seconds;
      const client = (cpuSeconds(process.pid) - b.me) / seconds;
      const machine = (machineCpuSeconds() - b.all) / seconds;
      return { receiverCpu: receiverPid ? receiver : undefined, pgCpu: pg, clientCpu: client, machineCpu: machine, otherCpu: machine - receiver - (pg ?? 0) - client };
    },
  };
}
