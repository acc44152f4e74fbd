// SSRF guard for webhook URLs (SPEC §9): a channel may not point the receiver at itself, its
// network or the cloud metadata service. Checked when a channel is saved and again right before
// each connection, on the addresses that connection will use (pinned: the socket connects to the
// exact address that was checked, so a DNS answer that changes in between cannot slip through).
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';

export interface ResolvedAddress { address: string; family: 4 | 6 }

/** Why an address is refused, or null when it is a public unicast address. */
export function refusedAddressReason(address: string): string | null {
  const bytes = parseIp(address);
  if (!bytes) return 'not an IP address';
  return bytes.length === 4 ? ipv4Reason(bytes) : ipv6Reason(bytes);
}

export class RefusedUrl extends Error {}

/**
 * Resolve `hostname` (an IP literal resolves to itself) to every address it has; with
 * `allowPrivate` false, refuse it when any of them is loopback/private/link-local/metadata/…:
 * a name that resolves to one public and one internal address is refused outright.
 */
export async function resolveAllowed(hostname: string, allowPrivate: boolean): Promise<ResolvedAddress[]> {
  const host = unbracket(hostname);
  let addresses: ResolvedAddress[];
  const literal = isIP(host);
  if (literal) {
    addresses = [{ address: host, family: literal as 4 | 6 }];
  } else {
    try {
      addresses = (await dnsLookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family as 4 | 6 }));
    } catch (err) {
      throw new RefusedUrl(`host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (addresses.length === 0) throw new RefusedUrl(`host ${host} does not resolve`);
  }
  if (!allowPrivate) {
    for (const a of addresses) {
      const reason = refusedAddressReason(a.address);
      if (reason) {
        const via = literal ? '' : `${host} resolves to `;
        throw new RefusedUrl(`refused address: ${via}${a.address} is ${reason} (set STRATHON_WEBHOOK_ALLOW_PRIVATE=true to allow)`);
      }
    }
  }
  return addresses;
}

/** A `lookup` for http.request that answers only with the already-checked addresses. */
export function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0];
    if (!first) {
      callback(new Error('no address to connect to'), '', 4);
      return;
    }
    if (options.all) {
      callback(null, addresses);
    } else {
      callback(null, first.address, first.family);
    }
  };
}

export const unbracket = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

// ---- address classes ----------------------------------------------------------------------------

type V4Rule = [prefix: [number, number, number, number], bits: number, reason: string];

// First match wins, so the metadata address is named before the link-local block holding it.
const V4_RULES: V4Rule[] = [
  [[169, 254, 169, 254], 32, 'the cloud metadata service'],
  [[0, 0, 0, 0], 8, 'unspecified ("this network")'],
  [[10, 0, 0, 0], 8, 'private (10.0.0.0/8)'],
  [[100, 64, 0, 0], 10, 'carrier-grade NAT (100.64.0.0/10)'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local'],
  [[172, 16, 0, 0], 12, 'private (172.16.0.0/12)'],
  [[192, 0, 0, 0], 24, 'reserved for protocol assignments (192.0.0.0/24)'],
  [[192, 0, 2, 0], 24, 'documentation-only (192.0.2.0/24)'],
  [[192, 88, 99, 0], 24, 'reserved (6to4 relay anycast)'],
  [[192, 168, 0, 0], 16, 'private (192.168.0.0/16)'],
  [[198, 18, 0, 0], 15, 'reserved for benchmarking (198.18.0.0/15)'],
  [[198, 51, 100, 0], 24, 'documentation-only (198.51.100.0/24)'],
  [[203, 0, 113, 0], 24, 'documentation-only (203.0.113.0/24)'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved (240.0.0.0/4) or broadcast'],
];

function inPrefix(bytes: Uint8Array, prefix: ArrayLike<number>, bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8] ?? 0) & mask) !== ((prefix[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

function ipv4Reason(b: Uint8Array): string | null {
  for (const [prefix, bits, reason] of V4_RULES) if (inPrefix(b, prefix, bits)) return reason;
  return null;
}

const v6 = (s: string): Uint8Array => parseIp(s) as Uint8Array;
const V6_METADATA = v6('fd00:ec2::254');

function ipv6Reason(b: Uint8Array): string | null {
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  const embedded = (at: number, how: string) => {
    const r = ipv4Reason(b.subarray(at, at + 4));
    return r ? `${how} ${r} IPv4 address` : null;
  };
  if (zeros(0, 16)) return 'unspecified';
  if (zeros(0, 15) && b[15] === 1) return 'loopback';
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible) reach the IPv4 address they embed.
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return embedded(12, 'an IPv4-mapped form of a');
  if (zeros(0, 12)) return embedded(12, 'an IPv4-compatible form of a') ?? 'IPv4-compatible (deprecated, ::/96)';
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) are translated to the IPv4 address inside them.
  if (inPrefix(b, v6('64:ff9b::'), 96)) return embedded(12, 'a NAT64 form of a');
  if (inPrefix(b, v6('2002::'), 16)) return embedded(2, 'a 6to4 form of a');
  if (inPrefix(b, V6_METADATA, 128)) return 'the cloud metadata service';
  if (inPrefix(b, v6('fc00::'), 7)) return 'unique-local (fc00::/7)';
  if (inPrefix(b, v6('fe80::'), 10)) return 'link-local';
  if (inPrefix(b, v6('fec0::'), 10)) return 'site-local';
  if (inPrefix(b, v6('ff00::'), 8)) return 'multicast';
  if (inPrefix(b, v6('100::'), 64)) return 'discard-only (100::/64)';
  if (inPrefix(b, v6('2001:db8::'), 32)) return 'documentation-only (2001:db8::/32)';
  return null;
}

// ---- parsing ------------------------------------------------------------------------------------

/** 4 or 16 bytes, or null. A zone id (fe80::1%eth0) is dropped: it does not change the class. */
export function parseIp(input: string): Uint8Array | null {
  const s = unbracket(input.trim()).replace(/%.*$/, '');
  const family = isIP(s);
  if (family === 4) return Uint8Array.from(s.split('.').map(Number));
  if (family !== 6) return null;
  let text = s.toLowerCase();
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseIp(text.slice(lastColon + 1));
    if (!v4 || v4.length !== 4) return null;
    tail.push(...v4);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = rest === undefined ? [] : groups(rest);
  const fill = rest === undefined ? 0 : 8 - h.length - t.length;
  const words = [...h, ...new Array<number>(fill).fill(0), ...t];
  if (words.length !== 8) return null;
  const out = new Uint8Array(16);
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff; });
  if (tail.length) out.set(tail, 12);
  return out;
}
