// Policy evaluation on ingest, off the acknowledgement path (SPEC §5.1, §8.1). Ingest hands each
// request's committed spans to `enqueue` (synchronous, O(1), never throws): the request's 200 never
// waits for evaluation, and evaluation can never lose or delay a span. A bounded queue feeds one
// worker thread (cel-thread.ts) with a time limit per evaluation; when the queue is full the spans
// are counted and skipped. Outcomes are recorded by evaluations.ts. Evaluation is at most once: a
// receiver that stops drops what is still queued (the spans themselves are stored).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SpanRow, TypedValue } from '../ingest/normalize.js';
import { compileExpression, type SpanInput } from './cel.js';
import { readKeys, type ReadKeys } from './cel-fast.js';
import { CelRunner, type EvalHit, type PolicyInput, type RunnerOptions } from './cel-thread.js';
import type { GovernanceDeps } from './change.js';
import { recordOutcomes, type EvaluatedSpan, type PolicyFailure, type PolicyMatch } from './evaluations.js';
import { enabledPolicies, type LoadedPolicy } from './policies.js';

export interface EvaluatorOptions extends RunnerOptions {
  /** Spans waiting for evaluation, at most (default 20 000); beyond, spans are skipped and counted. */
  maxQueuedSpans: number;
  /** Spans per evaluation batch (default 500). */
  batchSpans: number;
  /** How long a project's policy list is reused before it is read again (default 2 s). */
  policyCacheMs: number;
}

export const DEFAULT_EVALUATOR_OPTIONS: EvaluatorOptions = {
  maxQueuedSpans: 20_000, batchSpans: 500, policyCacheMs: 2000, softLimitMs: 100, hardLimitMs: 1000, idleMs: 60_000,
};

function evaluatorMetrics(registry: Registry) {
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  return {
    evaluations: get('strathon_policy_evaluations_total', () => new Counter({ name: 'strathon_policy_evaluations_total', help: 'Policy evaluations on ingested spans that matched or failed, by outcome', labelNames: ['outcome'], registers })),
    skipped: get('strathon_policy_evaluation_skipped_spans_total', () => new Counter({ name: 'strathon_policy_evaluation_skipped_spans_total', help: 'Committed spans not evaluated against policies, by reason', labelNames: ['reason'], registers })),
    enqueued: get('strathon_policy_evaluation_enqueued_spans_total', () => new Counter({ name: 'strathon_policy_evaluation_enqueued_spans_total', help: 'Committed spans handed to policy evaluation (projects with enabled policies only)', registers })),
    queued: get('strathon_policy_evaluation_queue_spans', () => new Gauge({ name: 'strathon_policy_evaluation_queue_spans', help: 'Committed spans waiting for policy evaluation', registers })),
  };
}

const readKeysCache = new Map<string, ReadKeys>();
const ALL: ReadKeys = { attrs: 'all', resource: 'all' };

/** The attribute and resource keys an expression can read (all of them when it does not compile here). */
function keysOf(expression: string): ReadKeys {
  let keys = readKeysCache.get(expression);
  if (!keys) {
    try {
      keys = readKeys(compileExpression(expression).ast);
    } catch {
      keys = ALL;
    }
    if (readKeysCache.size >= 1000) readKeysCache.clear();
    readKeysCache.set(expression, keys);
  }
  return keys;
}

type KeyList = string[] | 'all';

/** The union of what a batch's expressions read. */
export function batchKeys(expressions: string[]): { attrs: KeyList; resource: KeyList } {
  const attrs = new Set<string>();
  const resource = new Set<string>();
  let allAttrs = false;
  let allResource = false;
  for (const e of expressions) {
    const k = keysOf(e);
    if (k.attrs === 'all') allAttrs = true;
    else for (const x of k.attrs) attrs.add(x);
    if (k.resource === 'all') allResource = true;
    else for (const x of k.resource) resource.add(x);
  }
  return { attrs: allAttrs ? 'all' : [...attrs], resource: allResource ? 'all' : [...resource] };
}

function pick(map: Record<string, TypedValue>, keys: KeyList): Record<string, TypedValue> {
  if (keys === 'all') return map;
  const out: Record<string, TypedValue> = {};
  for (const k of keys) if (Object.hasOwn(map, k)) out[k] = map[k] as TypedValue;
  return out;
}

/**
 * What crosses to the thread of a span (ingest's SpanRow has more): the span facts, and only the
 * attributes the batch's expressions read.
 */
export function threadInput(s: SpanInput, keys: { attrs: KeyList; resource: KeyList }): SpanInput {
  return {
    trace_id: s.trace_id, span_id: s.span_id, name: s.name, kind: s.kind, start_ns: s.start_ns, end_ns: s.end_ns,
    status_code: s.status_code, status_message: s.status_message,
    attributes: pick(s.attributes, keys.attrs), resource_attributes: pick(s.resource_attributes, keys.resource),
    service_name: s.service_name, agent_name: s.agent_name, model: s.model, tool_name: s.tool_name, operation_name: s.operation_name,
    input_tokens: s.input_tokens, output_tokens: s.output_tokens, cost_usd: s.cost_usd, is_llm: s.is_llm, is_tool: s.is_tool,
  };
}

