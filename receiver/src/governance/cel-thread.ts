// Policy evaluation off the event loop: a worker thread evaluates batches of (policy × span) and
// the main thread enforces the time limit. A CEL expression cannot loop, but a regular expression
// can backtrack for minutes, and a synchronous evaluation cannot be interrupted from inside; so
// the thread reports its progress through shared memory and the main thread terminates it when one
// evaluation stalls (CelRunner), then re-runs the batch without the policy that stalled.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { activationFor, compileExpression, evaluateProgram, type Activation, type Outcome, type Program, type SpanInput } from './cel.js';
import { compileFast, FALLBACK, type FastContext, type FastProgram } from './cel-fast.js';

export interface PolicyInput { expression: string; /** Agent names the policy applies to; null = every agent. */ agents: string[] | null }

interface EvalRequest {
  type: 'eval'; id: number; policies: PolicyInput[]; spans: SpanInput[]; nowMs: number;
  /** An evaluation that completes but takes longer than this is an error, and its policy is skipped for the rest of the batch. */
  softLimitMs: number;
  exclude: number[];
}

/** A match or an error of policy `p` on span `s` (non-matches are not reported). */
export interface EvalHit { p: number; s: number; kind: 'match' | 'error'; message?: string }

type Reply = { type: 'ready' } | { type: 'result'; id: number; hits: EvalHit[] };

/**
 * `timed`: whether the closures can take long (a regex); their other operations are linear in the span's
 * strings. An evaluation by cel-js is always timed.
 */
interface Compiled { program: Program; fast: FastProgram | null; timed: boolean }

const MATCH: Outcome = { kind: 'match' };
const NO_MATCH: Outcome = { kind: 'no_match' };
const DIGITS = /^-?\d+$/;

/** Whether activationFor certainly succeeds on the span's scalar fields (otherwise it is tried). */
function preparable(s: SpanInput): boolean {
  const int = (v: unknown) => (typeof v === 'string' ? DIGITS.test(v) : Number.isSafeInteger(v));
  return typeof s.start_ns === 'string' && DIGITS.test(s.start_ns) && typeof s.end_ns === 'string' && DIGITS.test(s.end_ns)
    && (s.input_tokens === null || int(s.input_tokens)) && (s.output_tokens === null || int(s.output_tokens));
}

// Progress words in shared memory: [evaluations started, policy index, span index].
const SEQ = 0;
const POLICY = 1;
const SPAN = 2;

// ---- inside the thread --------------------------------------------------------------------------

