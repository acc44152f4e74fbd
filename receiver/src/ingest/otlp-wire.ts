// OTLP wire formats: protobuf via protobufjs against the official .proto files, and OTLP JSON
// (lowerCamelCase or snake_case, hex ids, enum names or numbers, exact int64) mapped to the same shape.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';
import Long from 'long';
import { parse as losslessParse, isSafeNumber } from 'lossless-json';
import { BadRequest } from '../errors.js';

protobuf.util.Long = Long as unknown as typeof protobuf.util.Long;
protobuf.configure();

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
// google.rpc.Status (google/rpc/status.proto), defined inline: code, message, details (Any).
root.add(
  protobuf.Root.fromJSON({
    nested: {
      google: {
        nested: {
          protobuf: { nested: { Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } } } },
          rpc: { nested: { Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 } } } } },
        },
      },
    },
  }).nested!.google as protobuf.Namespace,
);

/**
 * protobufjs keeps a oneof's members exclusive with a setter that `delete`s every other member each
 * time one is decoded: for AnyValue (every attribute value) that is seven deletes, mostly of absent
 * properties, each a V8 runtime call; it measured as half the time of decoding the benchmark's
 * requests (4.1 → 2.1 µs/span). Same semantics (the last member decoded wins), cheaper: a subclass
 * whose setter deletes only the members present. Installed as the type's constructor before its
 * decoder is generated, which captures it.
 */
function cheapOneofSetters(type: protobuf.Type): void {
  const Stock = type.ctor as unknown as { new (p?: object): object; prototype: object };
  const properties: PropertyDescriptorMap = {};
  for (const oneof of type.oneofsArray) {
    const members = [...oneof.oneof];
    const stock = Object.getOwnPropertyDescriptor(Stock.prototype, oneof.name);
    properties[oneof.name] = {
      configurable: true,
      get: stock?.get,
      set(this: Record<string, unknown>, name: string) {
        for (const m of members) if (m !== name && Object.prototype.hasOwnProperty.call(this, m)) delete this[m];
      },
    };
  }
  function Message(this: object, p?: object) {
    Stock.call(this, p);
  }
  Message.prototype = Object.create(Stock.prototype, { ...properties, constructor: { value: Message, configurable: true, writable: true } });
  // `_ctor`, not the `ctor` setter: the setter would put protobufjs's own oneof setters back on it.
  (type as unknown as { _ctor: unknown })._ctor = Message;
  type.setup();
  if (type.ctor !== (Message as unknown)) throw new Error(`protobufjs internals changed: cannot install the ${type.name} constructor`);
}
cheapOneofSetters(root.lookupType('opentelemetry.proto.common.v1.AnyValue'));

export const ExportRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
export const ExportResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const RpcStatus = root.lookupType('google.rpc.Status');

/** The decoded shape both encodings produce (protobufjs message objects or plain objects alike). */
export type Int64Like = Long | string | number | bigint;
export interface AnyValueShape {
  stringValue?: string; boolValue?: boolean; intValue?: Int64Like; doubleValue?: number | string;
  bytesValue?: Uint8Array; arrayValue?: { values?: AnyValueShape[] }; kvlistValue?: { values?: KeyValueShape[] };
}
export interface KeyValueShape { key?: string; value?: AnyValueShape | null }
export interface EventShape { timeUnixNano?: Int64Like; name?: string; attributes?: KeyValueShape[]; droppedAttributesCount?: number }
export interface LinkShape { traceId?: Uint8Array | string; spanId?: Uint8Array | string; traceState?: string; attributes?: KeyValueShape[]; droppedAttributesCount?: number; flags?: number }
export interface SpanShape {
  traceId?: Uint8Array | string; spanId?: Uint8Array | string; parentSpanId?: Uint8Array | string; traceState?: string; flags?: number;
  name?: string; kind?: number; startTimeUnixNano?: Int64Like; endTimeUnixNano?: Int64Like;
  attributes?: KeyValueShape[]; droppedAttributesCount?: number; events?: EventShape[]; droppedEventsCount?: number;
  links?: LinkShape[]; droppedLinksCount?: number; status?: { code?: number; message?: string } | null;
  /** Set by the JSON reader when a field of this span has the wrong type. */
  invalid?: string;
}
export interface ScopeSpansShape { scope?: { name?: string; version?: string; attributes?: KeyValueShape[]; droppedAttributesCount?: number } | null; spans?: SpanShape[]; schemaUrl?: string }
export interface ResourceSpansShape { resource?: { attributes?: KeyValueShape[]; droppedAttributesCount?: number } | null; scopeSpans?: ScopeSpansShape[]; schemaUrl?: string }
export interface ExportRequestShape { resourceSpans?: ResourceSpansShape[] }

