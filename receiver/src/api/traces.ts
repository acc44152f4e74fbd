// GET /v1/traces (keyset list), GET /v1/traces/{trace_id}, GET /v1/traces/{trace_id}/tree.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { NotFound } from '../errors.js';
import { listTraces, getTrace, traceWithSpans, type TraceDetailRow } from '../query/traces.js';
import { spanTreeOfTrace, type SpanSummaryRow } from '../query/spans.js';
import { principalOf } from './app.js';
import { scope, type Route } from './routes.js';
import {
  containsPattern, encodeCursor, parseCursor, parseDecimal, parseEnum, parseLimit, parseTimeRange, parseTraceId, queryString,
} from './params.js';
import { eventJson, linkJson, spanJson, traceJson, treeNodeJson, type TreeNode } from './serialize.js';

/** A trace larger than this is returned truncated (in start order) with `truncated: true`. */
export const MAX_TRACE_SPANS = 10_000;

async function traceOr404(ctx: ReceiverContext, projectId: string, req: Request): Promise<TraceDetailRow> {
  const id = parseTraceId(String(req.params.trace_id ?? ''), ['path', 'trace_id']);
  const t = await getTrace(ctx.db, projectId, id);
  // Unknown and other-project traces are indistinguishable: both 404.
  if (!t) throw new NotFound(`trace ${id} not found`);
  return t;
}

const windowOf = (t: TraceDetailRow) => ({ traceIdHex: t.trace_id.toString('hex'), startText: t.cursor_time, endText: t.end_time_text });

/**
 * Nest spans under their parents. The root is the earliest span without a parent, else (root
 * span not received) the earliest span. Orphans (parent never received), extra parentless
 * spans and spans caught in a parent cycle hang under the root, so every span appears once.
 */
export function buildTree(rows: SpanSummaryRow[]): TreeNode | null {
  if (rows.length === 0) return null;
  const nodes = rows.map(treeNodeJson);
  const byId = new Map<string, TreeNode>();
  for (const n of nodes) if (!byId.has(n.span_id)) byId.set(n.span_id, n);
  const root = nodes.find((n) => n.parent_span_id === null) ?? (nodes[0] as TreeNode);
  const parentOf = new Map<TreeNode, TreeNode>();
  for (const n of nodes) {
    if (n === root) continue;
    const p = n.parent_span_id === null ? undefined : byId.get(n.parent_span_id);
    const parent = p && p !== n ? p : root;
    parent.children.push(n);
    parentOf.set(n, parent);
  }
  // Anything not reachable from the root sits in a parent cycle: cut it loose under the root.
  const reached = new Set<TreeNode>();
  const mark = (start: TreeNode) => {
    const stack = [start];
    while (stack.length) {
      const n = stack.pop() as TreeNode;
      if (reached.has(n)) continue;
      reached.add(n);
      for (const c of n.children) stack.push(c);
    }
  };
  mark(root);
  for (const n of nodes) {
    if (reached.has(n)) continue;
    const p = parentOf.get(n);
    if (p) p.children.splice(p.children.indexOf(n), 1);
    root.children.push(n);
    mark(n);
  }
  return root;
}

/**
 * Nesting deeper than this is flattened: the descendants of a node at this depth become its
 * direct children (pre-order; each keeps its real parent_span_id). JSON parsers and the CLI's
 * recursive printer (Python's limit is 1000 frames) fail on pathologically deep trees.
 */
export const MAX_TREE_DEPTH = 200;

/** Flattens below MAX_TREE_DEPTH; true when anything was moved. */
export function limitDepth(root: TreeNode): boolean {
  let limited = false;
  const stack: [TreeNode, number][] = [[root, 1]];
  while (stack.length) {
    const [n, depth] = stack.pop() as [TreeNode, number];
    if (depth < MAX_TREE_DEPTH - 1) {
      for (const c of n.children) stack.push([c, depth + 1]);
      continue;
    }
    if (!n.children.some((c) => c.children.length > 0)) continue;
    const flat: TreeNode[] = [];
    const pending = [...n.children].reverse();
    while (pending.length) {
      const c = pending.pop() as TreeNode;
      flat.push(c);
      for (let i = c.children.length - 1; i >= 0; i--) pending.push(c.children[i] as TreeNode);
      c.children = [];
    }
    n.children = flat;
    limited = true;
  }
  return limited;
}

export function traceRoutes(ctx: ReceiverContext): Route[] {
  const read = scope('traces:read');

  const list = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const limit = parseLimit(req);
    const after = parseCursor(req, 'trace');
    const q = queryString(req, 'q');
    const rows = await listTraces(ctx.db, projectId, {
      agentName: queryString(req, 'agent_name'),
      service: queryString(req, 'service') ?? queryString(req, 'service_name'),
      model: queryString(req, 'model'),
      status: parseEnum(req, 'status', ['ok', 'error'] as const),
      minCostUsd: parseDecimal(req, 'min_cost_usd'),
      qPattern: q === undefined ? undefined : containsPattern(q),
      ...parseTimeRange(req),
    }, after, limit);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const next = rows.length > limit && last ? encodeCursor({ kind: 'trace', time: last.cursor_time, traceId: last.trace_id.toString('hex') }) : null;
    const data = page.map((t) => traceJson(t, projectId));
    // `traces` too: the Strathon CLI's `policies test` reads that key (Strathon itself answers only
    // `data`, so the command never tests anything there).
    res.json({ data, traces: data, next_cursor: next });
  };

  // One statement: the summary and the spans with their events and links (query/traces.ts traceWithSpans).
  const one = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const id = parseTraceId(String(req.params.trace_id ?? ''), ['path', 'trace_id']);
    const t = await traceWithSpans(ctx.db, ctx.pool, projectId, id, MAX_TRACE_SPANS + 1);
    if (!t) throw new NotFound(`trace ${id} not found`);
    res.json({
      trace: traceJson(t, projectId),
      spans: t.spans.slice(0, MAX_TRACE_SPANS).map((s) => spanJson(s, projectId, (s.events ?? []).map(eventJson), (s.links ?? []).map(linkJson))),
      truncated: t.spans.length > MAX_TRACE_SPANS,
    });
  };

  const tree = async (req: Request, res: Response) => {
    const { projectId } = principalOf(res);
    const t = await traceOr404(ctx, projectId, req);
    const rows = await spanTreeOfTrace(ctx.db, projectId, windowOf(t), MAX_TRACE_SPANS + 1);
    const spans = rows.slice(0, MAX_TRACE_SPANS);
    const root = buildTree(spans);
    const depthLimited = root ? limitDepth(root) : false;
    res.json({
      trace: traceJson(t, projectId),
      root,
      span_count: spans.length,
      truncated: rows.length > MAX_TRACE_SPANS,
      depth_limited: depthLimited,
    });
  };

  return [
    { method: 'GET', path: '/v1/traces', auth: read, body: 'none', handler: list },
    { method: 'GET', path: '/v1/traces/:trace_id', auth: read, body: 'none', handler: one },
    { method: 'GET', path: '/v1/traces/:trace_id/tree', auth: read, body: 'none', handler: tree },
  ];
}
