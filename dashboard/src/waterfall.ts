// A trace's spans as waterfall rows: depth-first from the roots (spans without a parent in the
// trace), children in start order, each with its offset and duration on the trace's time axis.
// Spans whose parent never arrived are roots; a span caught in a parent cycle is shown once, at
// the top level, so every span appears exactly once.

export interface WaterfallSpan {
  span_id: string;
  parent_span_id: string | null;
  name: string;
  start_time_unix_nano: number | string;
  end_time_unix_nano: number | string;
}

export interface WaterfallRow<S> { span: S; depth: number; offsetMs: number; durationMs: number }

export function waterfall<S extends WaterfallSpan>(spans: S[]): { rows: WaterfallRow<S>[]; totalMs: number } {
  if (spans.length === 0) return { rows: [], totalMs: 0 };
  const start = (s: S) => BigInt(s.start_time_unix_nano);
  const end = (s: S) => BigInt(s.end_time_unix_nano);
  const t0 = spans.reduce((m, s) => (start(s) < m ? start(s) : m), start(spans[0] as S));
  const t1 = spans.reduce((m, s) => (end(s) > m ? end(s) : m), end(spans[0] as S));
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string, S[]>();
  const roots: S[] = [];
  for (const s of spans) {
    if (s.parent_span_id && s.parent_span_id !== s.span_id && ids.has(s.parent_span_id)) {
      const list = children.get(s.parent_span_id) ?? [];
      list.push(s);
      children.set(s.parent_span_id, list);
    } else {
      roots.push(s);
    }
  }
  const byStart = (a: S, b: S) => (start(a) < start(b) ? -1 : start(a) > start(b) ? 1 : a.span_id.localeCompare(b.span_id));
  const rows: WaterfallRow<S>[] = [];
  const seen = new Set<S>();
  const ms = (ns: bigint) => Number(ns / 1000n) / 1000;
  const walk = (top: S) => {
    const stack: [S, number][] = [[top, 0]];
    while (stack.length) {
      const [s, depth] = stack.pop() as [S, number];
      if (seen.has(s)) continue;
      seen.add(s);
      rows.push({ span: s, depth, offsetMs: ms(start(s) - t0), durationMs: ms(end(s) > start(s) ? end(s) - start(s) : 0n) });
      const kids = [...(children.get(s.span_id) ?? [])].sort(byStart);
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i] as S, depth + 1]);
    }
  };
  for (const r of roots.sort(byStart)) walk(r);
  // Only spans in a parent cycle are left: show them rather than lose them.
  for (const s of [...spans].sort(byStart)) if (!seen.has(s)) walk(s);
  return { rows, totalMs: ms(t1 - t0) };
}
