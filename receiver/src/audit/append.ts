// appendAudit: add one row to a project's hash chain (SPEC §10).
//
// Concurrency: the project's audit.chain_heads row is locked FOR UPDATE before the next sequence
// number is taken, and released only when the transaction ends, so appends of one project are
// serialized and the chain never forks; different projects never wait for each other. The row
// and the new head are written by one statement, so they commit (or roll back) together — and
// with the caller's own changes when appendAudit runs inside the caller's transaction.
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { AuditActor } from './actor.js';
import {
  cleanOptional, cleanText, normalizeDetails, PG_CANONICAL_TIME, rowHash, type CanonicalRow, type Outcome,
} from './canonical.js';
import { auditKeys } from './keys.js';

export interface AuditEventInput {
  projectId: string;
  actor: AuditActor;
  /** Dotted, e.g. "api_key.create", "auth.login", "halt.resolve". */
  action: string;
  /** Default: the part of `action` before the first dot. */
  category?: string;
  /** Default: success. A refused login is a `failure`. */
  outcome?: Outcome;
  resource?: { type: string; id?: string | null };
  requestId?: string | null;
  sourceIp?: string | null;
  /** Never secrets: secret-named keys and raw `stra_` keys are redacted anyway. */
  details?: Record<string, unknown>;
}

export interface AppendedAudit { id: string; sequenceNo: number; occurredAt: string; actionCategory: string; hash: Buffer }

/** What appendAudit needs from the receiver: the HMAC keys (config) and the metrics registry. */
export interface AuditDeps {
  config: Pick<Config, 'auditHmacKey' | 'auditHmacKeyId' | 'auditHmacKeysPrevious'>;
  metrics: { registry: Registry };
}

/** strathon_audit_appends_total, registered once per registry. */
export function auditAppendsCounter(registry: Registry): Counter<'action_category'> {
  const existing = registry.getSingleMetric('strathon_audit_appends_total') as Counter<'action_category'> | undefined;
  return existing ?? new Counter({
    name: 'strathon_audit_appends_total',
    help: 'Audit rows appended to a project hash chain (counted when written; a caller transaction may still roll back)',
    labelNames: ['action_category'],
    registers: [registry],
  });
}

const LOCK_HEAD_SQL = `
SELECT last_sequence_no::text AS last_sequence_no, last_hash,
       to_char(greatest(clock_timestamp(), updated_at) AT TIME ZONE 'UTC', ${PG_CANONICAL_TIME}) AS occurred_at
FROM audit.chain_heads WHERE project_id = $1 FOR UPDATE`;

const CREATE_HEAD_SQL = `INSERT INTO audit.chain_heads (project_id) VALUES ($1) ON CONFLICT (project_id) DO NOTHING`;

const INSERT_ROW_SQL = `
WITH appended AS (
  INSERT INTO audit.events (project_id, sequence_no, occurred_at, id, actor_type, actor_id, actor_display, actor_key_prefix,
    action, action_category, outcome, resource_type, resource_id, request_id, source_ip, details, hmac_key_id, prev_hash, hash)
  VALUES ($1, $2::bigint, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17, $18, $19)
)
UPDATE audit.chain_heads SET last_sequence_no = $2::bigint, last_hash = $19, updated_at = $3::timestamptz WHERE project_id = $1`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A client IP as stored: plain IPv4 for IPv4-mapped IPv6, no zone id; anything else → null. */
export function normalizeIp(ip: string | null | undefined): string | null {
  if (!ip) return null;
  let v = ip.trim();
  if (v.startsWith('::ffff:') && isIP(v.slice(7)) === 4) v = v.slice(7);
  v = v.replace(/%.*$/, '');
  return isIP(v) ? v.toLowerCase() : null;
}

interface HeadRow { last_sequence_no: string; last_hash: Buffer; occurred_at: string }

async function lockHead(client: pg.ClientBase, projectId: string): Promise<HeadRow> {
  let r = await client.query<HeadRow>(LOCK_HEAD_SQL, [projectId]);
  if (r.rows.length === 0) {
    // First event of the project: create its head (racing creators are fine), then lock it.
    await client.query(CREATE_HEAD_SQL, [projectId]);
    r = await client.query<HeadRow>(LOCK_HEAD_SQL, [projectId]);
  }
  const head = r.rows[0];
  if (!head) throw new Error(`audit chain head of project ${projectId} could not be created`);
  return head;
}

