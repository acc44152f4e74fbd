// Per-replica token bucket keyed by SHA-256 of the credential (or client IP when anonymous).
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { TooManyRequests } from '../errors.js';

export interface RateDecision { allowed: boolean; limit: number; remaining: number; retryAfterS: number }

export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rps: number, private readonly burst: number, private readonly enabled: boolean) {}

  static identifier(credential: string | undefined, clientIp: string): string {
    return credential ? `k:${createHash('sha256').update(credential).digest('base64url')}` : `ip:${clientIp}`;
  }

  take(id: string, now = Date.now()): RateDecision {
    if (!this.enabled) return { allowed: true, limit: this.burst, remaining: this.burst, retryAfterS: 0 };
    let b = this.buckets.get(id);
    if (!b) {
      if (this.buckets.size > 100_000) this.evict(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(id, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rps);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, limit: this.burst, remaining: Math.floor(b.tokens), retryAfterS: 0 };
    }
    return { allowed: false, limit: this.burst, remaining: 0, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / this.rps)) };
  }

  private evict(now: number) {
    for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k);
    if (this.buckets.size > 100_000) this.buckets.clear();
  }
}

/** Take one token for this caller, set the X-RateLimit-* headers, and throw 429 when refused. */
export function enforceRateLimit(limiter: RateLimiter, credential: string | undefined, clientIp: string, res: Pick<ServerResponse, 'setHeader'>): void {
  const rl = limiter.take(RateLimiter.identifier(credential, clientIp));
  res.setHeader('X-RateLimit-Limit', String(rl.limit));
  res.setHeader('X-RateLimit-Remaining', String(rl.remaining));
  if (!rl.allowed) throw new TooManyRequests(`rate limit exceeded, retry in ${rl.retryAfterS}s`, rl.retryAfterS);
}
