// LISTEN/NOTIFY wake-ups of webhook_sweeper_task (SPEC §9, §11): emitEvent NOTIFYs at commit, and
// every receiver keeps one connection LISTENing, so a new delivery goes out at once instead of at
// the next sweep; the sweep interval stays the safety net for anything missed.
import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Workers } from '../workers/framework.js';
import { NOTIFY_CHANNEL } from './outbox.js';
import { WEBHOOK_SWEEPER_TASK } from './sweeper.js';

/**
 * LISTEN strathon_webhooks on one dedicated connection and run a sweeper tick at once on every
 * notification (coalesced: at most one extra tick queued). Reconnects with backoff after an error,
 * and sweeps after each (re)connect for what was missed meanwhile; the interval is the safety net.
 */
export function webhookWakeups(deps: { pool: pg.Pool; log: Logger }, wake: () => Promise<unknown>) {
  // Its own client, with the pool's connection settings: it takes no pool slot, and ending the
  // pool never waits for it.
  let client: pg.Client | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryMs = 500;
  let running: Promise<unknown> | undefined;
  let again = false;

  const tick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = wake().catch((err: unknown) => deps.log.debug({ err: (err as Error).message }, 'webhook wake-up tick not run'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          tick();
        }
      });
  };

  const onNotification = (n: pg.Notification) => { if (n.channel === NOTIFY_CHANNEL) tick(); };

  const drop = () => {
    const c = client;
    client = undefined;
    if (!c) return;
    c.off('notification', onNotification);
    // Its 'error' listener stays: a dying socket may still report (ignored once it is not `client`).
    void c.end().catch(() => undefined);
  };

  const connect = async () => {
    retryTimer = undefined;
    if (stopped) return;
    const c = new pg.Client({ ...deps.pool.options, application_name: 'strathon-webhooks-listen' });
    client = c;
    c.on('notification', onNotification);
    try {
      c.on('error', (err: Error) => {
        if (client !== c) return;
        deps.log.warn({ err: err.message }, `LISTEN ${NOTIFY_CHANNEL} connection lost: reconnecting`);
        drop();
        scheduleReconnect();
      });
      await c.connect();
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
      if (client !== c) return; // closed meanwhile
      retryMs = 500;
      tick();
    } catch (err) {
      if (client !== c) return;
      drop();
      if (!stopped) deps.log.warn({ err: (err as Error).message, retry_in_ms: retryMs }, `could not LISTEN ${NOTIFY_CHANNEL}: retrying`);
      scheduleReconnect();
    }
  };

  const scheduleReconnect = () => {
    if (stopped || retryTimer) return;
    retryTimer = setTimeout(() => void connect(), retryMs);
    retryTimer.unref();
    retryMs = Math.min(retryMs * 2, 30_000);
  };

  return {
    start() { void connect(); },
    close() {
      stopped = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      drop();
    },
    /** For tests: whether the LISTEN connection is up. */
    get listening() { return client !== undefined; },
  };
}

/** `workers` whose start() also LISTENs for new deliveries and whose stop() closes that connection. */
export function withWebhookWakeups(deps: { pool: pg.Pool; log: Logger }, workers: Workers): Workers {
  const wakeups = webhookWakeups(deps, () => workers.runOnce(WEBHOOK_SWEEPER_TASK));
  let started = false;
  return {
    ...workers,
    replicaId: workers.replicaId,
    start() {
      workers.start();
      if (started || !workers.state(WEBHOOK_SWEEPER_TASK)?.enabled) return;
      started = true;
      wakeups.start();
    },
    stop(timeoutMs: number) {
      wakeups.close();
      return workers.stop(timeoutMs);
    },
  };
}
