// User accounts (SPEC §6.1): registration (first user → owner; then an invitation, or a caller
// holding projects:manage), password changes, and resets by an admin or strathon-admin.
import type pg from 'pg';
import { Conflict, Forbidden, NotFound, Unprocessable } from '../errors.js';
import { DEFAULT_PROJECT_ID } from './keys.js';
import { principalHasScope, roleRank, type Principal, type Role } from './principal.js';
import { createSession, revokeUserSessions, sha256 } from './sessions.js';
import { passwordProblem, temporaryPassword } from './passwords.js';
import { takeAttempt, CHANGE_PASSWORD } from './limits.js';
import { inTransaction } from './transaction.js';
import { principalActor, userActor, type AuthActor, type AuthDeps, type ClientMeta } from './events.js';

type Db = Pick<pg.Pool, 'query'>;

export interface UserRow {
  id: string;
  email: string;
  display_name: string | null;
  password_hash: string;
  must_change_password: boolean;
  mfa_enabled: boolean;
  mfa_secret_enc: string | null;
  mfa_pending_secret_enc: string | null;
  mfa_last_step: string | null;
  disabled_at: Date | null;
  /** The project an audit row about this user goes to: their first membership, else the default project. */
  home_project_id: string;
}

const USER_COLUMNS = `u.id, u.email, u.display_name, u.password_hash, u.must_change_password, u.mfa_enabled, u.mfa_secret_enc,
  u.mfa_pending_secret_enc, u.mfa_last_step::text AS mfa_last_step, u.disabled_at,
  coalesce((SELECT m.project_id FROM core.members m WHERE m.user_id = u.id ORDER BY m.joined_at LIMIT 1), '${DEFAULT_PROJECT_ID}'::uuid) AS home_project_id`;

export async function userByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  const r = await db.query<UserRow>({ name: 'auth_user_by_email', text: `SELECT ${USER_COLUMNS} FROM core.users u WHERE lower(u.email) = lower($1)`, values: [email] });
  return r.rows[0];
}

