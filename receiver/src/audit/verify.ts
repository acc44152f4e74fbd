// verifyChain: recompute a project's chain and name the first bad sequence number (SPEC §10, §13.8).
//
// Read in one REPEATABLE READ snapshot, so the head, the anchors and the rows agree even while
// appends continue; rows are streamed in sequence order, VERIFY_CHUNK sequence numbers per query, never
// all in memory. What each tampering looks like:
//   modified row        the recomputed HMAC differs from the stored hash
//   deleted row         a sequence number is missing (also the oldest rows: the chain starts at 1,
//                       or right after a signed 'prune' anchor)
//   truncated tail      the head row, or the latest anchor, records a sequence beyond the last row
//   reordered rows      a row's prev_hash is not the hash of the row before it
//   unknown key id      a row names an hmac_key_id no configured key has
// Only the latest anchor and the latest prune anchor are checked (their HMACs too): together with
// the head they pin the tail; every row before them is pinned by the chain itself.
import type pg from 'pg';
import { emitEvent } from '../webhooks/outbox.js';
import {
  anchorHmac, GENESIS_HASH, PG_CANONICAL_TIME, rowHash, sameBytes,
  type ActorType, type AnchorKind, type CanonicalRow, type JsonObject, type Outcome,
} from './canonical.js';

export interface ChainVerification {
  valid: boolean;
  /** Rows whose link and HMAC were verified (up to the first bad one). */
  checked: number;
  first_bad_sequence: number | null;
  reason: string | null;
}

export const VERIFY_CHUNK = 1000;

interface EventRow {
  id: string; project_id: string; sequence_no: string; occurred_at: string; actor_type: ActorType; actor_id: string | null;
  actor_display: string | null; actor_key_prefix: string | null; action: string; action_category: string; outcome: Outcome;
  resource_type: string | null; resource_id: string | null; request_id: string | null; source_ip: string | null;
  details: JsonObject; hmac_key_id: number; prev_hash: Buffer; hash: Buffer;
}

export interface AnchorRow {
  project_id: string; anchored_at: string; kind: AnchorKind; sequence_no: string; hash: Buffer; hmac_key_id: number; anchor_hmac: Buffer;
}

// node-pg returns uuid and bigint as strings; only times need rendering (exactly, by Postgres).
export const EVENT_COLUMNS = `e.id, e.project_id, e.sequence_no, to_char(e.occurred_at AT TIME ZONE 'UTC', ${PG_CANONICAL_TIME}) AS occurred_at,
  e.actor_type, e.actor_id, e.actor_display, e.actor_key_prefix, e.action, e.action_category, e.outcome, e.resource_type,
  e.resource_id, e.request_id, e.source_ip, e.details, e.hmac_key_id, e.prev_hash, e.hash`;

export const ANCHOR_COLUMNS = `a.project_id, to_char(a.anchored_at AT TIME ZONE 'UTC', ${PG_CANONICAL_TIME}) AS anchored_at,
  a.kind, a.sequence_no, a.hash, a.hmac_key_id, a.anchor_hmac`;

const HEAD_SQL = `SELECT last_sequence_no::text AS seq, last_hash AS hash FROM audit.chain_heads WHERE project_id = $1`;
// Qualified ORDER BY columns: the bare names would mean the rendered (text) output columns.
const LATEST_ANCHOR_SQL = `SELECT ${ANCHOR_COLUMNS} FROM audit.anchors a WHERE a.project_id = $1
  ORDER BY a.sequence_no DESC, a.anchored_at DESC LIMIT 1`;
const LATEST_PRUNE_SQL = `SELECT ${ANCHOR_COLUMNS} FROM audit.anchors a WHERE a.project_id = $1 AND a.kind = 'prune'
  ORDER BY a.sequence_no DESC, a.anchored_at DESC LIMIT 1`;
const ROWS_SQL = `SELECT ${EVENT_COLUMNS} FROM audit.events e
  WHERE e.project_id = $1 AND e.sequence_no >= $2::bigint AND e.sequence_no < $3::bigint ORDER BY e.sequence_no, e.occurred_at`;
