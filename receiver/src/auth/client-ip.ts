// Client IP: the TCP peer, or the leftmost X-Forwarded-For entry when the peer is a trusted proxy.
import { isIP, isIPv4 } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { TrustedProxies } from '../config.js';

function plain(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

export function clientIp(req: IncomingMessage, trusted: TrustedProxies): string {
  const peer = plain(req.socket.remoteAddress ?? '');
  if (trusted.cidrs.length === 0 || !peer) return peer;
  const family = isIP(peer) === 6 ? 'ipv6' : 'ipv4';
  if (!trusted.list.check(peer, family)) return peer;
  const xff = req.headers['x-forwarded-for'];
  const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
  return first && isIP(plain(first)) ? plain(first) : peer;
}