export function decodeProtobuf(body: Buffer): ExportRequestShape {
  try {
    return ExportRequest.decode(body) as unknown as ExportRequestShape;
  } catch (err) {
    const msg = err instanceof RangeError ? 'message nested too deeply or truncated' : (err as Error).message;
    throw new BadRequest(`malformed protobuf ExportTraceServiceRequest: ${msg}`);
  }
}

// ---------------------------------------------------------------------------------------------
// OTLP JSON

// A number token (after ':', ',' or '[') with 16+ digits; ids and int64s sent as strings ("1700…") don't match.
const BIG_INT_TOKEN = /[:,[]\s*-?\d{16,}/;

function parseJsonText(text: string): unknown {
  // Fast path: JSON.parse is exact unless an integer token has 16+ digits (beyond 2^53).
  if (!BIG_INT_TOKEN.test(text)) return JSON.parse(text);
  return losslessParse(text, undefined, (s: string) => (isSafeNumber(s) ? Number(s) : /^-?\d+$/.test(s) ? s : Number(s)));
}

const SPAN_KINDS: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0, SPAN_KIND_INTERNAL: 1, SPAN_KIND_SERVER: 2, SPAN_KIND_CLIENT: 3, SPAN_KIND_PRODUCER: 4, SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

type J = Record<string, unknown>;
class SpanFieldError extends Error {}

function field(o: J, camel: string, snake: string): unknown {
  const v = o[camel];
  return v === undefined ? o[snake] : v;
}
const isObj = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);

function arr(v: unknown, where: string, onError: (m: string) => never): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) onError(`${where}: expected an array`);
  return v as unknown[];
}

function envelopeError(m: string): never {
  throw new BadRequest(`invalid OTLP JSON: ${m}`);
}
function spanError(m: string): never {
  throw new SpanFieldError(m);
}

function str(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') spanError(`${where}: expected a string`);
  return v as string;
}
function uint(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) spanError(`${where}: expected an unsigned 32-bit integer`);
  return n as number;
}
function int64(v: unknown, where: string): Int64Like | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) spanError(`${where}: expected an integer`);
    return v;
  }
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
  return spanError(`${where}: expected an integer (number or decimal string)`);
}
function hexId(v: unknown, where: string): Uint8Array | string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') spanError(`${where}: expected a hex string`);
  const s = v as string;
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) spanError(`${where}: "${s.slice(0, 40)}" is not hex (OTLP JSON ids are hex, not base64)`);
  return Buffer.from(s, 'hex');
}
function enumValue(v: unknown, names: Record<string, number>, where: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && v in names) return names[v];
  return spanError(`${where}: unknown enum value ${JSON.stringify(v)}`);
}

function anyValue(v: unknown, where: string, depth: number): AnyValueShape | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) spanError(`${where}: expected an AnyValue object`);
  if (depth > 32) spanError(`${where}: values nested more than 32 levels deep`);
  const o = v as J;
  let x: unknown;
  if ((x = field(o, 'stringValue', 'string_value')) !== undefined) return { stringValue: str(x, where) ?? '' };
  if ((x = field(o, 'boolValue', 'bool_value')) !== undefined) {
    if (typeof x !== 'boolean') spanError(`${where}.boolValue: expected a boolean`);
    return { boolValue: x as boolean };
  }
  if ((x = field(o, 'intValue', 'int_value')) !== undefined) return { intValue: int64(x, `${where}.intValue`) ?? 0 };
  if ((x = field(o, 'doubleValue', 'double_value')) !== undefined) {
    if (typeof x === 'number') return { doubleValue: x };
    if (typeof x === 'string' && (['NaN', 'Infinity', '-Infinity'].includes(x) || !Number.isNaN(Number(x)))) return { doubleValue: Number(x) };
    spanError(`${where}.doubleValue: expected a number`);
  }
  if ((x = field(o, 'bytesValue', 'bytes_value')) !== undefined) {
    if (typeof x !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(x)) spanError(`${where}.bytesValue: expected base64`);
    return { bytesValue: Buffer.from(x as string, 'base64') };
  }
  if ((x = field(o, 'arrayValue', 'array_value')) !== undefined) {
    const values = isObj(x) ? arr(x.values, `${where}.arrayValue.values`, spanError) : spanError(`${where}.arrayValue: expected an object`);
    return { arrayValue: { values: values.map((e, i) => anyValue(e, `${where}.arrayValue.values[${i}]`, depth + 1) ?? {}) } };
  }
  if ((x = field(o, 'kvlistValue', 'kvlist_value')) !== undefined) {
    const values = isObj(x) ? arr(x.values, `${where}.kvlistValue.values`, spanError) : spanError(`${where}.kvlistValue: expected an object`);
    return { kvlistValue: { values: keyValues(values, `${where}.kvlistValue.values`, depth + 1) } };
  }
  return {};
}