/** Lock, hash, insert. null when `client` turned out not to be inside a transaction (nothing written). */
async function appendLocked(client: pg.ClientBase, e: AuditEventInput, deps: AuditDeps): Promise<AppendedAudit | null> {
  const keys = auditKeys(deps.config);
  const head = await lockHead(client, e.projectId);
  // node-pg's transaction status is exact after a successful statement (right after a failed one it
  // can lag): outside a transaction the head lock is already gone, so nothing may be written.
  if (client.getTransactionStatus() !== 'T') return null;
  const sequenceNo = BigInt(head.last_sequence_no) + 1n;
  const action = cleanText(e.action);
  const row: CanonicalRow = {
    id: randomUUID(),
    projectId: e.projectId.toLowerCase(),
    sequenceNo: sequenceNo.toString(),
    occurredAt: head.occurred_at,
    actorType: e.actor.type,
    actorId: cleanOptional(e.actor.id),
    actorDisplay: cleanOptional(e.actor.display),
    actorKeyPrefix: cleanOptional(e.actor.keyPrefix),
    action,
    actionCategory: cleanOptional(e.category) ?? action.split('.')[0] ?? action,
    outcome: e.outcome ?? 'success',
    resourceType: cleanOptional(e.resource?.type),
    resourceId: cleanOptional(e.resource?.id),
    requestId: cleanOptional(e.requestId),
    sourceIp: normalizeIp(e.sourceIp),
    details: normalizeDetails(e.details),
    hmacKeyId: keys.signingKeyId,
  };
  const hash = rowHash(keys.signingKey, row, head.last_hash);
  await client.query(INSERT_ROW_SQL, [
    row.projectId, row.sequenceNo, row.occurredAt, row.id, row.actorType, row.actorId, row.actorDisplay, row.actorKeyPrefix,
    row.action, row.actionCategory, row.outcome, row.resourceType, row.resourceId, row.requestId, row.sourceIp,
    JSON.stringify(row.details), row.hmacKeyId, head.last_hash, hash,
  ]);
  return { id: row.id, sequenceNo: Number(sequenceNo), occurredAt: row.occurredAt, actionCategory: row.actionCategory, hash };
}

/**
 * Append one event to its project's chain.
 *
 * - `db` a client inside a transaction (BEGIN issued): the row joins that transaction and commits
 *   or rolls back with the caller's change. The head row stays locked until the caller's COMMIT,
 *   so append last, just before committing. Use READ COMMITTED: under REPEATABLE READ a
 *   concurrent append to the same project makes this fail with a serialization error.
 * - `db` a pool, or a client outside a transaction: appendAudit runs its own short transaction.
 */
export async function appendAudit(db: pg.Pool | pg.PoolClient, event: AuditEventInput, deps: AuditDeps): Promise<AppendedAudit> {
  if (!UUID.test(event.projectId)) throw new Error(`appendAudit: project id "${event.projectId}" is not a UUID`);
  if (!event.action.trim()) throw new Error('appendAudit: action is required');
  let appended: AppendedAudit | null = null;
  if ('getTransactionStatus' in db && db.getTransactionStatus() === 'E') {
    throw new Error('appendAudit: the caller\'s transaction has already failed; roll it back first');
  }
  if ('getTransactionStatus' in db && db.getTransactionStatus() === 'T') appended = await appendLocked(db, event, deps);
  if (!appended) {
    const own = !('getTransactionStatus' in db);
    const client = 'getTransactionStatus' in db ? db : await db.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        appended = await appendLocked(client, event, deps);
        if (!appended) throw new Error('appendAudit: BEGIN did not open a transaction');
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
        throw err;
      }
    } finally {
      // A connection that could not even roll back is closed, not returned to the pool.
      if (own) client.release(broken);
    }
  }
  auditAppendsCounter(deps.metrics.registry).inc({ action_category: appended.actionCategory });
  return appended;
}
