// The two "never above your own" rules (SPEC §6.1, §7.2, §13 item 12):
// - a key is never created with, or rotated into, a scope its creator lacks;
// - nobody grants a role above their own.
import { Forbidden } from '../errors.js';
import { ROLES, roleRank, scopesForRole, type Principal, type Role } from '../auth/principal.js';

/**
 * Refuse (403) any scope the caller does not hold. A key's scopes are its own; a user's are those
 * of their role in the selected project (owner = `*`). `*` is granted only by a `*` holder.
 */
export function assertCanGrantScopes(p: Principal, scopes: readonly string[]): void {
  const own = p.scopes;
  for (const s of scopes) {
    const held = s === '*' ? own.includes('*') : own.includes('*') || own.includes(s);
    if (!held) throw new Forbidden(`cannot grant scope ${s}: missing required scope: ${s}`);
  }
}

/**
 * The role a caller acts with on members. A user: their role in the project. An API key (it
 * reached a members route, so it holds projects:manage): `admin`, or `owner` when it holds `*`
 * (the same scopes an owner has). So a non-`*` key can never create, invite or promote an owner.
 */
export function actingRole(p: Principal): Role {
  if (p.kind === 'user') return p.role;
  return p.scopes.includes('*') ? 'owner' : 'admin';
}

/** 403 "requires role <role>" unless the caller acts with at least `role`. */
export function assertActsAtLeast(p: Principal, role: Role): void {
  if (roleRank(actingRole(p)) < roleRank(role)) throw new Forbidden(`requires role ${role}`);
}

export function isRole(v: unknown): v is Role {
  return typeof v === 'string' && (ROLES as string[]).includes(v);
}

/** Roles whose scopes include `scope` (e.g. who may manage a project: admin, owner). */
export function rolesWithScope(scope: string): Role[] {
  return ROLES.filter((r) => scopesForRole(r).some((s) => s === '*' || s === scope));
}
