// Audit upkeep (SPEC §10, §11 audit_partition_task): monthly partitions kept created ahead, a
// signed anchor of every project's head whenever it moved, and the one sanctioned way rows ever
// leave audit.events — dropping a whole old partition after recording a 'prune' anchor.
import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { anchorHmac, PG_CANONICAL_TIME, type AnchorKind } from './canonical.js';
import type { AuditKeys } from './keys.js';

async function inTransaction<T>(client: pg.ClientBase, lockTimeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
    const out = await fn();
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Create audit.events partitions from last month to `monthsAhead` ahead; returns how many were created. */
export async function ensureAuditPartitions(client: pg.ClientBase, monthsAhead: number): Promise<number> {
  // Creating a partition briefly locks audit.events: give up after 5 s rather than stall appends.
  return inTransaction(client, 5000, async () => {
    const r = await client.query<{ created: number }>('SELECT audit.ensure_month_partitions($1) AS created', [monthsAhead]);
    return r.rows[0]?.created ?? 0;
  });
}

interface HeadToAnchor { project_id: string; sequence_no: string; hash: Buffer; anchored_at: string }

// Heads that moved past their project's highest anchor; anchored_at is one clock reading for all.
const MOVED_HEADS_SQL = `
SELECT h.project_id::text AS project_id, h.last_sequence_no::text AS sequence_no, h.last_hash AS hash,
       to_char(clock_timestamp() AT TIME ZONE 'UTC', ${PG_CANONICAL_TIME}) AS anchored_at
FROM audit.chain_heads h
WHERE h.last_sequence_no > coalesce((SELECT max(a.sequence_no) FROM audit.anchors a WHERE a.project_id = h.project_id), 0)`;

const INSERT_ANCHORS_SQL = `
INSERT INTO audit.anchors (project_id, anchored_at, kind, sequence_no, hash, hmac_key_id, anchor_hmac)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bigint[], $5::bytea[], $6::integer[], $7::bytea[])`;

async function insertAnchors(client: pg.ClientBase, keys: AuditKeys, kind: AnchorKind, heads: HeadToAnchor[]): Promise<void> {
  if (heads.length === 0) return;
  const hmacs = heads.map((h) => anchorHmac(keys.signingKey, {
    projectId: h.project_id, anchoredAt: h.anchored_at, kind, sequenceNo: h.sequence_no, hash: h.hash, hmacKeyId: keys.signingKeyId,
  }));
  await client.query(INSERT_ANCHORS_SQL, [
    heads.map((h) => h.project_id), heads.map((h) => h.anchored_at), heads.map(() => kind), heads.map((h) => h.sequence_no),
    heads.map((h) => h.hash), heads.map(() => keys.signingKeyId), hmacs,
  ]);
}

/**
 * Record a signed 'periodic' anchor for every project whose head moved since its last anchor.
 * A head is read as committed (no lock), and head and row commit together, so the anchored row
 * exists. Returns the number of anchors written.
 */
export async function writeAnchors(client: pg.ClientBase, keys: AuditKeys): Promise<number> {
  return inTransaction(client, 5000, async () => {
    const heads = (await client.query<HeadToAnchor>(MOVED_HEADS_SQL)).rows;
    await insertAnchors(client, keys, 'periodic', heads);
    return heads.length;
  });
}

const PARTITION_NAME = /^events_y\d{4}m\d{2}$/;

// Per project in the partition: its last row there, its first row there, whether any of its rows
// older than that last one live elsewhere (then the partition is not the chain's oldest part),
// and where its chain currently starts (1, or after the latest prune anchor).
const PRUNE_PLAN_SQL = (part: string) => `
WITH inpart AS (
  SELECT project_id, min(sequence_no) AS first_seq, max(sequence_no) AS last_seq FROM audit.${part} GROUP BY project_id
)
SELECT i.project_id::text AS project_id, i.last_seq::text AS sequence_no, i.first_seq::text AS first_seq,
       (SELECT e.hash FROM audit.${part} e WHERE e.project_id = i.project_id AND e.sequence_no = i.last_seq LIMIT 1) AS hash,
       EXISTS (SELECT 1 FROM audit.events e WHERE e.project_id = i.project_id AND e.sequence_no < i.last_seq
               AND e.tableoid <> 'audit.${part}'::regclass) AS older_elsewhere,
       coalesce((SELECT max(a.sequence_no) FROM audit.anchors a WHERE a.project_id = i.project_id AND a.kind = 'prune'), 0)::text AS pruned_upto,
       to_char(clock_timestamp() AT TIME ZONE 'UTC', ${PG_CANONICAL_TIME}) AS anchored_at
FROM inpart i`;

/**
 * Drop one monthly partition of audit.events (e.g. `events_y2025m01`) after recording, for every
 * project with rows in it, a signed 'prune' anchor of its last row there; verification then
 * starts after that anchor. Refused when the partition is not the oldest part of every chain it
 * holds (rows would vanish from the middle of a chain). One transaction: anchors and drop commit
 * together. Returns the number of projects anchored.
 */
export async function dropAuditPartition(client: pg.ClientBase, partition: string, keys: AuditKeys, log?: Logger): Promise<number> {
  if (!PARTITION_NAME.test(partition)) throw new Error(`not an audit.events monthly partition: ${partition}`);
  return inTransaction(client, 5000, async () => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('strathon.audit.partitions'))`);
    const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`audit.${partition}`]);
    if (!exists.rows[0]?.t) return 0;
    // DETACH needs this lock anyway; taking it first (parent before partition, as appends do) means
    // no append lands in the partition while it is judged, and no lock-order deadlock.
    await client.query('LOCK TABLE audit.events IN ACCESS EXCLUSIVE MODE');
    const plan = (await client.query<HeadToAnchor & { first_seq: string; older_elsewhere: boolean; pruned_upto: string }>(PRUNE_PLAN_SQL(partition))).rows;
    for (const p of plan) {
      if (p.older_elsewhere || BigInt(p.first_seq) !== BigInt(p.pruned_upto) + 1n) {
        throw new Error(`refusing to drop audit.${partition}: project ${p.project_id}'s rows in it do not start its chain`);
      }
    }
    await insertAnchors(client, keys, 'prune', plan);
    await client.query(`ALTER TABLE audit.events DETACH PARTITION audit.${partition}`);
    await client.query(`DROP TABLE audit.${partition}`);
    log?.info({ partition: `audit.${partition}`, projects: plan.length }, 'audit partition dropped after prune anchors');
    return plan.length;
  });
}
