// Members of the caller's project and invitations (SPEC §6.1, §7.3).
// Rules: nobody grants a role above the one they act with, nor changes or removes a member who
// ranks above them (403 "requires role <role>"); the last owner is never removed or demoted
// (409). Owner rows are locked (in user-id order) before any change that could take an owner
// away, so two concurrent demotions cannot both succeed. Another project's user is a 404.
import { createHash, randomBytes } from 'node:crypto';
import { Conflict, Forbidden, NotFound, Unprocessable } from '../errors.js';
import type { Role } from '../auth/principal.js';
import { inTransaction, recordChange, type AccessDeps, type ChangeContext, type Tx } from './change.js';
import { actingRole, assertActsAtLeast } from './grants.js';

export const INVITATION_TTL_SECONDS = 7 * 86_400;

export interface MemberRow {
  user_id: string; email: string; display_name: string | null; role: Role; joined_at: Date;
  last_active: Date | null; mfa_enabled: boolean;
}

type Queryable = Pick<Tx, 'query'>;

const SELECT_MEMBER = `
SELECT m.user_id, u.email, u.display_name, m.role, m.joined_at,
       greatest(m.last_active_at, u.last_login_at) AS last_active, u.mfa_enabled
FROM core.members m JOIN core.users u ON u.id = m.user_id`;

// ---- statements ---------------------------------------------------------------------------------

async function selectMembers(db: Queryable, projectId: string): Promise<MemberRow[]> {
  const r = await db.query<MemberRow>(`${SELECT_MEMBER} WHERE m.project_id = $1 ORDER BY m.joined_at, m.user_id`, [projectId]);
  return r.rows;
}

async function selectMember(db: Queryable, projectId: string, userId: string): Promise<MemberRow | undefined> {
  const r = await db.query<MemberRow>(`${SELECT_MEMBER} WHERE m.project_id = $1 AND m.user_id = $2`, [projectId, userId]);
  return r.rows[0];
}

/** Lock the project's owner rows (ordered: concurrent callers lock in the same order); their ids. */
async function lockOwners(db: Queryable, projectId: string): Promise<string[]> {
  const r = await db.query<{ user_id: string }>(
    `SELECT user_id FROM core.members WHERE project_id = $1 AND role = 'owner' ORDER BY user_id FOR UPDATE`, [projectId]);
  return r.rows.map((x) => x.user_id);
}

async function lockMember(db: Queryable, projectId: string, userId: string): Promise<Role | undefined> {
  const r = await db.query<{ role: Role }>(
    'SELECT role FROM core.members WHERE project_id = $1 AND user_id = $2 FOR UPDATE', [projectId, userId]);
  return r.rows[0]?.role;
}

async function setRole(db: Queryable, projectId: string, userId: string, role: Role): Promise<void> {
  await db.query('UPDATE core.members SET role = $3 WHERE project_id = $1 AND user_id = $2', [projectId, userId, role]);
}

async function deleteMember(db: Queryable, projectId: string, userId: string): Promise<void> {
  await db.query('DELETE FROM core.members WHERE project_id = $1 AND user_id = $2', [projectId, userId]);
}

async function memberWithEmail(db: Queryable, projectId: string, email: string): Promise<boolean> {
  const r = await db.query(
    'SELECT 1 FROM core.members m JOIN core.users u ON u.id = m.user_id WHERE m.project_id = $1 AND lower(u.email) = $2', [projectId, email]);
  return (r.rowCount ?? 0) > 0;
}

async function insertInvitation(
  db: Queryable, projectId: string, tokenHash: Buffer, email: string, role: Role, createdBy: string | null,
): Promise<{ id: string; expires_at: Date }> {
  const r = await db.query<{ id: string; expires_at: Date }>(
    `INSERT INTO core.invitations (project_id, token_hash, email, role, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::float8)) RETURNING id, expires_at`,
    [projectId, tokenHash, email, role, createdBy, INVITATION_TTL_SECONDS],
  );
  return r.rows[0] as { id: string; expires_at: Date };
}

// ---- rules --------------------------------------------------------------------------------------

/** The target must be in the caller's project (else 404) and rank no higher than the caller. */
async function lockTarget(tx: Tx, change: ChangeContext, userId: string): Promise<Role> {
  const role = await lockMember(tx, change.principal.projectId, userId);
  if (!role) throw new NotFound('member not found');
  assertActsAtLeast(change.principal, role);
  return role;
}

function assertKeepsAnOwner(owners: string[], leaving: string): void {
  if (owners.length <= 1 && owners.includes(leaving)) throw new Conflict('cannot remove or demote the last owner of the project');
}

