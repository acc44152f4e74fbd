// GET /v1/spans: span search with filters and keyset pagination (newest first).
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { eventsOf, linksOf, listSpans, type SpanDetailRow, type SpanKey } from '../query/spans.js';
import { principalOf } from './app.js';
import { scope, type Route } from './routes.js';
import {
  containsPattern, encodeCursor, parseBool, parseCursor, parseEnum, parseLimit, parseTimeRange, parseTraceId, queryString,
} from './params.js';
import { eventJson, linkJson, spanJson } from './serialize.js';

type Row = SpanDetailRow & { cursor_time: string };

const keyOf = (traceId: Buffer, spanId: Buffer, startText: string) => `${traceId.toString('hex')}/${spanId.toString('hex')}/${startText}`;

/** Full span JSON for rows, with their events and links fetched in two statements (only for spans that have any). */
export async function spansWithDetail(ctx: ReceiverContext, projectId: string, rows: Row[]) {
  const keys = (pred: (s: Row) => boolean): SpanKey[] => rows.filter(pred)
    .map((s) => ({ traceIdHex: s.trace_id.toString('hex'), spanIdHex: s.span_id.toString('hex'), startText: s.cursor_time }));
  const [events, links] = await Promise.all([
    eventsOf(ctx.db, projectId, keys((s) => s.event_count > 0)),
    linksOf(ctx.db, projectId, keys((s) => s.link_count > 0)),
  ]);
  const eventsBy = new Map<string, ReturnType<typeof eventJson>[]>();
  for (const e of events) {
    const k = keyOf(e.trace_id, e.span_id, e.st);
    const list = eventsBy.get(k) ?? [];
    list.push(eventJson(e));
    eventsBy.set(k, list);
  }
  const linksBy = new Map<string, ReturnType<typeof linkJson>[]>();
  for (const l of links) {
    const k = keyOf(l.trace_id, l.span_id, l.st);
    const list = linksBy.get(k) ?? [];
    list.push(linkJson(l));
    linksBy.set(k, list);
  }
  return rows.map((s) => {
    const k = keyOf(s.trace_id, s.span_id, s.cursor_time);
    return spanJson(s, projectId, eventsBy.get(k) ?? [], linksBy.get(k) ?? []);
  });
}

export function spanRoutes(ctx: ReceiverContext): Route[] {
  const list = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const limit = parseLimit(req);
    const after = parseCursor(req, 'span');
    const traceId = queryString(req, 'trace_id');
    const q = queryString(req, 'q');
    const rows = await listSpans(ctx.db, projectId, {
      traceIdHex: traceId === undefined ? undefined : parseTraceId(traceId, ['query', 'trace_id']),
      agentName: queryString(req, 'agent_name'),
      toolName: queryString(req, 'tool_name'),
      requestModel: queryString(req, 'request_model') ?? queryString(req, 'model'),
      service: queryString(req, 'service') ?? queryString(req, 'service_name'),
      isLlm: parseBool(req, 'is_llm'),
      isTool: parseBool(req, 'is_tool'),
      status: parseEnum(req, 'status', ['ok', 'error'] as const),
      qPattern: q === undefined ? undefined : containsPattern(q),
      ...parseTimeRange(req),
    }, after ? { time: after.time, traceId: after.traceId, spanId: after.spanId ?? '' } : undefined, limit);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const next = rows.length > limit && last
      ? encodeCursor({ kind: 'span', time: last.cursor_time, traceId: last.trace_id.toString('hex'), spanId: last.span_id.toString('hex') })
      : null;
    res.json({ data: await spansWithDetail(ctx, projectId, page), next_cursor: next });
  };
  return [{ method: 'GET', path: '/v1/spans', auth: scope('traces:read'), body: 'none', handler: list }];
}
