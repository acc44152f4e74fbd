// The dashboard's read-only Postgres access (SPEC §12). Every connection starts as role
// strathon_dashboard (a startup parameter, so a connection that cannot take the role fails
// instead of running with more rights) with read-only transactions and a statement timeout.
// When the credential is the receiver's own (derived mode), this is a guard against the
// dashboard's own mistakes, not a boundary against a compromised dashboard process: for that,
// give it DASHBOARD_DATABASE_URL with a strathon_dashboard login (dashboard/README.md).
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { DatabaseSource } from '../config.js';
import type { Logger } from '../log.js';

export const READ_ONLY_ROLE = 'strathon_dashboard';
const STARTUP_OPTIONS = `-c role=${READ_ONLY_ROLE} -c default_transaction_read_only=on -c statement_timeout=5000`;

export class DbUnavailable extends Error {}

export interface ReadDb {
  query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]>;
  close(): Promise<void>;
  /** One line for logs and the workers page: how the dashboard reaches Postgres. */
  describe: string;
}

export function poolConfig(source: DatabaseSource): pg.PoolConfig | undefined {
  const common: pg.PoolConfig = {
    max: 5, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 3000, application_name: 'strathon-dashboard', options: STARTUP_OPTIONS,
  };
  switch (source.kind) {
    case 'dedicated':
    case 'derived':
      return { ...common, connectionString: source.url };
    case 'embedded':
      // The receiver writes the password file on its first boot, possibly after we start: read it per connection.
      return {
        ...common, host: '127.0.0.1', port: source.port, user: 'postgres', database: source.database,
        password: () => {
          try {
            return readFileSync(source.passwordFile, 'utf8').trim();
          } catch {
            throw new DbUnavailable(`the embedded Postgres password file ${source.passwordFile} does not exist yet (is the receiver running with the same STRATHON_DATA_DIR?)`);
          }
        },
      };
    default:
      return undefined;
  }
}

function describe(source: DatabaseSource): string {
  const host = (u: string) => {
    try {
      const x = new URL(u);
      return `${decodeURIComponent(x.username) || '?'}@${x.host}${x.pathname}`;
    } catch {
      return 'unparsable URL';
    }
  };
  switch (source.kind) {
    case 'dedicated': return `DASHBOARD_DATABASE_URL (${host(source.url)}), role ${READ_ONLY_ROLE}`;
    case 'derived': return `DATABASE_URL (${host(source.url)}) as role ${READ_ONLY_ROLE}, read-only`;
    case 'embedded': return `embedded Postgres on 127.0.0.1:${source.port} as role ${READ_ONLY_ROLE}, read-only`;
    default: return 'no database configured';
  }
}

export function createReadDb(source: DatabaseSource, log: Logger): ReadDb {
  const config = poolConfig(source);
  const description = describe(source);
  if (!config) {
    return {
      describe: description,
      query: () => Promise.reject(new DbUnavailable('no database is configured for the dashboard: set DASHBOARD_DATABASE_URL (or DATABASE_URL)')),
      close: async () => undefined,
    };
  }
  const pool = new pg.Pool(config);
  pool.on('error', (err) => log.warn({ err: err.message }, 'idle dashboard database connection failed'));
  return {
    describe: description,
    async query<R extends pg.QueryResultRow>(name: string, text: string, values: unknown[]): Promise<R[]> {
      try {
        return (await pool.query<R>({ name, text, values })).rows;
      } catch (err) {
        if (err instanceof DbUnavailable) throw err;
        throw new DbUnavailable(`the database could not be read (${(err as Error).message})`);
      }
    },
    close: () => pool.end(),
  };
}