// ---- services -----------------------------------------------------------------------------------

export function listMembers(deps: AccessDeps, projectId: string): Promise<MemberRow[]> {
  return selectMembers(deps.pool, projectId);
}

/** 404 unless `userId` is a member of the project (checked before a body is even looked at). */
export async function getMember(deps: AccessDeps, projectId: string, userId: string): Promise<MemberRow> {
  const m = await selectMember(deps.pool, projectId, userId);
  if (!m) throw new NotFound('member not found');
  return m;
}

/**
 * Invite `email` with `role` (at most the caller's acting role). The token (256 random bits) is
 * returned once; only its SHA-256 is stored. Registration with it (`POST /v1/auth/register`
 * `invitation_token`) looks up `sha256(token)`, checks expires_at/used_at, and sets used_at.
 */
export async function inviteMember(
  deps: AccessDeps, change: ChangeContext, email: string, role: Role,
): Promise<{ id: string; token: string; expiresAt: Date }> {
  assertActsAtLeast(change.principal, role);
  const projectId = change.principal.projectId;
  return inTransaction(deps.pool, async (tx) => {
    if (await memberWithEmail(tx, projectId, email)) throw new Conflict(`${email} is already a member of this project`);
    const token = randomBytes(32).toString('base64url');
    const p = change.principal;
    const inv = await insertInvitation(tx, projectId, createHash('sha256').update(token, 'utf8').digest(), email, role, p.kind === 'user' ? p.userId : null);
    await recordChange(tx, deps, change, {
      projectId, action: 'member.invite', resource: { type: 'invitation', id: inv.id },
      details: { email, role, expires_at: inv.expires_at.toISOString() },
    });
    return { id: inv.id, token, expiresAt: inv.expires_at };
  });
}

/** Change a member's role: both the old and the new role must be within the caller's reach. */
export async function changeRole(deps: AccessDeps, change: ChangeContext, userId: string, role: Role): Promise<MemberRow> {
  const projectId = change.principal.projectId;
  return inTransaction(deps.pool, async (tx) => {
    const owners = await lockOwners(tx, projectId);
    const from = await lockTarget(tx, change, userId);
    assertActsAtLeast(change.principal, role);
    if (from === 'owner' && role !== 'owner') assertKeepsAnOwner(owners, userId);
    if (from !== role) {
      await setRole(tx, projectId, userId, role);
      await recordChange(tx, deps, change, {
        projectId, action: 'member.role_change', resource: { type: 'user', id: userId }, details: { from, to: role },
      });
    }
    return (await selectMember(tx, projectId, userId)) as MemberRow;
  });
}

export async function removeMember(deps: AccessDeps, change: ChangeContext, userId: string): Promise<void> {
  const projectId = change.principal.projectId;
  await inTransaction(deps.pool, async (tx) => {
    const owners = await lockOwners(tx, projectId);
    const role = await lockTarget(tx, change, userId);
    if (role === 'owner') assertKeepsAnOwner(owners, userId);
    await deleteMember(tx, projectId, userId);
    await recordChange(tx, deps, change, { projectId, action: 'member.remove', resource: { type: 'user', id: userId }, details: { role } });
  });
}

/** The caller (an owner's session — the route refuses keys) hands ownership to another member
 *  and becomes admin. */
export async function transferOwnership(
  deps: AccessDeps, change: ChangeContext, userId: string,
): Promise<{ owner: MemberRow; previousOwner: MemberRow }> {
  const p = change.principal;
  if (p.kind !== 'user') throw new Error('transferOwnership needs a user principal (route auth: role owner)');
  const projectId = p.projectId;
  return inTransaction(deps.pool, async (tx) => {
    const owners = await lockOwners(tx, projectId);
    const target = await lockMember(tx, projectId, userId);
    if (!target) throw new NotFound('member not found');
    if (userId === p.userId) throw new Unprocessable('cannot transfer ownership to yourself', ['path', 'user_id']);
    // Re-checked under the lock: the session's role was read before this transaction began.
    if (!owners.includes(p.userId) || actingRole(p) !== 'owner') throw new Forbidden('requires role owner');
    await setRole(tx, projectId, userId, 'owner');
    await setRole(tx, projectId, p.userId, 'admin');
    await recordChange(tx, deps, change, {
      projectId, action: 'member.transfer_ownership', resource: { type: 'user', id: userId },
      details: { from_user_id: p.userId, to_user_id: userId, previous_role: target },
    });
    return {
      owner: (await selectMember(tx, projectId, userId)) as MemberRow,
      previousOwner: (await selectMember(tx, projectId, p.userId)) as MemberRow,
    };
  });
}
