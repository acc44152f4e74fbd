// The read side of the audit log: filtered newest-first pages for GET /v1/audit/events, and
// oldest-first chunks of events and anchors for the compliance export. Every statement is scoped
// to one project.
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/db.js';
import { PG_CANONICAL_TIME, type ActorType, type AnchorKind, type JsonObject, type Outcome } from './canonical.js';

export interface AuditFilters {
  action?: string;
  /** Matches the actor's id, display name (email) or key prefix. */
  actor?: string;
  actorType?: string;
  category?: string;
  outcome?: string;
  resourceType?: string;
  resourceId?: string;
  requestId?: string;
  /** occurred_at >= since, occurred_at < until (nanoseconds since the epoch). */
  sinceNs?: bigint;
  untilNs?: bigint;
}

export interface AuditEventRow {
  id: string; project_id: string; sequence_no: string; occurred_at: string; actor_type: ActorType; actor_id: string | null;
  actor_display: string | null; actor_key_prefix: string | null; action: string; action_category: string; outcome: Outcome;
  resource_type: string | null; resource_id: string | null; request_id: string | null; source_ip: string | null; details: JsonObject;
}

export interface AuditAnchorRow {
  project_id: string; anchored_at: string; kind: AnchorKind; sequence_no: string; hash: Buffer; hmac_key_id: number; anchor_hmac: Buffer;
}

const timeText = (column: 'occurred_at' | 'anchored_at'): RawBuilder<string> =>
  sql<string>`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', ${sql.raw(PG_CANONICAL_TIME)})`;

/** The first microsecond at or after `ns` as exact UTC text: occurred_at >= it ⇔ occurred_at (in ns) >= ns. */
function microsCeil(ns: bigint): RawBuilder<Date> {
  const micros = (ns + 999n) / 1000n;
  const ms = micros / 1000n;
  const text = `${new Date(Number(ms)).toISOString().slice(0, 23)}${(micros % 1000n).toString().padStart(3, '0')}Z`;
  return sql<Date>`${text}::timestamptz`;
}

function eventsQuery(db: Db, projectId: string, f: AuditFilters) {
  let q = db.selectFrom('audit.events')
    .select([
      // uuid and bigint arrive as strings; times are rendered by Postgres (microseconds, UTC).
      'id', 'project_id', 'sequence_no', timeText('occurred_at').as('occurred_at'), 'actor_type', 'actor_id', 'actor_display', 'actor_key_prefix', 'action',
      'action_category', 'outcome', 'resource_type', 'resource_id', 'request_id', 'source_ip', 'details',
    ])
    .where('project_id', '=', projectId);
  if (f.action !== undefined) q = q.where('action', '=', f.action);
  const actor = f.actor;
  if (actor !== undefined) {
    q = q.where((eb) => eb.or([eb('actor_id', '=', actor), eb('actor_display', '=', actor), eb('actor_key_prefix', '=', actor)]));
  }
  if (f.actorType !== undefined) q = q.where('actor_type', '=', f.actorType);
  if (f.category !== undefined) q = q.where('action_category', '=', f.category);
  if (f.outcome !== undefined) q = q.where('outcome', '=', f.outcome);
  if (f.resourceType !== undefined) q = q.where('resource_type', '=', f.resourceType);
  if (f.resourceId !== undefined) q = q.where('resource_id', '=', f.resourceId);
  if (f.requestId !== undefined) q = q.where('request_id', '=', f.requestId);
  if (f.sinceNs !== undefined) q = q.where('occurred_at', '>=', microsCeil(f.sinceNs));
  if (f.untilNs !== undefined) q = q.where('occurred_at', '<', microsCeil(f.untilNs));
  return q;
}

/**
 * One page, newest first by sequence number (the primary key's order), after the keyset position
 * `beforeSeq` (the last sequence number of the previous page). Fetches limit + 1 to know if more follow.
 */
export async function listAuditEvents(db: Db, projectId: string, f: AuditFilters, beforeSeq: bigint | undefined, limit: number): Promise<AuditEventRow[]> {
  let q = eventsQuery(db, projectId, f);
  if (beforeSeq !== undefined) q = q.where('sequence_no', '<', beforeSeq.toString());
  return (await q.orderBy('sequence_no', 'desc').limit(limit + 1).execute()) as AuditEventRow[];
}

/** An event with its chain fields, so an export can be verified offline by whoever holds the key. */
export interface AuditChainedEventRow extends AuditEventRow { hmac_key_id: number; prev_hash: Buffer; hash: Buffer }

/** Oldest first, after sequence `afterSeq`: chunks for the export stream. */
export async function auditEventsChunk(db: Db, projectId: string, f: AuditFilters, afterSeq: bigint, limit: number): Promise<AuditChainedEventRow[]> {
  const rows = await eventsQuery(db, projectId, f)
    .select(['hmac_key_id', 'prev_hash', 'hash'])
    .where('sequence_no', '>', afterSeq.toString())
    .orderBy('sequence_no', 'asc').limit(limit).execute();
  return rows as AuditChainedEventRow[];
}

export async function countAuditEvents(db: Db, projectId: string, f: AuditFilters): Promise<number> {
  const r = await eventsQuery(db, projectId, f).clearSelect().select(sql<string>`count(*)::text`.as('n')).executeTakeFirst();
  return Number(r?.n ?? 0);
}

/** Anchors of a time range, oldest first, after the keyset position `afterText` (anchored_at). */
export async function auditAnchorsChunk(db: Db, projectId: string, f: Pick<AuditFilters, 'sinceNs' | 'untilNs'>, afterText: string | undefined, limit: number): Promise<AuditAnchorRow[]> {
  let q = db.selectFrom('audit.anchors')
    .select([
      'project_id', timeText('anchored_at').as('anchored_at'), 'kind', 'sequence_no', 'hash', 'hmac_key_id', 'anchor_hmac',
    ])
    .where('project_id', '=', projectId);
  if (f.sinceNs !== undefined) q = q.where('anchored_at', '>=', microsCeil(f.sinceNs));
  if (f.untilNs !== undefined) q = q.where('anchored_at', '<', microsCeil(f.untilNs));
  if (afterText !== undefined) q = q.where('anchored_at', '>', sql<Date>`${afterText}::timestamptz`);
  // The table's column, not the rendered text column of the same name.
  return (await q.orderBy('audit.anchors.anchored_at', 'asc').limit(limit).execute()) as AuditAnchorRow[];
}

export interface AnchorSummary { count: number; latest: { anchored_at: string; sequence_no: number } | null }

export async function anchorSummary(db: Db, projectId: string): Promise<AnchorSummary> {
  const r = await db.selectFrom('audit.anchors')
    .select([sql<string>`count(*)::text`.as('n'), sql<string | null>`to_char(max(anchored_at) AT TIME ZONE 'UTC', ${sql.raw(PG_CANONICAL_TIME)})`.as('latest_at'),
      sql<string | null>`max(sequence_no)::text`.as('latest_seq')])
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  const count = Number(r?.n ?? 0);
  return { count, latest: r?.latest_at ? { anchored_at: r.latest_at, sequence_no: Number(r.latest_seq) } : null };
}
