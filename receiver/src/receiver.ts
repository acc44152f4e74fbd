// Boot (SPEC §3 steps 2–6) and graceful shutdown, as a function so tests can run many receivers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request } from 'express';
import type pg from 'pg';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createPool, redactUrl, waitForDatabase } from './db/pool.js';
import { createDb } from './db/db.js';
import { startEmbeddedPostgres, type EmbeddedHandle } from './db/embedded.js';
import { migrationStatus, runMigrations } from './db/migrate.js';
import { ensurePartitions } from './db/partitions.js';
import { createIngest, type IngestDeps } from './ingest/ingest.js';
import { ApiKeyAuthenticator, seedDevKey } from './auth/keys.js';
import { InvalidationListener } from './auth/invalidation.js';
import { SyncSnapshots } from './governance/sync.js';
import { RateLimiter } from './auth/ratelimit.js';
import { Authenticator } from './auth/authenticate.js';
import { clientIp } from './auth/client-ip.js';
import { buildApp } from './api/app.js';
import { none, scope, type Route } from './api/routes.js';
import { otlpTracesHandler } from './api/otlp.js';
import { healthHandler, metricsHandler, readyHandler } from './api/health.js';
import { Unavailable } from './errors.js';
import type { ReceiverContext } from './context.js';
import { startGrpcServer, type GrpcServer } from './ingest/grpc.js';
import { queryRoutes } from './api/query.js';
import { workerRoutes } from './api/workers.js';
import { authRoutes } from './api/auth.js';
import { apiKeyRoutes } from './api/keys.js';
import { projectRoutes } from './api/projects.js';
import { webhookRoutes } from './api/webhooks.js';
import { auditRoutes } from './api/audit.js';
import { governanceRoutes } from './api/governance.js';
import { createWorkers, type Workers, type WorkerOptions } from './workers/workers.js';

export interface Receiver {
  url: string;
  port: number;
  /** The route table (for tests that walk every route). */
  routes: Route[];
  grpcPort: number | undefined;
  metricsUrl: string | undefined;
  workers: Workers;
  databaseUrl: string;
  pool: pg.Pool;
  metrics: Metrics;
  ingest: IngestDeps;
  close(): Promise<void>;
}

