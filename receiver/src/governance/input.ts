// Validation of governance request bodies: every bad value is a 422 whose loc names the field
// (SPEC §7.1), never a 500 from Postgres.
import { Unprocessable } from '../errors.js';

export type Body = Record<string, unknown>;
export const loc = (...path: (string | number)[]) => ['body', ...path];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (v: string): boolean => UUID.test(v);

/** The JSON body as an object; an absent body is `{}`. */
export function bodyObject(body: unknown): Body {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new Unprocessable('body must be a JSON object', ['body'], 'model_type');
  return body as Body;
}

export const has = (b: Body, field: string): boolean => b[field] !== undefined;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** Text of 1..max characters (trimmed); control characters refused, newlines and tabs allowed when `multiline`. */
export function text(b: Body, field: string, max: number, opts: { required: true; multiline?: boolean }): string;
export function text(b: Body, field: string, max: number, opts?: { required?: boolean; multiline?: boolean }): string | undefined;
export function text(b: Body, field: string, max: number, opts: { required?: boolean; multiline?: boolean } = {}): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) {
    if (opts.required) throw new Unprocessable(`${field} is required`, loc(field), 'missing');
    return undefined;
  }
  if (typeof v !== 'string') throw new Unprocessable(`${field} must be a string`, loc(field), 'string_type');
  const t = v.trim();
  // eslint-disable-next-line no-control-regex
  if (v.includes('\u0000') || (opts.multiline ? CONTROL.test(t) : /[\u0000-\u001f\u007f]/.test(t))) {
    throw new Unprocessable(`${field} must not contain control characters`, loc(field));
  }
  if (t.length < 1 || t.length > max) throw new Unprocessable(`${field} must be 1 to ${max} characters`, loc(field), 'string_length');
  return t;
}

/** Optional text that may be explicitly null (cleared) or empty. */
export function optionalText(b: Body, field: string, max: number): string | null | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (v === null || v === '') return null;
  return text(b, field, max, { multiline: true });
}

export function bool(b: Body, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new Unprocessable(`${field} must be true or false`, loc(field), 'bool_type');
  return v;
}

/** An integer in [min, max]; a numeric string of an integer is accepted too (Strathon sends some as strings). */
export function int(b: Body, field: string, min: number, max: number): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\s*-?\d{1,15}(\.0*)?\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new Unprocessable(`${field} must be an integer`, loc(field), 'int_type');
  if (n < min || n > max) throw new Unprocessable(`${field} must be between ${min} and ${max}`, loc(field), n < min ? 'greater_than_equal' : 'less_than_equal');
  return n;
}

export function oneOf<T extends string>(b: Body, field: string, allowed: readonly T[]): T | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new Unprocessable(`${field} must be one of: ${allowed.join(', ')}`, loc(field), 'enum');
  }
  return v as T;
}

/** A list of distinct non-empty strings (at most `maxItems`, each at most `maxLength`). */
export function stringList(b: Body, field: string, maxItems: number, maxLength: number): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new Unprocessable(`${field} must be a list of strings`, loc(field), 'list_type');
  if (v.length > maxItems) throw new Unprocessable(`${field} allows at most ${maxItems} entries`, loc(field), 'too_long');
  const out: string[] = [];
  v.forEach((s, i) => {
    // eslint-disable-next-line no-control-regex
    if (typeof s !== 'string' || !s.trim() || s.length > maxLength || /[\u0000-\u001f\u007f]/.test(s)) {
      throw new Unprocessable(`each entry must be a non-empty string of at most ${maxLength} characters`, loc(field, i), 'string_type');
    }
    if (!out.includes(s.trim())) out.push(s.trim());
  });
  return out;
}

/** A JSON object of at most `maxBytes` when serialized. */
export function jsonObject(b: Body, field: string, maxBytes: number): Record<string, unknown> | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new Unprocessable(`${field} must be a JSON object`, loc(field), 'dict_type');
  if (JSON.stringify(v).length > maxBytes) throw new Unprocessable(`${field} must be at most ${maxBytes} bytes of JSON`, loc(field), 'too_long');
  return v as Record<string, unknown>;
}

const DECIMAL = /^\s*\d{1,10}(\.\d{1,10})?\s*$/;

/** A positive USD amount (decimal string or JSON number) as a canonical decimal string. */
export function money(b: Body, field: string): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  let s: string | undefined;
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v < 1e10) s = v.toFixed(10);
  else if (typeof v === 'string' && DECIMAL.test(v)) s = v.trim();
  if (s === undefined) throw new Unprocessable(`${field} must be a decimal amount of USD, e.g. "25.00"`, loc(field), 'decimal_parsing');
  if (!/[1-9]/.test(s)) throw new Unprocessable(`${field} must be greater than 0`, loc(field), 'greater_than');
  return s;
}