/** `forUpdate` locks the row for the caller's transaction (MFA and password changes). */
export async function userById(db: Db, id: string, forUpdate = false): Promise<UserRow | undefined> {
  const r = await db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM core.users u WHERE u.id = $1${forUpdate ? ' FOR UPDATE OF u' : ''}`, [id]);
  return r.rows[0];
}

export function newPasswordOrThrow(password: string, field: string, email?: string): void {
  const problem = passwordProblem(password, { email });
  if (problem) throw new Unprocessable(problem, ['body', field], 'value_error');
}

async function insertUser(db: Db, u: { email: string; displayName: string | null; passwordHash: string; mustChangePassword: boolean }): Promise<{ id: string; email: string; display_name: string | null }> {
  const r = await db.query<{ id: string; email: string; display_name: string | null }>(
    `INSERT INTO core.users (email, display_name, password_hash, must_change_password) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING RETURNING id, email, display_name`,
    [u.email, u.displayName, u.passwordHash, u.mustChangePassword],
  );
  const row = r.rows[0];
  if (!row) throw new Conflict('a user with this email already exists');
  return row;
}

async function addMember(db: Db, projectId: string, userId: string, role: Role): Promise<void> {
  await db.query('INSERT INTO core.members (project_id, user_id, role) VALUES ($1, $2, $3)', [projectId, userId, role]);
}

export interface ProjectInfo { project: { id: string; name: string; slug: string }; organization: { id: string; name: string; slug: string } }

async function projectInfo(db: Db, projectId: string): Promise<ProjectInfo | undefined> {
  const r = await db.query<{ pid: string; pname: string; pslug: string; oid: string; oname: string; oslug: string }>(
    `SELECT p.id AS pid, p.name AS pname, p.slug AS pslug, o.id AS oid, o.name AS oname, o.slug AS oslug
     FROM core.projects p JOIN core.organizations o ON o.id = p.organization_id WHERE p.id = $1 AND p.deleted_at IS NULL`,
    [projectId],
  );
  const x = r.rows[0];
  return x && { project: { id: x.pid, name: x.pname, slug: x.pslug }, organization: { id: x.oid, name: x.oname, slug: x.oslug } };
}

// ---- registration ---------------------------------------------------------------------------------

export interface RegisterInput { email: string; password: string; displayName: string | null; invitationToken?: string; role?: Role }

/** An authenticated caller registering someone else, with the role it acts with on members. */
export interface RegisterCaller { principal: Principal; actingRole: Role }

export interface RegisterResult extends ProjectInfo {
  user: { id: string; email: string; display_name: string | null };
  role: Role;
  via: 'first_user' | 'invitation' | 'caller';
  /** A session for the new user — only when they registered themselves. */
  session?: { token: string; expiresAt: Date };
}

const INVITATION_REQUIRED = 'registration requires an invitation';

function assertCallerMayRegister(c: RegisterCaller, role: Role): void {
  const p = c.principal;
  if (p.kind === 'user' && p.mustChangePassword) throw new Forbidden('password change required: POST /v1/auth/change-password');
  if (!principalHasScope(p, 'projects:manage')) {
    throw new Forbidden(p.kind === 'user' ? 'requires role admin' : 'missing required scope: projects:manage');
  }
  if (roleRank(role) > roleRank(c.actingRole)) throw new Forbidden(`cannot grant role ${role}: above your own (${c.actingRole})`);
}

/**
 * First user ever → owner of the default project (and so of its organization). Afterwards: a
 * valid invitation for this email (joins its project with its role), or a caller holding
 * projects:manage (joins the caller's project with `role`, default viewer, never above the
 * caller's own). Registrations are serialized by an advisory lock so two "first users" cannot race.
 */
export async function register(deps: AuthDeps, input: RegisterInput, resolveCaller: () => Promise<RegisterCaller | undefined>, meta: ClientMeta): Promise<RegisterResult> {
  newPasswordOrThrow(input.password, 'password', input.email);
  const email = input.email.trim();
  // Resolve the caller before taking the lock (it queries on its own connection).
  const anyUser = async (db: Db) => (await db.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM core.users) AS any')).rows[0]?.any === true;
  const caller = input.invitationToken === undefined && (await anyUser(deps.pool)) ? await resolveCaller() : undefined;
  if (caller) assertCallerMayRegister(caller, input.role ?? 'viewer');
  const passwordHash = await deps.hasher.hash(input.password);

  return inTransaction(deps.pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('strathon.register', 0))");
    let projectId: string;
    let role: Role;
    let via: RegisterResult['via'];
    if (!(await anyUser(client))) {
      projectId = DEFAULT_PROJECT_ID;
      role = 'owner';
      via = 'first_user';
    } else if (input.invitationToken !== undefined) {
      const inv = await claimInvitation(client, input.invitationToken, email);
      projectId = inv.project_id;
      role = inv.role;
      via = 'invitation';
    } else if (caller) {
      projectId = caller.principal.projectId;
      role = input.role ?? 'viewer';
      via = 'caller';
    } else {
      throw new Forbidden(INVITATION_REQUIRED);
    }
    const info = await projectInfo(client, projectId);
    if (!info) throw new NotFound('project not found');
    const user = await insertUser(client, { email, displayName: input.displayName, passwordHash, mustChangePassword: false });
    await addMember(client, projectId, user.id, role);
    // Never mint a session for somebody else: an admin-created user logs in themselves.
    const session = via === 'caller' ? undefined : await createSession(client, user.id, deps.config.sessionTtlSeconds, meta);
    await deps.audit(client, {
      projectId,
      actor: caller ? principalActor(caller.principal) : userActor(user),
      action: 'auth.register',
      resource: { type: 'user', id: user.id },
      details: { email: user.email, role, via },
    });
    return { ...info, user, role, via, session };
  });
}

/** Lock and spend an invitation: unused, unexpired, for this email, on a live project; else 403. */
async function claimInvitation(client: pg.PoolClient, token: string, email: string): Promise<{ project_id: string; role: Role }> {
  const r = await client.query<{ project_id: string; id: string; role: Role; email: string; used_at: Date | null; expired: boolean }>(
    `SELECT i.project_id, i.id, i.role, i.email, i.used_at, i.expires_at <= now() AS expired
     FROM core.invitations i JOIN core.projects p ON p.id = i.project_id AND p.deleted_at IS NULL
     WHERE i.token_hash = $1 FOR UPDATE OF i`,
    [sha256(token)],
  );
  const inv = r.rows[0];
  if (!inv || inv.used_at || inv.expired) throw new Forbidden('invitation is invalid, used or expired');
  if (inv.email.trim().toLowerCase() !== email.toLowerCase()) throw new Forbidden('invitation was issued for another email address');
  await client.query('UPDATE core.invitations SET used_at = now() WHERE project_id = $1 AND id = $2', [inv.project_id, inv.id]);
  return { project_id: inv.project_id, role: inv.role };
}

// ---- password changes -----------------------------------------------------------------------------

/** Sessions still pending between password and code die with the old password too. */
async function burnMfaChallenges(db: Db, userId: string): Promise<void> {
  await db.query('UPDATE core.mfa_challenges SET used_at = now() WHERE user_id = $1 AND used_at IS NULL', [userId]);
}

/**
 * The user changes their own password: 10 attempts a minute; the current password must match;
 * every OTHER session of the user is revoked; must_change_password is cleared.
 */
export async function changePassword(deps: AuthDeps, p: Principal & { kind: 'user' }, current: string, next: string): Promise<{ revokedSessions: number }> {
  await takeAttempt(deps.pool, [{ limit: CHANGE_PASSWORD, identifier: p.userId }]);
  const user = await userById(deps.pool, p.userId);
  if (!user) throw new NotFound('user not found');
  if (!(await deps.hasher.verify(user.password_hash, current))) {
    await deps.audit(deps.pool, { projectId: p.projectId, actor: principalActor(p), action: 'auth.password.change', outcome: 'failure', resource: { type: 'user', id: p.userId }, details: { reason: 'current password incorrect' } });
    throw new Forbidden('current password is incorrect');
  }
  newPasswordOrThrow(next, 'new_password', user.email);
  if (next === current) throw new Unprocessable('new_password must differ from the current password', ['body', 'new_password'], 'value_error');
  const hash = await deps.hasher.hash(next);
  return inTransaction(deps.pool, async (client) => {
    await client.query('UPDATE core.users SET password_hash = $2, must_change_password = false WHERE id = $1', [p.userId, hash]);
    const revokedSessions = await revokeUserSessions(client, p.userId, p.sessionHash);
    await burnMfaChallenges(client, p.userId);
    await deps.audit(client, { projectId: p.projectId, actor: principalActor(p), action: 'auth.password.change', resource: { type: 'user', id: p.userId }, details: { revoked_sessions: revokedSessions } });
    return { revokedSessions };
  });
}

/**
 * Set a one-time temporary password: must_change_password, every session revoked, pending MFA
 * challenges burnt. MFA stays enabled unless `disableMfa` (strathon-admin only).
 */
async function applyTemporaryPassword(client: pg.PoolClient, deps: Pick<AuthDeps, 'hasher'>, userId: string, disableMfa: boolean): Promise<{ password: string; revokedSessions: number }> {
  const password = temporaryPassword();
  const hash = await deps.hasher.hash(password);
  await client.query('UPDATE core.users SET password_hash = $2, must_change_password = true WHERE id = $1', [userId, hash]);
  if (disableMfa) {
    await client.query('UPDATE core.users SET mfa_enabled = false, mfa_secret_enc = NULL, mfa_pending_secret_enc = NULL, mfa_last_step = NULL WHERE id = $1', [userId]);
    await client.query('DELETE FROM core.mfa_backup_codes WHERE user_id = $1', [userId]);
  }
  const revokedSessions = await revokeUserSessions(client, userId);
  await burnMfaChallenges(client, userId);
  return { password, revokedSessions };
}

/**
 * POST /v1/auth/admin-reset-password. The target must be a member of the caller's project (else
 * 404), with a role no higher than the caller's; and because the password opens every project the
 * target belongs to, the caller must stand at least as high in each of those too (a key: the
 * target must belong to the key's project only) — else an admin of one project could take over
 * an owner of another.
 */
export async function adminResetPassword(deps: AuthDeps, caller: Principal, actingRole: Role, email: string): Promise<{ temporaryPassword: string; userId: string; email: string }> {
  return inTransaction(deps.pool, async (client) => {
    const r = await client.query<{ id: string; email: string; role: Role }>(
      `SELECT u.id, u.email, m.role FROM core.users u JOIN core.members m ON m.user_id = u.id AND m.project_id = $2
       WHERE lower(u.email) = lower($1) FOR UPDATE OF u`,
      [email, caller.projectId],
    );
    const target = r.rows[0];
    if (!target) throw new NotFound('user not found');
    if (roleRank(target.role) > roleRank(actingRole)) throw new Forbidden(`cannot reset the password of a ${target.role}: above your own role (${actingRole})`);
    const elsewhere = await client.query<{ project_id: string; role: Role; caller_role: Role | null }>(
      `SELECT m.project_id, m.role, c.role AS caller_role FROM core.members m
       LEFT JOIN core.members c ON c.project_id = m.project_id AND c.user_id = $3
       WHERE m.user_id = $1 AND m.project_id <> $2`,
      [target.id, caller.projectId, caller.kind === 'user' ? caller.userId : null],
    );
    for (const m of elsewhere.rows) {
      if (!m.caller_role || roleRank(m.caller_role) < roleRank(m.role)) {
        throw new Forbidden('this user also belongs to projects you do not administer at their level; ask an administrator of those projects, or use strathon-admin reset-password');
      }
    }
    const { password, revokedSessions } = await applyTemporaryPassword(client, deps, target.id, false);
    await deps.audit(client, {
      projectId: caller.projectId, actor: principalActor(caller), action: 'auth.password.admin_reset',
      resource: { type: 'user', id: target.id }, details: { email: target.email, revoked_sessions: revokedSessions },
    });
    return { temporaryPassword: password, userId: target.id, email: target.email };
  });
}

// ---- strathon-admin -------------------------------------------------------------------------------

/** strathon-admin reset-password: any user; optionally switches MFA off (lost authenticator). */
export async function cliResetPassword(deps: Pick<AuthDeps, 'pool' | 'hasher' | 'audit'>, actor: AuthActor, email: string, opts: { disableMfa: boolean }): Promise<{ temporaryPassword: string; userId: string; revokedSessions: number }> {
  return inTransaction(deps.pool, async (client) => {
    const user = await userByEmail(client, email);
    if (!user) throw new NotFound(`no user with email ${email}`);
    await client.query('SELECT 1 FROM core.users WHERE id = $1 FOR UPDATE', [user.id]);
    const { password, revokedSessions } = await applyTemporaryPassword(client, deps, user.id, opts.disableMfa);
    await deps.audit(client, {
      projectId: user.home_project_id, actor, action: 'auth.password.admin_reset', resource: { type: 'user', id: user.id },
      details: { email: user.email, revoked_sessions: revokedSessions, mfa_disabled: opts.disableMfa, via: 'cli' },
    });
    return { temporaryPassword: password, userId: user.id, revokedSessions };
  });
}

/**
 * strathon-admin create-user: joins `projectId` with `role`. Without a password a temporary one is
 * generated and must be changed at first login.
 */
export async function cliCreateUser(
  deps: Pick<AuthDeps, 'pool' | 'hasher' | 'audit'>, actor: AuthActor,
  input: { email: string; password?: string; displayName?: string | null; role: Role; projectId: string },
): Promise<{ userId: string; temporaryPassword?: string }> {
  if (input.password !== undefined) {
    const problem = passwordProblem(input.password, { email: input.email });
    if (problem) throw new Unprocessable(problem, ['password']);
  }
  const temporary = input.password === undefined ? temporaryPassword() : undefined;
  const passwordHash = await deps.hasher.hash(input.password ?? (temporary as string));
  return inTransaction(deps.pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('strathon.register', 0))");
    if (!(await projectInfo(client, input.projectId))) throw new NotFound(`project ${input.projectId} not found`);
    const user = await insertUser(client, { email: input.email, displayName: input.displayName ?? null, passwordHash, mustChangePassword: temporary !== undefined });
    await addMember(client, input.projectId, user.id, input.role);
    await deps.audit(client, {
      projectId: input.projectId, actor, action: 'auth.register', resource: { type: 'user', id: user.id },
      details: { email: user.email, role: input.role, via: 'cli', password_generated: temporary !== undefined },
    });
    return { userId: user.id, temporaryPassword: temporary };
  });
}
