// HTML by template literals: every interpolated value is escaped unless it is already Html.
// Pages never build markup by string concatenation, so nothing a user or the API sends can
// become markup (and the CSP forbids inline script anyway).

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const SPECIAL = /[&<>"']/;

/** Most values (ids, names, numbers) need no escaping: test first, replace only then (a big trace has ~50k values). */
export function escapeHtml(s: string): string {
  return SPECIAL.test(s) ? s.replace(/[&<>"']/g, (c) => ENTITIES[c] as string) : s;
}

export type Renderable = Html | string | number | bigint | boolean | null | undefined | Renderable[];

function render(v: Renderable): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) {
    let out = '';
    for (const x of v) out += render(x);
    return out;
  }
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i] as Renderable) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** Markup known to be safe (our own constants); never pass it anything from a request or the API. */
export function trusted(s: string): Html {
  return new Html(s);
}

export function join(parts: Renderable[], sep: Renderable = ''): Html {
  return new Html(parts.map(render).join(render(sep)));
}
