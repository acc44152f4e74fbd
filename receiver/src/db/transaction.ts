// One transaction: on its own pooled connection (given the pool) or on a caller's connection.
import type pg from 'pg';

/** Run `fn` between BEGIN and COMMIT; roll back on any error and rethrow it. */
export async function inTransaction<T>(db: pg.Pool | pg.PoolClient, fn: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const own = !('release' in db);
  const client = own ? await (db as pg.Pool).connect() : (db as pg.PoolClient);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw err;
    }
  } finally {
    // A connection that could not even roll back is closed, not returned to the pool.
    if (own) client.release(broken);
  }
}
