// In-memory cache invalidation (API keys, intervention sync state): triggers of migration
// 1764000015000 NOTIFY strathon_invalidate on every committed change, and every receiver LISTENs
// on one dedicated connection. While that connection is down nothing may be cached: `listening` is
// false, and every subscriber is told 'all' when it goes down and again when it is back.
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export const INVALIDATE_CHANNEL = 'strathon_invalidate';

export type Invalidation = { kind: 'key' | 'project' | 'sync'; id: string } | { kind: 'all' };
type Handler = (inv: Invalidation) => void;

// The triggers this relies on (a schema behind head has none: then the cache stays off).
const TRIGGERS = [
  'api_keys_invalidate', 'api_keys_invalidate_truncate', 'projects_invalidate', 'projects_invalidate_truncate',
  'halts_invalidate', 'halts_invalidate_truncate', 'approvals_invalidate', 'approvals_invalidate_truncate',
  'budgets_invalidate', 'budgets_invalidate_update', 'budgets_invalidate_truncate',
];

const inProcess = new Set<Handler>();

/**
 * Drop an entry in every cache of this process at once, after a change this process committed:
 * its NOTIFY may arrive after the client's next request.
 */
export function invalidateLocally(inv: Invalidation): void {
  for (const h of inProcess) h(inv);
}

export function parseInvalidation(payload: string | undefined): Invalidation {
  const m = /^(key|project|sync):(.+)$/.exec(payload ?? '');
  return m ? { kind: m[1] as 'key' | 'project' | 'sync', id: m[2] as string } : { kind: 'all' };
}

export class InvalidationListener {
  private readonly handlers = new Set<Handler>();
  private client: pg.Client | undefined;
  private up = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = 250;
  private backendPid: number | undefined;
  private readonly dispatch = (inv: Invalidation) => { for (const h of this.handlers) h(inv); };

  constructor(private readonly config: pg.ClientConfig, private readonly log: Logger) {}

  /** True only while LISTENing on a schema that has the triggers: caches may serve entries. */
  get listening(): boolean { return this.up; }

  /** The LISTEN connection's backend pid (tests terminate it). */
  get pid(): number | undefined { return this.up ? this.backendPid : undefined; }

  subscribe(h: Handler): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }

  start(): void {
    if (this.stopped || this.client || this.retryTimer) return;
    inProcess.add(this.dispatch);
    void this.connect();
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    inProcess.delete(this.dispatch);
    this.drop();
  }

  private setUp(up: boolean) {
    if (this.up === up) return;
    this.up = up;
    this.dispatch({ kind: 'all' });
  }

  private readonly onNotification = (n: pg.Notification) => {
    if (n.channel === INVALIDATE_CHANNEL) this.dispatch(parseInvalidation(n.payload));
  };

  private drop() {
    const c = this.client;
    this.client = undefined;
    this.setUp(false);
    if (!c) return;
    c.off('notification', this.onNotification);
    // Its 'error' listener stays: a dying socket may still report (ignored once it is not `client`).
    void c.end().catch(() => undefined);
  }

  private lost(c: pg.Client, err: Error | undefined) {
    if (this.client !== c) return;
    this.log.warn({ err: err?.message ?? 'connection ended' }, `LISTEN ${INVALIDATE_CHANNEL} connection lost: caches off, reconnecting`);
    this.drop();
    this.scheduleReconnect();
  }

  private async connect() {
    this.retryTimer = undefined;
    if (this.stopped) return;
    const c = new pg.Client({ ...this.config, application_name: 'strathon-invalidate-listen' });
    this.client = c;
    c.on('error', (err: Error) => this.lost(c, err));
    c.on('end', () => this.lost(c, undefined));
    c.on('notification', this.onNotification);
    try {
      await c.connect();
      // It never keeps the process alive: close() ends it, and a plain exit needs no goodbye.
      (c as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
      await c.query(`LISTEN ${INVALIDATE_CHANNEL}`);
      const r = await c.query<{ n: number; pid: number }>(
        'SELECT (SELECT count(*)::int FROM pg_trigger WHERE tgname = ANY ($1)) AS n, pg_backend_pid() AS pid', [TRIGGERS]);
      if (this.client !== c) return; // closed meanwhile
      if (r.rows[0]?.n !== TRIGGERS.length) throw new Error('invalidation triggers missing (schema not at head)');
      this.backendPid = r.rows[0].pid;
      this.retryMs = 250;
      this.setUp(true);
    } catch (err) {
      if (this.client !== c) return;
      this.drop();
      if (!this.stopped) this.log.warn({ err: (err as Error).message, retry_in_ms: this.retryMs }, `could not LISTEN ${INVALIDATE_CHANNEL}: caches off, retrying`);
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect() {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
  }
}

/**
 * A bounded map of what this process read from Postgres, served only while `listener` is LISTENing
 * (none → nothing is ever kept) and for at most `ttlMs` after it was read. A value is kept only if
 * nothing was invalidated between `token()` (taken before the read) and `set()`: a change committed
 * after the read began NOTIFYs after it, so a value that raced one is never kept.
 */
export class ListenedCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private generation = 0;

  constructor(private readonly listener: InvalidationListener | undefined, private readonly ttlMs: number, private readonly maxEntries: number) {}

  get size(): number { return this.entries.size; }

  get(key: string): V | undefined {
    if (!this.listener?.listening) return undefined;
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at < this.ttlMs) return e.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Take before reading what will be `set` (-1 while not listening: nothing will be kept). */
  token(): number {
    return this.listener?.listening ? this.generation : -1;
  }

  /** Keep `value`, read at `at` (default now), unless something was invalidated since `token`. */
  set(key: string, value: V, token: number, at = Date.now()): void {
    if (token !== this.generation || !this.listener?.listening) return;
    if (this.entries.size >= this.maxEntries && !this.entries.has(key)) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, at });
  }

  /** Drop the entries `which` names (every entry without one); values being read are not kept. */
  invalidate(which?: (key: string, value: V) => boolean): void {
    this.generation++;
    if (!which) {
      this.entries.clear();
      return;
    }
    for (const [k, e] of this.entries) if (which(k, e.value)) this.entries.delete(k);
  }
}