const NEXT_AFTER_SQL = `SELECT min(sequence_no)::text AS seq FROM audit.events WHERE project_id = $1 AND sequence_no > $2::bigint`;
const ANY_ROW_SQL = `SELECT EXISTS (SELECT 1 FROM audit.events WHERE project_id = $1) AS any`;

export function canonicalOf(r: EventRow): CanonicalRow {
  return {
    id: r.id, projectId: r.project_id, sequenceNo: r.sequence_no, occurredAt: r.occurred_at, actorType: r.actor_type,
    actorId: r.actor_id, actorDisplay: r.actor_display, actorKeyPrefix: r.actor_key_prefix, action: r.action,
    actionCategory: r.action_category, outcome: r.outcome, resourceType: r.resource_type, resourceId: r.resource_id,
    requestId: r.request_id, sourceIp: r.source_ip, details: r.details, hmacKeyId: r.hmac_key_id,
  };
}

/** Why an anchor cannot be trusted, or null when its HMAC verifies. */
export function anchorProblem(a: AnchorRow, keys: ReadonlyMap<number, Buffer>): string | null {
  const key = keys.get(a.hmac_key_id);
  const what = `the ${a.kind} anchor of ${a.anchored_at} (sequence ${a.sequence_no})`;
  if (!key) return `${what} is signed with unknown key id ${a.hmac_key_id}`;
  const expected = anchorHmac(key, {
    projectId: a.project_id, anchoredAt: a.anchored_at, kind: a.kind, sequenceNo: a.sequence_no, hash: a.hash, hmacKeyId: a.hmac_key_id,
  });
  return sameBytes(expected, a.anchor_hmac) ? null : `${what} was modified or forged (anchor HMAC mismatch)`;
}

const ok = (checked: number): ChainVerification => ({ valid: true, checked, first_bad_sequence: null, reason: null });
const bad = (checked: number, seq: bigint | null, reason: string): ChainVerification =>
  ({ valid: false, checked, first_bad_sequence: seq === null ? null : Number(seq), reason });
const range = (from: bigint, to: bigint) => (from === to ? `row ${from} is` : `rows ${from}..${to} are`);

