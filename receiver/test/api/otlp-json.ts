// Test data for the query API: OTLP/JSON export requests built span by span, posted to a real receiver.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

export type AnyValue =
  | { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean } | { bytesValue: string }
  | { arrayValue: { values: AnyValue[] } } | { kvlistValue: { values: { key: string; value: AnyValue }[] } };

export const av = {
  s: (v: string): AnyValue => ({ stringValue: v }),
  i: (v: number | bigint | string): AnyValue => ({ intValue: String(v) }),
  d: (v: number): AnyValue => ({ doubleValue: v }),
  b: (v: boolean): AnyValue => ({ boolValue: v }),
};

export interface SpanSpec {
  traceId: string; spanId?: string; parentSpanId?: string; name: string; startNs: bigint; endNs?: bigint;
  kind?: number; status?: { code: number; message?: string }; attrs?: Record<string, AnyValue>;
  events?: { name: string; timeNs: bigint; attrs?: Record<string, AnyValue> }[];
  links?: { traceId: string; spanId: string; attrs?: Record<string, AnyValue> }[];
}

export const traceId = () => randomBytes(16).toString('hex');
export const spanId = () => randomBytes(8).toString('hex');
const kv = (attrs: Record<string, AnyValue> = {}) => Object.entries(attrs).map(([key, value]) => ({ key, value }));

export function exportRequest(service: string, spans: SpanSpec[], resource: Record<string, AnyValue> = {}) {
  return {
    resourceSpans: [{
      resource: { attributes: kv({ 'service.name': av.s(service), ...resource }) },
      scopeSpans: [{
        scope: { name: 'query-api-test', version: '1' },
        spans: spans.map((s) => ({
          traceId: s.traceId, spanId: s.spanId ?? spanId(), parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind ?? 1,
          startTimeUnixNano: s.startNs.toString(), endTimeUnixNano: (s.endNs ?? s.startNs + 1_000_000n).toString(),
          attributes: kv(s.attrs), status: s.status ?? { code: 0 },
          events: (s.events ?? []).map((e) => ({ name: e.name, timeUnixNano: e.timeNs.toString(), attributes: kv(e.attrs) })),
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: kv(l.attrs) })),
        })),
      }],
    }],
  };
}

/** POST spans as OTLP JSON; asserts they were all accepted (200, no partial rejection). */
export async function postSpans(url: string, key: string, service: string, spans: SpanSpec[], resource: Record<string, AnyValue> = {}): Promise<void> {
  const res = await fetch(`${url}/v1/traces`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(exportRequest(service, spans, resource)),
  });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  assert.ok(!body.includes('rejected'), body);
}

/** GET a query-API path with a key; returns status and parsed JSON body. */
export async function getJson(url: string, key: string | undefined, path: string, params: Record<string, string | number | boolean | undefined> = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) qs.append(k, String(v));
  const s = qs.toString();
  const res = await fetch(`${url}${path}${s ? `?${s}` : ''}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const text = await res.text();
  let body: any;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body };
}

/** Nanoseconds for a UTC ISO time plus an offset in ns. */
export const ns = (iso: string, plus = 0n) => BigInt(Date.parse(iso)) * 1_000_000n + plus;
