// Query-string parsing shared by the read API (SPEC §7.1): limit, keyset cursors, time filters,
// ids and enums. Every bad value is a 422 whose loc names the offending parameter.
import type { Request } from 'express';
import { Unprocessable } from '../errors.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
const INT64_MAX = (1n << 63n) - 1n;

type Loc = ['query' | 'path' | 'body', string];

function bad(where: Loc, msg: string, type = 'value_error'): Unprocessable {
  return new Unprocessable(msg, where, type);
}

/** One query parameter as a string; absent or empty → undefined; repeated → 422. */
export function queryString(req: Request, name: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(['query', name], `${name} must be given at most once`);
  // Postgres text cannot hold NUL: refuse it here rather than fail the query.
  if (v.includes('\u0000')) throw bad(['query', name], `${name} must not contain NUL characters`);
  return v === '' ? undefined : v;
}

/** The first of several accepted spellings of a parameter (SPEC name first, then Strathon aliases). */
export function queryStringAny(req: Request, names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = queryString(req, name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

export function parseIntParam(req: Request, name: string, dflt: number, min: number, max: number): number {
  const raw = queryString(req, name);
  if (raw === undefined) return dflt;
  if (!/^-?\d{1,15}$/.test(raw.trim())) throw bad(['query', name], `${name} must be an integer between ${min} and ${max}`, 'int_parsing');
  const n = Number(raw.trim());
  if (n < min || n > max) throw bad(['query', name], `${name} must be an integer between ${min} and ${max}`, n < min ? 'greater_than_equal' : 'less_than_equal');
  return n;
}

export function parseLimit(req: Request): number {
  return parseIntParam(req, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT);
}

export function parseBool(req: Request, name: string): boolean | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) return undefined;
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  throw bad(['query', name], `${name} must be true or false`, 'bool_parsing');
}

export function parseEnum<T extends string>(req: Request, name: string, allowed: readonly T[]): T | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) return undefined;
  const v = raw.trim().toLowerCase() as T;
  if (!allowed.includes(v)) throw bad(['query', name], `${name} must be one of: ${allowed.join(', ')}`, 'enum');
  return v;
}

/** A non-negative decimal (money filter), returned as the canonical string Postgres will compare. */
export function parseDecimal(req: Request, name: string): string | undefined {
  const raw = queryString(req, name);
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (!/^\d{1,14}(\.\d{1,10})?$/.test(v)) throw bad(['query', name], `${name} must be a non-negative decimal number`, 'decimal_parsing');
  return v;
}

/** 32 lowercase-or-uppercase hex characters → lowercase hex; anything else is a 422. */
export function parseTraceId(raw: string, where: Loc): string {
  if (!/^[0-9a-fA-F]{32}$/.test(raw)) throw bad(where, 'trace_id must be 32 hexadecimal characters');
  return raw.toLowerCase();
}

/** Text to match with ILIKE '%…%': the wildcards the caller typed are taken literally. */
export function containsPattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

// ---- time ---------------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2}))?$/;

/**
 * A time filter as nanoseconds since the epoch: a unix-ns integer, or RFC 3339 (a bare date
 * means midnight UTC). Nanosecond fractions are kept exactly.
 */
export function parseTimeValue(raw: string, name: string): bigint {
  const v = raw.trim();
  if (/^\d{1,19}$/.test(v)) {
    const ns = BigInt(v);
    if (ns > INT64_MAX) throw bad(['query', name], `${name} is beyond the largest nanosecond timestamp`);
    return ns;
  }
  const m = RFC3339.exec(v);
  if (!m) throw bad(['query', name], `${name} must be a unix timestamp in nanoseconds or an RFC 3339 time (e.g. 2025-01-31T12:00:00Z)`, 'datetime_parsing');
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (Number.isNaN(ms) || check.getUTCFullYear() !== Number(y) || check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d)
    || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
    throw bad(['query', name], `${name} is not a valid calendar time`, 'datetime_parsing');
  }
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    offsetMin = sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  }
  const ns = (BigInt(ms) - BigInt(offsetMin) * 60_000n) * 1_000_000n + BigInt(frac.padEnd(9, '0') || '0');
  if (ns < 0n) throw bad(['query', name], `${name} is before 1970-01-01T00:00:00Z`);
  if (ns > INT64_MAX) throw bad(['query', name], `${name} is beyond the largest nanosecond timestamp`);
  return ns;
}

export interface TimeRange { sinceNs?: bigint; untilNs?: bigint }

