// Small pieces every page uses: notices, the CSRF field, pagination, sections that fail alone.
import { ApiError, explain } from './api.js';
import { DbUnavailable } from './db/pool.js';
import { CSRF_FIELD } from './http/csrf.js';
import { html, type Html } from './http/html.js';

export function csrfInput(token: string): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}

export function notice(kind: 'ok' | 'error' | 'info' | 'unavailable', text: string, extra?: Html): Html {
  // Errors interrupt (alert); confirmations and facts are polite (status).
  const role = kind === 'error' ? 'alert' : 'status';
  return html`<div class="notice notice-${kind}" role="${role}"><p>${text}</p>${extra ?? ''}</div>`;
}

/** Rethrown: the dispatcher turns these into a redirect (sign-in, password change, project picker). */
function mustPropagate(err: unknown): boolean {
  return err instanceof ApiError && (err.kind === 'session' || err.kind === 'password_change' || err.kind === 'project_required');
}

/** Why a section could not be shown, as the page says it. */
export function failure(err: unknown): Html {
  if (err instanceof ApiError) return notice(err.kind === 'not_available' ? 'unavailable' : 'error', explain(err));
  if (err instanceof DbUnavailable) return notice('error', `Not shown: ${err.message}.`);
  throw err;
}

/** Render one part of a page; a failed API call or query becomes a notice in its place. */
export async function section(render: () => Promise<Html>): Promise<Html> {
  try {
    return await render();
  } catch (err) {
    if (mustPropagate(err)) throw err;
    return failure(err);
  }
}

/** Keyset pagination: the API's next_cursor becomes a "Next page" link keeping the filters. */
export function cursorPager(base: string, params: URLSearchParams, nextCursor: string | null | undefined, hasCursor: boolean): Html {
  const first = new URLSearchParams(params);
  first.delete('cursor');
  const next = new URLSearchParams(params);
  if (nextCursor) next.set('cursor', nextCursor);
  const qs = (p: URLSearchParams) => (p.toString() ? `?${p.toString()}` : '');
  return html`<nav class="pager" aria-label="Pagination">
    ${hasCursor ? html`<a href="${base}${qs(first)}">« First page</a>` : html`<span class="muted">First page</span>`}
    ${nextCursor ? html`<a href="${base}${qs(next)}" rel="next">Next page »</a>` : html`<span class="muted">No more results</span>`}
  </nav>`;
}

export const PAGE_SIZE = 50;

/** Page numbers over a list the API returns whole (agents, halts, budgets …): `?page=N`. */
export function paginate<T>(items: T[], pageParam: string, size = PAGE_SIZE): { items: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const n = Number(pageParam);
  const page = Number.isInteger(n) && n >= 1 ? Math.min(n, pages) : 1;
  return { items: items.slice((page - 1) * size, page * size), page, pages };
}

export function pageLinks(base: string, params: URLSearchParams, page: number, pages: number, param = 'page'): Html {
  if (pages <= 1) return html``;
  const link = (n: number) => {
    const p = new URLSearchParams(params);
    p.set(param, String(n));
    return `${base}?${p.toString()}`;
  };
  return html`<nav class="pager" aria-label="Pagination">
    ${page > 1 ? html`<a href="${link(page - 1)}" rel="prev">« Previous</a>` : html`<span class="muted">« Previous</span>`}
    <span>Page ${page} of ${pages}</span>
    ${page < pages ? html`<a href="${link(page + 1)}" rel="next">Next »</a>` : html`<span class="muted">Next »</span>`}
  </nav>`;
}

export function emptyRow(cols: number, text: string): Html {
  return html`<tr><td colspan="${cols}" class="empty">${text}</td></tr>`;
}
