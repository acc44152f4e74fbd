// Numbers, money, times and durations as people read them. Inputs come from the API (strings for
// int64 and decimals) or Postgres, so every function accepts the loose shapes and never throws.
import { html, type Html } from './http/html.js';

/** 1234567 → "1,234,567"; exact for int64 strings. */
export function fmtInt(v: number | string | bigint | null | undefined): string {
  if (v === null || v === undefined || v === '') return '–';
  const s = typeof v === 'number' ? String(Math.round(v)) : String(v);
  if (!/^-?\d+$/.test(s)) return s;
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A decimal USD string → "$0.0123" (up to 6 decimals, small non-zero amounts never shown as $0). */
export function fmtUsd(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return '–';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (n === 0) return '$0';
  const abs = Math.abs(n);
  if (abs < 0.000001) return n < 0 ? '-<$0.000001' : '<$0.000001';
  const digits = abs >= 100 ? 2 : abs >= 1 ? 4 : 6;
  return `${n < 0 ? '-' : ''}$${abs.toFixed(digits).replace(/(\.\d*?[1-9])0+$/, '$1').replace(/\.0+$/, '')}`;
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 60_000) return `${Math.round(ms / 10) / 100} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function toDate(v: string | Date | null | undefined): Date | undefined {
  if (!v) return undefined;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** `<time>` in UTC, second precision; the full value stays in the datetime attribute. */
export function fmtTime(v: string | Date | null | undefined): Html {
  const d = toDate(v);
  if (!d) return html`–`;
  const full = v instanceof Date ? v.toISOString() : String(v);
  return html`<time datetime="${full}">${d.toISOString().slice(0, 19).replace('T', ' ')} UTC</time>`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${fmtInt(n)} ${n === 1 ? one : many}`;
}

/** Attribute values from the API (plain JSON) as one line of text. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}