/** `since` (inclusive) and `until` (exclusive); Strathon's start_after/start_before also accepted. */
export function parseTimeRange(req: Request): TimeRange {
  const since = queryStringAny(req, ['since', 'start_after']);
  const until = queryStringAny(req, ['until', 'start_before']);
  const range: TimeRange = {};
  if (since) range.sinceNs = parseTimeValue(since.value, since.name);
  if (until) range.untilNs = parseTimeValue(until.value, until.name);
  if (range.sinceNs !== undefined && range.untilNs !== undefined && range.sinceNs > range.untilNs) {
    throw bad(['query', since?.name ?? 'since'], `${since?.name ?? 'since'} must not be after ${until?.name ?? 'until'}`);
  }
  return range;
}

// ---- cursors ------------------------------------------------------------------------------------

/**
 * A keyset position: the start_time (microsecond timestamptz, as exact UTC text) and trace id of
 * the last row of a page, plus the span id for span lists. The kind keeps a span cursor from
 * being replayed against the trace list.
 */
export interface Keyset { kind: 'trace' | 'span'; time: string; traceId: string; spanId?: string }

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function encodeCursor(k: Keyset): string {
  const body = k.kind === 'span' ? { k: 's', t: k.time, id: k.traceId, sid: k.spanId } : { k: 't', t: k.time, id: k.traceId };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

export function parseCursor(req: Request, kind: Keyset['kind']): Keyset | undefined {
  const raw = queryString(req, 'cursor');
  if (raw === undefined) return undefined;
  const invalid = () => bad(['query', 'cursor'], 'cursor is not a cursor returned by this endpoint');
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(raw) || raw.length > 400) throw invalid();
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof body !== 'object' || body === null) throw invalid();
  const o = body as Record<string, unknown>;
  if (o.k !== (kind === 'span' ? 's' : 't')) throw invalid();
  if (typeof o.t !== 'string' || !CURSOR_TIME.test(o.t)) throw invalid();
  try {
    parseTimeValue(o.t, 'cursor'); // a real calendar time Postgres will accept
  } catch {
    throw invalid();
  }
  if (typeof o.id !== 'string' || !/^[0-9a-f]{32}$/.test(o.id)) throw invalid();
  if (kind === 'span') {
    if (typeof o.sid !== 'string' || !/^[0-9a-f]{16}$/.test(o.sid)) throw invalid();
    return { kind, time: o.t, traceId: o.id, spanId: o.sid };
  }
  return { kind, time: o.t, traceId: o.id };
}

// ---- row keysets (governance lists) -------------------------------------------------------------

/**
 * A keyset position in a list ordered by a timestamp and a UUID id (and, for policies, a leading
 * integer rank): the values of the last row of a page. The time is exact microsecond UTC text,
 * selected with keyTimeSql, so the next page neither repeats nor skips a row.
 */
export interface RowKey { time: string; id: string; rank?: number }

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The select expression giving a timestamptz column as the exact text a RowKey holds. */
export function keyTimeSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

export function encodeRowCursor(kind: string, key: RowKey): string {
  return Buffer.from(JSON.stringify({ k: kind, t: key.time, id: key.id, ...(key.rank === undefined ? {} : { r: key.rank }) })).toString('base64url');
}

/** The cursor of a list of `kind` (ranked: it also carries the rank); absent → undefined; anything else → 422. */
export function parseRowCursor(req: Request, kind: string, ranked = false): RowKey | undefined {
  const raw = queryString(req, 'cursor');
  if (raw === undefined) return undefined;
  const invalid = () => bad(['query', 'cursor'], 'cursor is not a cursor returned by this endpoint');
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(raw) || raw.length > 400) throw invalid();
  let o: Record<string, unknown>;
  try {
    const body: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (typeof body !== 'object' || body === null) throw invalid();
    o = body as Record<string, unknown>;
    parseTimeValue(String(o.t), 'cursor'); // a real calendar time Postgres will accept
  } catch {
    throw invalid();
  }
  if (o.k !== kind || typeof o.t !== 'string' || !CURSOR_TIME.test(o.t) || typeof o.id !== 'string' || !UUID_TEXT.test(o.id)) throw invalid();
  if (!ranked) return { time: o.t, id: o.id };
  if (typeof o.r !== 'number' || !Number.isSafeInteger(o.r) || Math.abs(o.r) > 2_147_483_647) throw invalid();
  return { time: o.t, id: o.id, rank: o.r };
}

/** One page of rows fetched with limit + 1, and the cursor after it (null on the last page). */
export function rowPage<T extends { id: string; key_time: string }>(rows: T[], limit: number, kind: string, rank?: (row: T) => number): { page: T[]; next_cursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const more = rows.length > limit && last !== undefined;
  return { page, next_cursor: more ? encodeRowCursor(kind, { time: last.key_time, id: last.id, ...(rank ? { rank: rank(last) } : {}) }) : null };
}