function runInThread(progress: Int32Array, port: NonNullable<typeof parentPort>): void {
  // A missing attribute (attrs["gen_ai.tool.name"] on an LLM span) is a thrown no_such_key, the common
  // non-match: without stack capture a throw costs a fraction; messages, all the thread reports, are kept.
  Error.stackTraceLimit = 0;
  const programs = new Map<string, Compiled | Error>();
  const compiled = (expression: string): Compiled | Error => {
    let p = programs.get(expression);
    if (!p) {
      try {
        const program = compileExpression(expression);
        const fast = compileFast(program.ast);
        p = { program, fast, timed: expression.includes('matches') };
      } catch (err) {
        p = err as Error;
      }
      if (programs.size >= 1000) programs.clear();
      programs.set(expression, p);
    }
    return p;
  };

  const step = (p: number, s: number) => {
    Atomics.store(progress, POLICY, p);
    Atomics.store(progress, SPAN, s);
    Atomics.add(progress, SEQ, 1);
  };
  // Within a span (step(-1, s) stored its index): a plain store, published by the atomic add.
  const evaluating = (p: number) => {
    progress[POLICY] = p;
    Atomics.add(progress, SEQ, 1);
  };

  port.on('message', (req: EvalRequest) => {
    const hits: EvalHit[] = [];
    const skip = new Set(req.exclude);
    const progs = req.policies.map((p, i) => {
      step(i, 0);
      const prog = compiled(p.expression);
      if (prog instanceof Error && !skip.has(i)) {
        hits.push({ p: i, s: 0, kind: 'error', message: `match_expression does not compile: ${prog.message.split('\n')[0]}` });
        skip.add(i);
      }
      return prog;
    });
    const agentSets = req.policies.map((p) => (p.agents && p.agents.length ? new Set(p.agents) : null));
    const now = new Date(req.nowMs);
    for (let s = 0; s < req.spans.length; s++) {
      const span = req.spans[s] as SpanInput;
      step(-1, s);
      // The activation is built only for an expression the closures leave to cel-js; a span whose
      // activation would fail is an error for every policy, as before.
      let activation: Activation | undefined;
      let failed: string | undefined;
      const activate = (): Activation | undefined => {
        if (activation || failed !== undefined) return activation;
        try {
          activation = activationFor(span, now);
        } catch (err) {
          failed = `span could not be prepared: ${(err as Error).message}`;
        }
        return activation;
      };
      if (!preparable(span) && !activate()) {
        for (let p = 0; p < progs.length; p++) if (!skip.has(p)) hits.push({ p, s, kind: 'error', message: failed as string });
        continue;
      }
      const ctx: FastContext = { s: span, now };
      for (let p = 0; p < progs.length; p++) {
        const prog = progs[p];
        if (skip.has(p) || !prog || prog instanceof Error) continue;
        const agents = agentSets[p];
        if (agents && (span.agent_name === null || !agents.has(span.agent_name))) continue;
        evaluating(p);
        let t0 = prog.timed ? performance.now() : -1;
        let outcome: Outcome;
        const fast = prog.fast ? prog.fast(ctx) : FALLBACK;
        if (fast === true) outcome = MATCH;
        else if (fast === false) outcome = NO_MATCH;
        else {
          if (t0 < 0) t0 = performance.now();
          const act = activate();
          outcome = act ? evaluateProgram(prog.program, act) : { kind: 'error', message: failed as string };
        }
        const ms = t0 < 0 ? 0 : performance.now() - t0;
        if (ms > req.softLimitMs) {
          hits.push({ p, s, kind: 'error', message: `evaluation took ${Math.round(ms)} ms, over the ${req.softLimitMs} ms limit` });
          skip.add(p);
        } else if (outcome.kind === 'match') {
          hits.push({ p, s, kind: 'match' });
        } else if (outcome.kind === 'error') {
          hits.push({ p, s, kind: 'error', message: outcome.message });
        }
      }
    }
    step(-1, -1);
    port.postMessage({ type: 'result', id: req.id, hits } satisfies Reply);
  });
  port.postMessage({ type: 'ready' } satisfies Reply);
}

if (!isMainThread && parentPort && (workerData as { strathonCelThread?: unknown } | null)?.strathonCelThread === true) {
  runInThread(new Int32Array((workerData as { progress: SharedArrayBuffer }).progress), parentPort);
}

// ---- in the main thread -------------------------------------------------------------------------

function spawn(progress: SharedArrayBuffer): Worker {
  const url = import.meta.url;
  const data = { strathonCelThread: true, progress };
  const resourceLimits = { maxOldGenerationSizeMb: 256 };
  if (url.endsWith('.ts')) {
    // Running from source under tsx (tests): a worker does not inherit tsx's loader, so it registers it.
    return new Worker(`import('tsx/esm/api').then((m) => m.register()).then(() => import(${JSON.stringify(url)}))`, { eval: true, workerData: data, resourceLimits });
  }
  return new Worker(new URL(url), { workerData: data, resourceLimits });
}

export interface RunnerOptions {
  /** A completed evaluation slower than this is an error (default 100 ms). */
  softLimitMs: number;
  /** An evaluation still running after this long gets the thread terminated (default 1000 ms). */
  hardLimitMs: number;
  /** The idle thread is stopped after this long (default 60 s); the next batch starts a new one. */
  idleMs: number;
}

export interface RunResult {
  hits: EvalHit[];
  /** Policies stopped by the hard limit: (policy, span) where the evaluation stalled. */
  stalled: { p: number; s: number }[];
}