const evaluated = (s: SpanInput): EvaluatedSpan => ({ trace_id: s.trace_id, span_id: s.span_id, name: s.name, start_ns: s.start_ns, agent_name: s.agent_name, tool_name: s.tool_name });

export interface BatchOutcome { matches: PolicyMatch[]; failures: PolicyFailure[] }

/** Thread hits → matches and one failure record per policy (first failing span, and how many failed). */
export function collectHits(policies: LoadedPolicy[], spans: SpanInput[], hits: EvalHit[], stalled: { p: number; s: number }[], hardLimitMs: number): BatchOutcome {
  const matches: PolicyMatch[] = [];
  const failures = new Map<number, PolicyFailure>();
  const fail = (p: number, s: number, message: string) => {
    const policy = policies[p];
    const span = spans[s] ?? spans[0];
    if (!policy || !span) return;
    const f = failures.get(p);
    if (f) f.count++;
    else failures.set(p, { policy, span: evaluated(span), message, count: 1 });
  };
  for (const h of hits) {
    const policy = policies[h.p];
    const span = spans[h.s];
    if (!policy || !span) continue;
    if (h.kind === 'match') matches.push({ policy, span: evaluated(span) });
    else fail(h.p, h.s, h.message ?? 'evaluation failed');
  }
  for (const st of stalled) fail(st.p, st.s, `evaluation exceeded the time limit (${hardLimitMs} ms) and was stopped`);
  return { matches, failures: [...failures.values()] };
}

interface Item { projectId: string; spans: SpanRow[] }

export class PolicyEvaluator {
  private readonly queue: Item[] = [];
  private queuedSpans = 0;
  private draining = false;
  /** Evaluation batches run one at a time: the background drain and simulations share the thread. */
  private lane: Promise<unknown> = Promise.resolve();
  private readonly runner: CelRunner;
  private readonly cache = new Map<string, { at: number; policies: Promise<LoadedPolicy[]> }>();
  /** Whether each project had enabled policies at its last successful read (the synchronous view of `cache`). */
  private readonly hasPolicies = new Map<string, boolean>();
  private readonly metrics;
  private readonly opts: EvaluatorOptions;
  private lastSkipLog = 0;
  private lastErrorLog = 0;
  private closed = false;

  constructor(private readonly deps: GovernanceDeps & { registry: Registry }, opts: Partial<EvaluatorOptions> = {}) {
    this.opts = { ...DEFAULT_EVALUATOR_OPTIONS, ...opts };
    this.runner = new CelRunner(this.opts);
    this.metrics = evaluatorMetrics(deps.registry);
  }

  /**
   * Whether ingest should keep a request's spans for evaluation (synchronous, called per request):
   * false when the project's last policy read found none enabled. A read older than policyCacheMs
   * is refreshed in the background (its answer holds meanwhile, a few ms); an unknown project, or
   * one invalidated by a change here, answers true. So a policy created on any replica applies
   * within the cache window, and ingest does not hold rows nobody will evaluate.
   */
  wantsSpans(projectId: string): boolean {
    if (this.closed) return false;
    const cached = this.cache.get(projectId);
    if (!cached || Date.now() - cached.at >= this.opts.policyCacheMs) void this.policiesOf(projectId).catch(() => undefined);
    return this.hasPolicies.get(projectId) ?? true;
  }

