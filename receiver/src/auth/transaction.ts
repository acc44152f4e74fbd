// One transaction on one pooled connection, and the "is Postgres unreachable?" test that turns a
// lost database into 503 "auth backend unavailable" (fail closed) instead of a 500.
import { HttpError, Unavailable } from '../errors.js';
import { inTransaction } from '../db/transaction.js';

export { inTransaction };

/** Errors that mean "Postgres cannot answer" rather than "this statement is wrong". */
export function isBackendDown(err: unknown): boolean {
  if (err instanceof HttpError) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') {
    const msg = (err as Error).message ?? '';
    return /connect|connection|terminated|timeout|ECONN|EPIPE|ETIMEDOUT/i.test(msg);
  }
  // SQLSTATE class 08 (connection), 53 (resources), 57P (shutdown); or a socket error code.
  return /^(08|53|57P)/.test(code) || /^E[A-Z]+$/.test(code);
}

/** Rethrow a lost database as 503 (Retry-After 2); everything else unchanged. */
export function failClosed(err: unknown): never {
  if (isBackendDown(err)) throw new Unavailable('auth backend unavailable', 2);
  throw err;
}