type Once = { kind: 'done'; hits: EvalHit[] } | { kind: 'stalled'; p: number; s: number };

/**
 * Runs evaluation batches on one worker thread, one batch at a time (callers serialize). The thread
 * is started on first use, never keeps the process alive, and is replaced after a stall or a crash.
 */
export class CelRunner {
  private worker: Worker | undefined;
  private ready: Promise<Worker> | undefined;
  private readonly progress = new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
  private readonly view = new Int32Array(this.progress);
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: RunnerOptions = { softLimitMs: 100, hardLimitMs: 1000, idleMs: 60_000 }) {}

  async run(policies: PolicyInput[], spans: SpanInput[], nowMs: number): Promise<RunResult> {
    clearTimeout(this.idleTimer);
    const exclude: number[] = [];
    const stalled: { p: number; s: number }[] = [];
    try {
      for (;;) {
        if (exclude.length >= policies.length) return { hits: [], stalled };
        const r = await this.once({ type: 'eval', id: ++this.nextId, policies, spans, nowMs, softLimitMs: this.opts.softLimitMs, exclude });
        if (r.kind === 'done') return { hits: r.hits, stalled };
        if (r.p < 0 || exclude.includes(r.p)) throw new Error('the policy evaluator thread stalled outside an evaluation');
        stalled.push({ p: r.p, s: Math.max(0, r.s) });
        exclude.push(r.p);
      }
    } finally {
      if (!this.closed) {
        this.idleTimer = setTimeout(() => void this.stopThread(), this.opts.idleMs);
        this.idleTimer.unref();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    await this.stopThread();
  }

  private async stopThread(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w) await w.terminate().catch(() => undefined);
  }

  private thread(): Promise<Worker> {
    if (this.closed) return Promise.reject(new Error('policy evaluator is closed'));
    this.ready ??= new Promise<Worker>((resolve, reject) => {
      const w = spawn(this.progress);
      w.unref();
      this.worker = w;
      const fail = (err: Error) => {
        if (this.worker === w) { this.worker = undefined; this.ready = undefined; }
        reject(err);
      };
      w.once('error', fail);
      w.once('exit', (code) => fail(new Error(`policy evaluator thread exited with code ${code} before it was ready`)));
      w.once('message', (m: Reply) => {
        w.removeAllListeners('error');
        w.removeAllListeners('exit');
        // Later crashes are reported to the batch in flight (once()); here they only forget the thread.
        w.on('error', () => undefined);
        w.on('exit', () => { if (this.worker === w) { this.worker = undefined; this.ready = undefined; } });
        if (m.type === 'ready') resolve(w);
        else fail(new Error('policy evaluator thread did not start'));
      });
    });
    return this.ready;
  }

  private async once(req: EvalRequest): Promise<Once> {
    const w = await this.thread();
    return new Promise<Once>((resolve, reject) => {
      let last = Atomics.load(this.view, SEQ);
      const cleanup = () => {
        clearInterval(watchdog);
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
      };
      // Progress moves at the start of every evaluation: no movement for a whole period means one
      // evaluation has been running for at least that long.
      const watchdog = setInterval(() => {
        const seq = Atomics.load(this.view, SEQ);
        if (seq !== last) {
          last = seq;
          return;
        }
        const p = Atomics.load(this.view, POLICY);
        const s = Atomics.load(this.view, SPAN);
        cleanup();
        void this.stopThread();
        resolve({ kind: 'stalled', p, s });
      }, this.opts.hardLimitMs);
      const onMessage = (m: Reply) => {
        if (m.type !== 'result' || m.id !== req.id) return;
        cleanup();
        resolve({ kind: 'done', hits: m.hits });
      };
      const onError = (err: Error) => {
        cleanup();
        void this.stopThread();
        reject(new Error(`policy evaluator thread failed: ${err.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`policy evaluator thread exited with code ${code}`));
      };
      w.on('message', onMessage);
      w.once('error', onError);
      w.once('exit', onExit);
      w.postMessage(req);
    });
  }
}
