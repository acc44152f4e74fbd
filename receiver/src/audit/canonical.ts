// The canonical byte form of an audit row and of an anchor, and the HMACs over them (SPEC §10).
//
// canonical(row) is the UTF-8 encoding of JSON.stringify of this array, in this order:
//
//   ["strathon.audit.v1", id, project_id, sequence_no, occurred_at,
//    actor_type, actor_id, actor_display, actor_key_prefix,
//    action, action_category, outcome, resource_type, resource_id,
//    request_id, source_ip, details, hmac_key_id]
//
// - sequence_no is a decimal string (bigint-safe); hmac_key_id a JSON number;
// - occurred_at is RFC 3339 in UTC with exactly six fraction digits, "2026-01-31T12:00:00.123456Z"
//   (Postgres' microsecond timestamptz, rendered by Postgres itself, never by a JS Date);
// - absent text fields are null, never "";
// - details is the stored JSON object with every object's keys sorted (JavaScript's default
//   sort: UTF-16 code units), recursively; arrays keep their order.
//
// Every stored column except prev_hash and hash is covered, so no column can be changed unseen.
// A JSON array leaves no ambiguity about where one field ends and the next begins.
//
//   hash = HMAC-SHA256(key[hmac_key_id], canonical(row) || prev_hash)
//
// prev_hash is the raw 32-byte hash of the previous row of the project's chain: 32 zero bytes
// for sequence 1, or the hash of the 'prune' anchor the chain continues from.
//
// An anchor is signed the same way over
//   ["strathon.audit.anchor.v1", project_id, anchored_at, kind, sequence_no, hash (hex), hmac_key_id]
// with anchored_at in the occurred_at format: anchor_hmac = HMAC-SHA256(key[hmac_key_id], canonical(anchor)).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const GENESIS_HASH = Buffer.alloc(32);

export type ActorType = 'user' | 'api_key' | 'system' | 'cli';
export type Outcome = 'success' | 'failure';
export type AnchorKind = 'periodic' | 'prune';
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** One audit row as it is hashed (and as it is stored, but for prev_hash and hash). */
export interface CanonicalRow {
  id: string;
  projectId: string;
  sequenceNo: string;
  /** RFC 3339 UTC with exactly six fraction digits. */
  occurredAt: string;
  actorType: ActorType;
  actorId: string | null;
  actorDisplay: string | null;
  actorKeyPrefix: string | null;
  action: string;
  actionCategory: string;
  outcome: Outcome;
  resourceType: string | null;
  resourceId: string | null;
  requestId: string | null;
  sourceIp: string | null;
  details: JsonObject;
  hmacKeyId: number;
}

export interface CanonicalAnchor {
  projectId: string;
  anchoredAt: string;
  kind: AnchorKind;
  sequenceNo: string;
  hash: Buffer;
  hmacKeyId: number;
}

/** The UTC microsecond text Postgres renders for canonical times (occurred_at, anchored_at). */
export const PG_CANONICAL_TIME = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
export const CANONICAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

function sortKeys(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: JsonObject = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k] as JsonValue);
    return out;
  }
  return v;
}

export function canonicalRow(r: CanonicalRow): Buffer {
  return Buffer.from(JSON.stringify([
    'strathon.audit.v1', r.id, r.projectId, r.sequenceNo, r.occurredAt,
    r.actorType, r.actorId, r.actorDisplay, r.actorKeyPrefix,
    r.action, r.actionCategory, r.outcome, r.resourceType, r.resourceId,
    r.requestId, r.sourceIp, sortKeys(r.details), r.hmacKeyId,
  ]), 'utf8');
}

export function rowHash(key: Buffer, row: CanonicalRow, prevHash: Buffer): Buffer {
  return createHmac('sha256', key).update(canonicalRow(row)).update(prevHash).digest();
}

export function canonicalAnchor(a: CanonicalAnchor): Buffer {
  return Buffer.from(JSON.stringify([
    'strathon.audit.anchor.v1', a.projectId, a.anchoredAt, a.kind, a.sequenceNo, a.hash.toString('hex'), a.hmacKeyId,
  ]), 'utf8');
}

export function anchorHmac(key: Buffer, a: CanonicalAnchor): Buffer {
  return createHmac('sha256', key).update(canonicalAnchor(a)).digest();
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---- making input storable and hash-stable ------------------------------------------------------

// Postgres text and jsonb refuse NUL, and node-pg would replace lone surrogates on the wire: strip
// or replace both before hashing, so the stored row is byte-for-byte what was hashed.
export function cleanText(s: string): string {
  return s.replaceAll('\u0000', '').toWellFormed();
}

export const cleanOptional = (s: string | null | undefined): string | null => (s === undefined || s === null || s === '' ? null : cleanText(s));

/** Detail keys whose values are secrets by name; their values are replaced before storing. */
const SECRET_KEY = /^(password|new_password|old_password|current_password|temporary_password|secret|client_secret|signing_secret|webhook_secret|token|access_token|refresh_token|session_token|mfa_token|id_token|api_key|raw_key|key|authorization|cookie|totp_secret|totp_code|otp|backup_codes|recovery_codes|pepper|private_key)$/i;
/** A raw `stra_` API key anywhere in a value. */
const RAW_API_KEY = /stra_[A-Za-z0-9_-]{20,}/g;
export const REDACTED = '[REDACTED]';

function cleanJson(v: JsonValue): JsonValue {
  if (typeof v === 'string') return cleanText(v).replace(RAW_API_KEY, REDACTED);
  if (Array.isArray(v)) return v.map(cleanJson);
  if (v !== null && typeof v === 'object') {
    const out: JsonObject = {};
    for (const [k, val] of Object.entries(v)) out[cleanText(k)] = SECRET_KEY.test(k) && val !== null ? REDACTED : cleanJson(val);
    return out;
  }
  return v;
}

/**
 * Details as they will be stored and hashed: plain JSON (Dates as ISO strings, bigints as decimal
 * strings, undefined dropped), text cleaned, secrets redacted. Round-trips through jsonb unchanged.
 */
export function normalizeDetails(details: Record<string, unknown> | undefined): JsonObject {
  if (details === undefined) return {};
  const json = JSON.stringify(details, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  const parsed = json === undefined ? {} : (JSON.parse(json) as JsonValue);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
  return cleanJson(parsed) as JsonObject;
}
