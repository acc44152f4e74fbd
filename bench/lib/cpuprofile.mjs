// Summarise a V8 .cpuprofile: self and inclusive samples per function, mapped to .ts via source maps.
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const maps = new Map();

function sourceMapFor(file) {
  if (!maps.has(file)) {
    let map;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = undefined;
    }
    maps.set(file, map);
  }
  return maps.get(file);
}

const sources = new Map();

/** Column of the first non-blank character of a generated line (col 0 maps to the line before). */
function firstColumn(url, line) {
  try {
    if (!sources.has(url)) sources.set(url, readFileSync(url.startsWith('file://') ? fileURLToPath(url) : url, 'utf8').split('\n'));
    return Math.max(0, (sources.get(url)[line] ?? '').search(/\S/));
  } catch {
    return 0;
  }
}

/** "file:line" (1-based) for a call frame, the .ts original when a source map exists. */
function location(frame, root) {
  const url = frame.url ?? '';
  if (!url) return '';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = path.isAbsolute(file) ? path.relative(root, file) : file;
  const map = path.isAbsolute(file) ? sourceMapFor(file) : undefined;
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
  if (entry?.originalSource) {
    const orig = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource);
    return `${path.relative(root, orig)}:${entry.originalLine + 1}`;
  }
  return `${rel}:${frame.lineNumber + 1}`;
}

/** Coarse owner of a frame, to say what dominates: a receiver file, a package, node internals or V8. */
function owner(frame, root) {
  const url = frame.url ?? '';
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native / V8 builtins)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] === 'internal' ? url.slice(5).split('/').slice(0, 2).join('/') : url.slice(5)}`;
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = path.relative(root, file);
  const nm = rel.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = rel.slice(nm + 13).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  return rel.replace(/\/dist\//, '/src/').replace(/\.js$/, '.ts');
}

export function summarizeProfile(file, root, top = 5) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n) => `${n.callFrame.functionName || '(anonymous)'}@${n.callFrame.url}:${n.callFrame.lineNumber}:${n.callFrame.columnNumber}`;

  const self = new Map();
  const lines = new Map();
  const inclusive = new Map();
  const owners = new Map();
  const info = new Map();
  let total = 0;
  let idle = 0;
  for (const id of profile.samples) {
    const n = byId.get(id);
    total++;
    if (n.callFrame.functionName === '(idle)') {
      idle++;
      continue;
    }
    const k = key(n);
    info.set(k, n.callFrame);
    self.set(k, (self.get(k) ?? 0) + 1);
    if (!lines.has(k)) lines.set(k, new Map());
    const o = owner(n.callFrame, root);
    owners.set(o, (owners.get(o) ?? 0) + 1);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur);
      const ck = key(cn);
      if (seen.has(ck)) continue;
      seen.add(ck);
      info.set(ck, cn.callFrame);
      inclusive.set(ck, (inclusive.get(ck) ?? 0) + 1);
    }
  }
  // Line-level hits (positionTicks, 1-based lines of the running file) per function.
  for (const n of profile.nodes) {
    const per = lines.get(key(n));
    if (per) for (const t of n.positionTicks ?? []) per.set(t.line, (per.get(t.line) ?? 0) + t.ticks);
  }
  const hottestLine = (k) => {
    const per = lines.get(k);
    if (!per || per.size === 0 || !info.get(k).url) return '';
    const [line, ticks] = [...per].sort((a, b) => b[1] - a[1])[0];
    const all = [...per.values()].reduce((a, b) => a + b, 0);
    const loc = location({ ...info.get(k), lineNumber: line - 1, columnNumber: firstColumn(info.get(k).url, line - 1) }, root);
    return `${loc} (${Math.round((ticks / all) * 100)} % of its samples)`;
  };
  const busy = total - idle;
  const entry = (k, n) => {
    const f = info.get(k);
    return { name: f.functionName || '(anonymous)', location: location(f, root), hottestLine: hottestLine(k), samples: n, pctBusy: n / busy, pctTotal: n / total };
  };
  const rank = (m) => [...m].sort((a, b) => b[1] - a[1]);
  const durationS = (profile.endTime - profile.startTime) / 1e6;
  return {
    durationS, samples: total, idle, busy,
    topSelf: rank(self).slice(0, top).map(([k, n]) => entry(k, n)),
    topSelf20: rank(self).slice(0, 20).map(([k, n]) => entry(k, n)),
    // Inclusive time of the receiver's own functions (not the event loop / framework roots).
    topReceiverInclusive: rank(inclusive)
      .filter(([k]) => info.get(k).url.includes('/receiver/dist/'))
      .slice(0, 15).map(([k, n]) => entry(k, n)),
    owners: rank(owners).slice(0, 12).map(([o, n]) => ({ owner: o, samples: n, pctBusy: n / busy })),
  };
}