  /** Hand over committed spans. Never blocks, never throws: when the queue is full they are skipped. */
  enqueue(projectId: string, spans: SpanRow[]): void {
    if (this.closed || spans.length === 0) return;
    if (this.queuedSpans + spans.length > this.opts.maxQueuedSpans) {
      this.metrics.skipped.inc({ reason: 'queue_full' }, spans.length);
      if (Date.now() - this.lastSkipLog > 60_000) {
        this.lastSkipLog = Date.now();
        this.deps.log.warn({ project_id: projectId, span_count: spans.length, queued_spans: this.queuedSpans }, 'policy evaluation queue full: spans stored but not evaluated');
      }
      return;
    }
    this.queue.push({ projectId, spans });
    this.queuedSpans += spans.length;
    this.metrics.enqueued.inc(spans.length);
    this.metrics.queued.set(this.queuedSpans);
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  /** Forget a project's cached policy list (after a change on this replica). */
  invalidate(projectId: string): void {
    this.cache.delete(projectId);
    this.hasPolicies.delete(projectId);
  }

  /** Resolves when everything queued so far has been evaluated and recorded (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining || this.queue.length) await new Promise((r) => setTimeout(r, 10));
    await this.lane;
  }

  /** Shutdown: stop taking spans, evaluate and record what is queued for up to `timeoutMs`, then close. */
  async drainAndClose(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); });
    const gaveUp = await Promise.race([this.idle().then(() => false), timedOut]);
    clearTimeout(timer);
    if (gaveUp && this.queuedSpans) {
      this.deps.log.warn({ queued_spans: this.queuedSpans }, 'shutting down: spans stored but not evaluated against policies (time limit)');
      this.metrics.skipped.inc({ reason: 'shutdown' }, this.queuedSpans);
    }
    await this.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    this.queuedSpans = 0;
    await this.lane.catch(() => undefined);
    await this.runner.close();
  }

  /** Evaluate expressions on spans outside ingest (POST /v1/policies/simulate): same thread, same limits. */
  async evaluate(policies: PolicyInput[], spans: SpanInput[]): Promise<{ hits: EvalHit[]; stalled: { p: number; s: number }[] }> {
    const run = this.lane.then(() => this.runner.run(policies, spans, Date.now()));
    this.lane = run.catch(() => undefined);
    return run;
  }

  get hardLimitMs(): number {
    return this.opts.hardLimitMs;
  }

  private policiesOf(projectId: string): Promise<LoadedPolicy[]> {
    const hit = this.cache.get(projectId);
    if (hit && Date.now() - hit.at < this.opts.policyCacheMs) return hit.policies;
    const policies = enabledPolicies(this.deps.pool, projectId);
    if (this.cache.size > 10_000) {
      this.cache.clear();
      this.hasPolicies.clear();
    }
    const entry = { at: Date.now(), policies };
    this.cache.set(projectId, entry);
    // Only the entry still cached may set the flag: an invalidate() since this read began wins.
    policies.then((list) => { if (this.cache.get(projectId) === entry) this.hasPolicies.set(projectId, list.length > 0); }, () => {
      this.cache.delete(projectId);
      this.hasPolicies.delete(projectId);
    });
    return policies;
  }

  /** Next batch: consecutive queued items of one project, up to batchSpans spans. */
  private take(): { projectId: string; spans: SpanRow[] } | undefined {
    const first = this.queue[0];
    if (!first) return undefined;
    if (first.spans.length > this.opts.batchSpans) {
      const spans = first.spans.slice(0, this.opts.batchSpans);
      first.spans = first.spans.slice(this.opts.batchSpans);
      this.queuedSpans -= spans.length;
      return { projectId: first.projectId, spans };
    }
    const spans: SpanRow[] = [];
    while (this.queue[0] && this.queue[0].projectId === first.projectId && spans.length + this.queue[0].spans.length <= this.opts.batchSpans) {
      const item = this.queue.shift() as Item;
      spans.push(...item.spans);
      this.queuedSpans -= item.spans.length;
    }
    return { projectId: first.projectId, spans };
  }

  private async drain(): Promise<void> {
    try {
      for (let batch = this.take(); batch && !this.closed; batch = this.take()) {
        this.metrics.queued.set(this.queuedSpans);
        const b = batch;
        const done = this.lane.then(() => this.process(b.projectId, b.spans));
        this.lane = done.catch(() => undefined);
        await done.catch((err: unknown) => this.report(err, b.projectId, b.spans.length));
      }
    } finally {
      this.draining = false;
      this.metrics.queued.set(this.queuedSpans);
      // Spans enqueued while the last batch was recorded.
      if (this.queue.length && !this.closed) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    }
  }

  private report(err: unknown, projectId: string, spanCount: number): void {
    this.metrics.skipped.inc({ reason: 'error' }, spanCount);
    // After shutdown began the pool is closed: nothing is wrong with the spans, they are stored.
    if ((this.deps.pool as { ending?: boolean }).ending || this.closed) return;
    // One line per 10 s at most: during a database outage every batch fails the same way.
    if (Date.now() - this.lastErrorLog < 10_000) return;
    this.lastErrorLog = Date.now();
    this.deps.log.warn({ err, project_id: projectId, span_count: spanCount }, 'policy evaluation of committed spans failed; the spans are stored');
  }

  private async process(projectId: string, rows: SpanRow[]): Promise<void> {
    const policies = await this.policiesOf(projectId);
    if (!policies.length) return;
    const inputs: PolicyInput[] = policies.map((p) => ({ expression: p.match_expression, agents: p.applies_to.length ? p.applies_to : null }));
    const keys = batchKeys(inputs.map((p) => p.expression));
    const { hits, stalled } = await this.runner.run(inputs, rows.map((s) => threadInput(s, keys)), Date.now());
    const outcome = collectHits(policies, rows, hits, stalled, this.opts.hardLimitMs);
    const recorded = await recordOutcomes(this.deps, projectId, outcome.matches, outcome.failures);
    if (recorded.matches) this.metrics.evaluations.inc({ outcome: 'match' }, recorded.matches);
    if (recorded.errors) this.metrics.evaluations.inc({ outcome: 'error' }, recorded.errors);
    for (const f of outcome.failures) {
      this.deps.log.warn({ project_id: projectId, policy_id: f.policy.id, failures: f.count, err: f.message }, 'policy evaluation failed');
    }
    if (recorded.halts) this.deps.log.info({ project_id: projectId, halts: recorded.halts }, 'halt policy matched: agent halted');
  }
}
