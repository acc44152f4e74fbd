// Validation of request bodies for keys, projects and members: every bad value is a 422 whose
// loc names the field (SPEC §7.1), never a 500 from Postgres.
import { isIP } from 'node:net';
import { Unprocessable } from '../errors.js';
import { validateScopes } from '../auth/keys.js';

// The body helpers every service's validation shares (one definition, in governance/input.ts).
import { bodyObject, isUuid, loc, type Body } from '../governance/input.js';

export { bodyObject, isUuid };

export function text(b: Body, field: string, max: number, opts: { required: true }): string;
export function text(b: Body, field: string, max: number, opts?: { required?: boolean }): string | undefined;
export function text(b: Body, field: string, max: number, opts: { required?: boolean } = {}): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) {
    if (opts.required) throw new Unprocessable(`${field} is required`, loc(field), 'missing');
    return undefined;
  }
  if (typeof v !== 'string') throw new Unprocessable(`${field} must be a string`, loc(field), 'string_type');
  const t = v.trim();
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(t)) throw new Unprocessable(`${field} must not contain control characters`, loc(field));
  if (t.length < 1 || t.length > max) throw new Unprocessable(`${field} must be 1 to ${max} characters`, loc(field), 'string_length');
  return t;
}

/** A scope list: known scope names (or `*`), at least one; deduplicated, `*` absorbs the rest. */
export function scopes(b: Body, field: string): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new Unprocessable(`${field} must be a list of scope names`, loc(field), 'list_type');
  if (v.length === 0) throw new Unprocessable(`${field} must name at least one scope`, loc(field), 'too_short');
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw new Unprocessable('scope must be a string', loc(field, i), 'string_type');
  });
  const list = [...new Set(v as string[])];
  const unknown = validateScopes(list);
  if (unknown !== null) throw new Unprocessable(`unknown scope: ${unknown}`, loc(field, list.indexOf(unknown)), 'enum');
  return list.includes('*') ? ['*'] : list;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?(Z|z|[+-]\d{2}:?\d{2})?$/;

/** An RFC 3339 / ISO 8601 time (no zone = UTC, a bare date = midnight UTC) strictly in the future. */
export function futureTime(b: Body, field: string): Date | null | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'string' || !ISO_TIME.test(v.trim())) {
    throw new Unprocessable(`${field} must be an RFC 3339 time, e.g. 2030-01-31T00:00:00Z`, loc(field), 'datetime_parsing');
  }
  const m = ISO_TIME.exec(v.trim()) as RegExpExecArray;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const z = zone === 'z' ? 'Z' : /^[+-]\d{4}$/.test(zone) ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone;
  const t = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${z}`);
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  const realDay = day.getUTCMonth() === Number(mo) - 1 && day.getUTCDate() === Number(d);
  if (!realDay || Number.isNaN(t.getTime()) || t.getUTCFullYear() > 9999) throw new Unprocessable(`${field} is not a valid time`, loc(field), 'datetime_parsing');
  if (t.getTime() <= Date.now()) throw new Unprocessable(`${field} must be in the future`, loc(field), 'datetime_future');
  return t;
}

export const MAX_ALLOWED_IPS = 100;

/** CIDRs (or bare addresses) a key may be used from; `[]`/null = anywhere. Returned as given, trimmed. */
export function cidrs(b: Body, field: string): string[] | null | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (!Array.isArray(v)) throw new Unprocessable(`${field} must be a list of CIDRs`, loc(field), 'list_type');
  if (v.length > MAX_ALLOWED_IPS) throw new Unprocessable(`${field} allows at most ${MAX_ALLOWED_IPS} entries`, loc(field), 'too_long');
  const out = v.map((c, i) => {
    const bad = () => new Unprocessable(`${String(c)} is not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/32)`, loc(field, i), 'ip_network');
    if (typeof c !== 'string') throw bad();
    const [addr = '', bits, ...rest] = c.trim().split('/');
    const family = isIP(addr);
    if (family === 0 || rest.length > 0 || addr.includes('%')) throw bad();
    if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))) throw bad();
    return c.trim();
  });
  return out.length === 0 ? null : out;
}

/** An integer in [min, max]; absent → undefined. */
export function intInRange(b: Body, field: string, min: number, max: number): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Unprocessable(`${field} must be an integer`, loc(field), 'int_type');
  if (v < min || v > max) throw new Unprocessable(`${field} must be between ${min} and ${max}`, loc(field), v < min ? 'greater_than_equal' : 'less_than_equal');
  return v;
}

/** A plausible email address (one @, no spaces), lowercased for comparison. */
export function email(b: Body, field: string): string {
  const e = text(b, field, 320, { required: true });
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e)) throw new Unprocessable(`${field} is not an email address`, loc(field), 'value_error');
  return e.toLowerCase();
}