function keyValues(list: unknown, where: string, depth = 0): KeyValueShape[] {
  return arr(list, where, spanError).map((kv, i) => {
    if (!isObj(kv)) spanError(`${where}[${i}]: expected {key, value}`);
    const o = kv as J;
    return { key: str(o.key, `${where}[${i}].key`) ?? '', value: anyValue(o.value, `${where}[${i}].value`, depth) ?? null };
  });
}

function jsonSpan(s: unknown, where: string): SpanShape {
  try {
    if (!isObj(s)) spanError(`${where}: expected a span object`);
    const o = s as J;
    const status = field(o, 'status', 'status');
    if (status !== undefined && status !== null && !isObj(status)) spanError(`${where}.status: expected an object`);
    const st = status as J | undefined | null;
    return {
      traceId: hexId(field(o, 'traceId', 'trace_id'), `${where}.traceId`),
      spanId: hexId(field(o, 'spanId', 'span_id'), `${where}.spanId`),
      parentSpanId: hexId(field(o, 'parentSpanId', 'parent_span_id'), `${where}.parentSpanId`),
      traceState: str(field(o, 'traceState', 'trace_state'), `${where}.traceState`),
      flags: uint(o.flags, `${where}.flags`),
      name: str(o.name, `${where}.name`),
      kind: enumValue(o.kind, SPAN_KINDS, `${where}.kind`),
      startTimeUnixNano: int64(field(o, 'startTimeUnixNano', 'start_time_unix_nano'), `${where}.startTimeUnixNano`),
      endTimeUnixNano: int64(field(o, 'endTimeUnixNano', 'end_time_unix_nano'), `${where}.endTimeUnixNano`),
      attributes: keyValues(o.attributes, `${where}.attributes`),
      droppedAttributesCount: uint(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${where}.droppedAttributesCount`),
      events: arr(o.events, `${where}.events`, spanError).map((e, i) => {
        if (!isObj(e)) spanError(`${where}.events[${i}]: expected an object`);
        const eo = e as J;
        return {
          timeUnixNano: int64(field(eo, 'timeUnixNano', 'time_unix_nano'), `${where}.events[${i}].timeUnixNano`),
          name: str(eo.name, `${where}.events[${i}].name`),
          attributes: keyValues(eo.attributes, `${where}.events[${i}].attributes`),
          droppedAttributesCount: uint(field(eo, 'droppedAttributesCount', 'dropped_attributes_count'), `${where}.events[${i}].droppedAttributesCount`),
        };
      }),
      droppedEventsCount: uint(field(o, 'droppedEventsCount', 'dropped_events_count'), `${where}.droppedEventsCount`),
      links: arr(o.links, `${where}.links`, spanError).map((l, i) => {
        if (!isObj(l)) spanError(`${where}.links[${i}]: expected an object`);
        const lo = l as J;
        return {
          traceId: hexId(field(lo, 'traceId', 'trace_id'), `${where}.links[${i}].traceId`),
          spanId: hexId(field(lo, 'spanId', 'span_id'), `${where}.links[${i}].spanId`),
          traceState: str(field(lo, 'traceState', 'trace_state'), `${where}.links[${i}].traceState`),
          attributes: keyValues(lo.attributes, `${where}.links[${i}].attributes`),
          droppedAttributesCount: uint(field(lo, 'droppedAttributesCount', 'dropped_attributes_count'), `${where}.links[${i}].droppedAttributesCount`),
          flags: uint(lo.flags, `${where}.links[${i}].flags`),
        };
      }),
      droppedLinksCount: uint(field(o, 'droppedLinksCount', 'dropped_links_count'), `${where}.droppedLinksCount`),
      status: st ? { code: enumValue(st.code, STATUS_CODES, `${where}.status.code`), message: str(st.message, `${where}.status.message`) } : null,
    };
  } catch (err) {
    if (err instanceof SpanFieldError) return { invalid: err.message };
    throw err;
  }
}

/** Attributes of a resource or scope: a type error there is an envelope error (400). */
function envelopeAttributes(list: unknown, where: string): KeyValueShape[] {
  try {
    return keyValues(list, where);
  } catch (err) {
    if (err instanceof SpanFieldError) envelopeError(err.message);
    throw err;
  }
}

export function decodeJson(body: Buffer): ExportRequestShape {
  let doc: unknown;
  try {
    doc = parseJsonText(body.toString('utf8'));
  } catch (err) {
    const msg = err instanceof RangeError ? 'nested too deeply' : (err as Error).message;
    throw new BadRequest(`malformed JSON: ${msg}`);
  }
  if (!isObj(doc)) envelopeError('expected an ExportTraceServiceRequest object');
  const rsList = arr(field(doc as J, 'resourceSpans', 'resource_spans'), 'resourceSpans', envelopeError);
  return {
    resourceSpans: rsList.map((rs, i) => {
      const w = `resourceSpans[${i}]`;
      if (!isObj(rs)) envelopeError(`${w}: expected an object`);
      const r = rs as J;
      const res = r.resource;
      if (res !== undefined && res !== null && !isObj(res)) envelopeError(`${w}.resource: expected an object`);
      const ss = arr(field(r, 'scopeSpans', 'scope_spans'), `${w}.scopeSpans`, envelopeError);
      const schemaUrl = field(r, 'schemaUrl', 'schema_url');
      return {
        schemaUrl: typeof schemaUrl === 'string' ? schemaUrl : undefined,
        resource: isObj(res)
          ? { attributes: envelopeAttributes(res.attributes, `${w}.resource.attributes`), droppedAttributesCount: Number(field(res, 'droppedAttributesCount', 'dropped_attributes_count') ?? 0) || 0 }
          : null,
        scopeSpans: ss.map((s, j) => {
          const w2 = `${w}.scopeSpans[${j}]`;
          if (!isObj(s)) envelopeError(`${w2}: expected an object`);
          const so = s as J;
          const scope = so.scope;
          if (scope !== undefined && scope !== null && !isObj(scope)) envelopeError(`${w2}.scope: expected an object`);
          const sUrl = field(so, 'schemaUrl', 'schema_url');
          return {
            schemaUrl: typeof sUrl === 'string' ? sUrl : undefined,
            scope: isObj(scope)
              ? {
                  name: typeof scope.name === 'string' ? scope.name : undefined,
                  version: typeof scope.version === 'string' ? scope.version : undefined,
                  attributes: envelopeAttributes(scope.attributes, `${w2}.scope.attributes`),
                  droppedAttributesCount: Number(field(scope, 'droppedAttributesCount', 'dropped_attributes_count') ?? 0) || 0,
                }
              : null,
            spans: arr(so.spans, `${w2}.spans`, envelopeError).map((sp, k) => jsonSpan(sp, `${w2}.spans[${k}]`)),
          };
        }),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Responses

export type WireFormat = 'protobuf' | 'json';

export function encodeExportResponse(format: WireFormat, rejected: number, errorMessage: string): Buffer {
  const partial = rejected > 0 || errorMessage ? { rejectedSpans: rejected, errorMessage } : undefined;
  if (format === 'json') {
    return Buffer.from(JSON.stringify(partial ? { partialSuccess: { rejectedSpans: String(rejected), errorMessage } } : {}));
  }
  const msg = ExportResponse.create(partial ? { partialSuccess: { rejectedSpans: Long.fromNumber(rejected), errorMessage } } : {});
  return Buffer.from(ExportResponse.encode(msg).finish());
}

/** gRPC status codes used in google.rpc.Status bodies. */
export const RPC = { INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16, UNIMPLEMENTED: 12 } as const;

export function rpcCodeForHttp(status: number): number {
  switch (status) {
    case 400: case 413: case 415: return RPC.INVALID_ARGUMENT;
    case 401: return RPC.UNAUTHENTICATED;
    case 403: return RPC.PERMISSION_DENIED;
    case 405: return RPC.UNIMPLEMENTED;
    case 429: return RPC.RESOURCE_EXHAUSTED;
    case 503: return RPC.UNAVAILABLE;
    default: return status >= 500 ? RPC.INTERNAL : RPC.INVALID_ARGUMENT;
  }
}

export function encodeStatus(format: WireFormat, code: number, message: string): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify({ code, message }));
  return Buffer.from(RpcStatus.encode(RpcStatus.create({ code, message })).finish());
}

export function decodeStatus(format: WireFormat, body: Buffer): { code: number; message: string } {
  if (format === 'json') return JSON.parse(body.toString('utf8')) as { code: number; message: string };
  const m = RpcStatus.toObject(RpcStatus.decode(body), { defaults: true }) as { code: number; message: string };
  return { code: m.code, message: m.message };
}
