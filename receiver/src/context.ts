// What a receiver's parts share: built once in receiver.ts, passed down (never imported upward).
import type pg from 'pg';
import type { Config } from './config.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { IngestDeps } from './ingest/ingest.js';
import type { ApiKeyAuthenticator } from './auth/keys.js';
import type { RateLimiter } from './auth/ratelimit.js';

export interface ReceiverContext {
  config: Config;
  pool: pg.Pool;
  log: Logger;
  metrics: Metrics;
  ingest: IngestDeps;
  keys: ApiKeyAuthenticator;
  limiter: RateLimiter;
}
