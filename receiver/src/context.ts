// What a receiver's parts share: built once in receiver.ts, passed down (never imported upward).
import type pg from 'pg';
import type { Config } from './config.js';
import type { Db } from './db/db.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { IngestDeps } from './ingest/ingest.js';
import type { ApiKeyAuthenticator } from './auth/keys.js';
import type { RateLimiter } from './auth/ratelimit.js';
import type { Authenticator } from './auth/authenticate.js';
import type { SyncSnapshots } from './governance/sync.js';

export interface ReceiverContext {
  config: Config;
  pool: pg.Pool;
  /** Kysely over `pool`, typed from the migrated schema. */
  db: Db;
  log: Logger;
  metrics: Metrics;
  ingest: IngestDeps;
  keys: ApiKeyAuthenticator;
  /** Any REST credential (key, access JWT, session) → Principal. */
  auth: Authenticator;
  limiter: RateLimiter;
  /** Intervention sync state, answered from memory while invalidation is listening. */
  sync: SyncSnapshots;
  /** Resolves when ingest may write (schema at head); otherwise throws 503 with the reason. */
  schemaGate: () => Promise<void>;
}