export async function startReceiver(config: Config, log: Logger, opts: { workers?: WorkerOptions } = {}): Promise<Receiver> {
  const startedAt = Date.now();
  let embedded: EmbeddedHandle | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, log });
    databaseUrl = embedded.url;
  }
  log.info({ database: redactUrl(databaseUrl), embedded: !!embedded }, 'connecting to Postgres');
  const pool = createPool(databaseUrl, { max: 20 });
  const healthPool = createPool(databaseUrl, { max: 2, applicationName: 'strathon-receiver-health' });
  const invalidation = new InvalidationListener(pool.options, log);
  const cleanupDb = async () => {
    invalidation.close();
    await Promise.allSettled([pool.end(), healthPool.end()]);
    if (embedded) await embedded.stop();
  };
  try {
    await waitForDatabase(pool, log);
    let schemaAtHead: boolean;
    if (config.autoMigrate) {
      const applied = await runMigrations(databaseUrl, log);
      if (applied.length) log.info({ applied }, 'migrations applied');
      schemaAtHead = true;
    } else {
      const s = await migrationStatus(pool);
      schemaAtHead = s.atHead;
      if (!schemaAtHead) log.warn({ pending: s.pending }, 'STRATHON_AUTO_MIGRATE=false and the schema is not at head: ingest answers 503 until `strathon-admin migrate up` is run');
    }
    if (schemaAtHead) await ensurePartitions(pool, config.partitionMonthsAhead);
    if (config.seedDevKey && schemaAtHead) await seedDevKey(pool);

    const metrics = createMetrics();
    const ingest = createIngest(pool, {
      samplingRate: config.samplingRate, maxQueueSpans: config.ingestQueueMaxSpans, maxQueueBytes: config.ingestQueueMaxBytes,
      maxBatchSpans: config.ingestBatchMaxSpans, writers: config.ingestWriters, metrics, log,
    });
    invalidation.start();
    const keys = new ApiKeyAuthenticator(pool, log, { invalidation });
    const limiter = new RateLimiter(config.rateLimitRps, config.rateLimitBurst, config.rateLimitEnabled);

    // With auto-migrate off, ingest stays closed until the schema reaches head (checked at most every 2 s).
    let lastSchemaCheck = 0;
    const schemaGate = async () => {
      if (schemaAtHead) return;
      if (Date.now() - lastSchemaCheck > 2000) {
        lastSchemaCheck = Date.now();
        const s = await migrationStatus(pool).catch(() => undefined);
        if (s?.atHead) {
          await ensurePartitions(pool, config.partitionMonthsAhead);
          schemaAtHead = true;
          log.info('schema is at head: ingest enabled');
          return;
        }
      }
      throw new Unavailable('database schema is not at head; run `strathon-admin migrate up` (STRATHON_AUTO_MIGRATE=false)', 10);
    };

    const ctx: ReceiverContext = { config, pool, db: createDb(pool), log, metrics, ingest, keys, auth: new Authenticator(pool, keys, config.jwtSecret), limiter, sync: new SyncSnapshots(pool, invalidation), schemaGate };
    const workers = createWorkers(ctx, opts.workers);
    const metricsRoute = metricsHandler(metrics, pool);
    const routes: Route[] = [
      { method: 'GET', path: '/health', auth: none, body: 'none', handler: healthHandler(config.version, startedAt) },
      { method: 'GET', path: '/ready', auth: none, body: 'none', handler: readyHandler(healthPool, () => workers.checks(), () => ingest.writer.databaseDown) },
      ...(config.metricsListen ? [] : [{ method: 'GET' as const, path: '/metrics', auth: none, body: 'none' as const, handler: metricsRoute }]),
      {
        method: 'POST', path: '/v1/traces', auth: scope('traces:write'), body: 'raw',
        handler: otlpTracesHandler({ ingest, keys, limiter, maxBodyBytes: config.maxBodyBytes, log, clientIp: (req: Request) => clientIp(req, config.trustedProxies), schemaGate }),
      },
    ];
    routes.push(...queryRoutes(ctx), ...authRoutes(ctx), ...apiKeyRoutes(ctx), ...projectRoutes(ctx), ...webhookRoutes(ctx), ...auditRoutes(ctx), ...governanceRoutes(ctx), ...workerRoutes(ctx, workers));
    const app = buildApp(routes, { log, metrics, auth: ctx.auth, limiter, clientIp: (req: Request) => clientIp(req, config.trustedProxies) });
    const server = http.createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 65_000 }, app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;

    let grpc: GrpcServer | undefined;
    try {
      grpc = config.grpcEnabled ? await startGrpcServer(ctx) : undefined;
    } catch (err) {
      server.close();
      throw new Error(`OTLP/gRPC listener failed on ${config.host}:${config.grpcPort}: ${(err as Error).message}`);
    }
    workers.start();

    let metricsServer: http.Server | undefined;
    let metricsUrl: string | undefined;
    if (config.metricsListen) {
      const { host, port: mport } = config.metricsListen;
      metricsServer = http.createServer((req, res) => {
        if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
          void metricsRoute(req, res);
          return;
        }
        res.statusCode = 404;
        res.end('not found\n');
      });
      await new Promise<void>((resolve, reject) => {
        metricsServer?.once('error', reject);
        metricsServer?.listen(mport, host, () => resolve());
      });
      metricsUrl = `http://${host}:${(metricsServer.address() as AddressInfo).port}/metrics`;
    }

    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        const deadline = Date.now() + 9000;
        log.info('shutting down: no new connections, draining in-flight requests and the ingest queue');
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        metricsServer?.close();
        const grpcClosed = grpc?.close(Math.max(500, deadline - Date.now() - 2000));
        const workersStopped = workers.stop(Math.max(500, deadline - Date.now() - 2000));
        await ingest.writer.close(Math.max(1000, deadline - Date.now() - 1500));
        // Every answer is sent; the policy evaluation of what was committed last finishes (bounded).
        await ingest.afterCommitDrain?.(Math.max(200, deadline - Date.now() - 1200));
        await Promise.allSettled([grpcClosed, workersStopped]);
        // Every queued request has its answer now; keep-alive connections that went idle are closed.
        const idleCloser = setInterval(() => server.closeIdleConnections(), 50);
        await Promise.race([serverClosed, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now() - 1000)))]);
        clearInterval(idleCloser);
        server.closeAllConnections();
        await cleanupDb();
        log.info({ uptime_s: Math.round((Date.now() - startedAt) / 1000) }, 'stopped');
      })();
      return closing;
    };

    const url = `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${port}`;
    return { url, port, routes, grpcPort: grpc?.port, metricsUrl, databaseUrl, pool, metrics, ingest, workers, close };
  } catch (err) {
    await cleanupDb();
    throw err;
  }
}
