// Nanosecond filters → the microsecond timestamptz the time indexes are built on.
import { sql, type RawBuilder } from 'kysely';

/** UTC text of the microsecond that contains `ns` (floor), exact for Postgres to parse. */
export function microsText(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const micros = (ns / 1000n) % 1000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 23)}${micros.toString().padStart(3, '0')}Z`;
}

/** start_time as exact UTC text (the keyset position a cursor carries). */
export const cursorTimeOf = (column: string): RawBuilder<string> =>
  sql<string>`to_char(${sql.ref(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export interface NsRange { sinceNs?: bigint; untilNs?: bigint }

/** An exact UTC text time as a timestamptz operand (Kysely types the column as Date). */
export const tz = (text: string): RawBuilder<Date> => sql<Date>`${text}::timestamptz`;