async function verifyInSnapshot(client: pg.ClientBase, projectId: string, keys: ReadonlyMap<number, Buffer>): Promise<ChainVerification> {
  const head = (await client.query<{ seq: string; hash: Buffer }>(HEAD_SQL, [projectId])).rows[0];
  const anchor = (await client.query<AnchorRow>(LATEST_ANCHOR_SQL, [projectId])).rows[0];
  const prune = (await client.query<AnchorRow>(LATEST_PRUNE_SQL, [projectId])).rows[0];
  // The prune anchor is where the chain starts: it must hold before any row is judged. The latest
  // anchor is judged after the rows, so a bad row before it is reported first.
  const pruneProblem = prune ? anchorProblem(prune, keys) : null;
  if (prune && pruneProblem) return bad(0, BigInt(prune.sequence_no), pruneProblem);

  // The chain starts at 1 from the genesis hash, or right after the latest prune anchor.
  const start = prune ? BigInt(prune.sequence_no) + 1n : 1n;
  let prev = prune ? prune.hash : GENESIS_HASH;
  let next = start;
  let checked = 0;
  const anchorSeq = anchor ? BigInt(anchor.sequence_no) : null;
  let anchoredRowHash: Buffer | undefined = anchor && prune && anchorSeq === start - 1n ? prune.hash : undefined;

  for (;;) {
    const lo = next;
    const rows = (await client.query<EventRow>(ROWS_SQL, [projectId, lo.toString(), (lo + BigInt(VERIFY_CHUNK)).toString()])).rows;
    for (const row of rows) {
      const seq = BigInt(row.sequence_no);
      if (seq < next) return bad(checked, seq, `sequence ${seq} appears more than once (a duplicated or forked row)`);
      if (seq > next) return bad(checked, next, `${range(next, seq - 1n)} missing (deleted)`);
      const key = keys.get(row.hmac_key_id);
      if (!key) return bad(checked, seq, `row ${seq} is signed with unknown key id ${row.hmac_key_id}`);
      if (!sameBytes(row.prev_hash, prev)) {
        return bad(checked, seq, seq === start && !prune
          ? `row ${seq} does not start the chain (its prev_hash is not the genesis value)`
          : `row ${seq} does not link to row ${seq - 1n} (prev_hash differs: rows reordered, replaced or re-linked)`);
      }
      if (!sameBytes(rowHash(key, canonicalOf(row), prev), row.hash)) return bad(checked, seq, `row ${seq} was modified (hash mismatch)`);
      if (seq === anchorSeq) anchoredRowHash = row.hash;
      prev = row.hash;
      next = seq + 1n;
      checked++;
    }
    if (next < lo + BigInt(VERIFY_CHUNK)) break;
  }
  const last = next - 1n;

  // Rows beyond a hole wider than the last chunk.
  const after = (await client.query<{ seq: string | null }>(NEXT_AFTER_SQL, [projectId, last.toString()])).rows[0]?.seq;
  if (after) return bad(checked, next, `${range(next, BigInt(after) - 1n)} missing (deleted)`);

  const lastText = last >= start ? `the last row is ${last}` : 'no rows remain';
  if (!head) {
    const anyRow = (await client.query<{ any: boolean }>(ANY_ROW_SQL, [projectId])).rows[0]?.any === true;
    if (anyRow || anchor) return bad(checked, null, 'the chain head row is missing (deleted)');
    return ok(0);
  }
  const headSeq = BigInt(head.seq);
  if (headSeq > last) return bad(checked, last + 1n, `truncated: the chain head records sequence ${headSeq} but ${lastText}`);
  if (headSeq < last) return bad(checked, headSeq + 1n, `rows ${headSeq + 1n}..${last} lie beyond the chain head (head rewritten)`);
  if (!sameBytes(head.hash, prev)) return bad(checked, last, `the chain head's hash does not match row ${last} (head rewritten)`);
  if (anchor && anchorSeq !== null) {
    const problem = anchorProblem(anchor, keys);
    if (problem) return bad(checked, anchorSeq, problem);
    if (anchorSeq > last) return bad(checked, last + 1n, `truncated: the anchor of ${anchor.anchored_at} records sequence ${anchorSeq} but ${lastText}`);
    if (anchoredRowHash && !sameBytes(anchoredRowHash, anchor.hash)) {
      return bad(checked, anchorSeq, `row ${anchorSeq} differs from the anchor of ${anchor.anchored_at} (chain rewritten)`);
    }
  }
  return ok(checked);
}

/**
 * Recompute `projectId`'s chain with `keys` (id → key: the current and every previous key) and
 * report the first problem. Empty chains are valid.
 */
export async function verifyChain(pool: pg.Pool, projectId: string, keys: ReadonlyMap<number, Buffer>): Promise<ChainVerification> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await verifyInSnapshot(client, projectId, keys);
    } finally {
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
    }
  } finally {
    client.release(broken);
  }
}

/**
 * verifyChain, and when the chain is broken the `audit.verification_failed` webhook event (SPEC §9),
 * so an operator hears of tampering wherever the check ran (`via`: the API, the CLI, an export).
 */
export async function verifyChainAndReport(
  pool: pg.Pool, projectId: string, keys: ReadonlyMap<number, Buffer>, via: 'api' | 'cli' | 'export',
): Promise<ChainVerification> {
  const v = await verifyChain(pool, projectId, keys);
  if (!v.valid) {
    await emitEvent(pool, {
      projectId, type: 'audit.verification_failed',
      data: { project_id: projectId, checked: v.checked, first_bad_sequence: v.first_bad_sequence, reason: v.reason, via },
    });
  }
  return v;
}

/** Every project that has an audit chain (for `strathon-admin audit-verify` without --project). */
export async function auditedProjects(pool: Pick<pg.Pool, 'query'>): Promise<string[]> {
  const r = await pool.query<{ project_id: string }>('SELECT project_id FROM audit.chain_heads ORDER BY project_id');
  return r.rows.map((x) => x.project_id);
}
