// "Its password from config" (SPEC §12): when DASHBOARD_DATABASE_URL logs in as strathon_dashboard
// and DATABASE_URL is given too, the dashboard sets that password on the role at boot. It sends a
// SCRAM-SHA-256 verifier computed here, never the plaintext (ALTER ROLE statements can end up in
// the server log).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log.js';
import { READ_ONLY_ROLE } from './pool.js';

const ITERATIONS = 4096;

/** The verifier Postgres stores for `password` (RFC 5802/7677, Postgres' text format). */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = ITERATIONS): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The password to provision, when the dashboard URL names the dashboard role with one. */
export function rolePasswordOf(dashboardUrl: string): string | undefined {
  try {
    const u = new URL(dashboardUrl);
    if (decodeURIComponent(u.username) !== READ_ONLY_ROLE || !u.password) return undefined;
    return decodeURIComponent(u.password);
  } catch {
    return undefined;
  }
}

/** Set the role's password through the owner's connection; retried while the receiver migrates. */
export async function provisionRolePassword(ownerUrl: string, dashboardUrl: string, log: Logger, opts: { attempts?: number; delayMs?: number } = {}): Promise<boolean> {
  const password = rolePasswordOf(dashboardUrl);
  if (password === undefined) return false;
  const attempts = opts.attempts ?? 30;
  for (let i = 1; i <= attempts; i++) {
    const client = new pg.Client({ connectionString: ownerUrl, application_name: 'strathon-dashboard-provision', connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      // The verifier is base64 plus `$:`, so it is safe as a literal; DDL takes no parameters.
      await client.query(`ALTER ROLE ${READ_ONLY_ROLE} WITH LOGIN PASSWORD '${scramVerifier(password)}'`);
      log.info({ role: READ_ONLY_ROLE }, 'dashboard role password set from DASHBOARD_DATABASE_URL');
      return true;
    } catch (err) {
      const msg = (err as Error).message;
      if (i === attempts) {
        log.warn({ role: READ_ONLY_ROLE, err: msg }, 'could not set the dashboard role password (is the receiver migrated, and may DATABASE_URL alter roles?)');
        return false;
      }
      log.debug({ attempt: i, err: msg }, 'dashboard role not ready yet');
      await new Promise((r) => setTimeout(r, opts.delayMs ?? 2000));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return false;
}
