// Who is calling: an API key (directly or through a JWT minted from it) or a user (session).
import { ALL_SCOPES } from './keys.js';

export type Role = 'owner' | 'admin' | 'operator' | 'viewer';
export const ROLES: Role[] = ['viewer', 'operator', 'admin', 'owner'];

export interface KeyPrincipal {
  kind: 'api_key';
  keyId: string;
  projectId: string;
  scopes: string[];
  keyPrefix: string;
  /** 'key' when the raw stra_ key was presented, 'jwt' for an access token minted from it. */
  via: 'key' | 'jwt';
  jti?: string;
}

export interface UserPrincipal {
  kind: 'user';
  userId: string;
  email: string;
  displayName: string | null;
  projectId: string;
  role: Role;
  scopes: string[];
  sessionHash: Buffer;
  mustChangePassword: boolean;
}

export type Principal = KeyPrincipal | UserPrincipal;

export function roleRank(role: Role): number {
  return ROLES.indexOf(role);
}

/** SPEC §7.2: viewer = every :read; operator adds halts/approvals/traces writes; admin every :write
 *  (and projects:manage, so admins can manage members below their own role); owner = *. */
export function scopesForRole(role: Role): string[] {
  const reads = ALL_SCOPES.filter((s) => s.endsWith(':read'));
  if (role === 'viewer') return reads;
  const operator = [...reads, 'halts:write', 'approvals:write', 'traces:write'];
  if (role === 'operator') return operator;
  if (role === 'admin') return [...new Set([...operator, ...ALL_SCOPES.filter((s) => s.endsWith(':write')), 'projects:manage'])];
  return ['*'];
}

export function principalHasScope(p: Principal, scope: string): boolean {
  return p.scopes.includes('*') || p.scopes.includes(scope);
}

/** What an audit row or a `created_by` column says about the caller (never a secret). */
export function principalDisplay(p: Principal): string {
  return p.kind === 'user' ? p.email : `key ${p.keyPrefix}…`;
}
