// Where results go (bench/out/<name>.json, read by scripts/bench.mjs) and the small statistics used.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const OUT = path.join(ROOT, 'bench', 'out');
mkdirSync(OUT, { recursive: true });

/** Seconds from an env var, with a default (every duration of the benchmark is tunable). */
export function envSeconds(name, dflt) {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export const median = (values) => percentile(values, 50);
export const mean = (values) => values.reduce((a, b) => a + b, 0) / (values.length || 1);

export const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const fmtMs = (n) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : 'n/a');
export const fmtMB = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : 'n/a');
export const fmtPct = (r) => (Number.isFinite(r) ? `${(r * 100).toFixed(1)} %` : 'n/a');

/** A markdown table from a header row and rows of cells. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c ?? '').replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * Write one benchmark's result. `figures` feed the summary table of RESULTS.md:
 * { label, value (text), bound?: text, ratio?: text, target?: text, met?: boolean }.
 */
export function writeResult(name, result) {
  writeFileSync(path.join(OUT, `${name}.json`), `${JSON.stringify({ name, finishedAt: new Date().toISOString(), ...result }, null, 2)}\n`);
}

/** Progress lines go to stderr so a run shows where it is. */
export function progress(msg) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
