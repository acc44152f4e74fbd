// Projects (SPEC §6.1, §7.3): the ones a caller may manage, creation (with a first API key and
// the creating user as owner), renaming and retention. A project the caller cannot manage is
// "not found" (404), never "forbidden".
import { randomBytes } from 'node:crypto';
import { Conflict, NotFound } from '../errors.js';
import { DEFAULT_KEY_SCOPES } from '../auth/keys.js';
import { principalDisplay, type Principal } from '../auth/principal.js';
import { inTransaction, recordChange, type AccessDeps, type ChangeContext, type Tx } from './change.js';
import { assertCanGrantScopes, rolesWithScope } from './grants.js';
import { createFirstKey } from './api-keys.js';
import { isUuid } from './input.js';

export interface ProjectRow {
  id: string; name: string; slug: string; retention_days: number | null; created_at: Date; deleted_at: Date | null;
  /** Union of the scopes of the project's live keys (null: no live key). */
  api_key_scopes: string[] | null;
  resource_counts: { api_keys: number; members: number; traces: number };
}

type Queryable = Pick<Tx, 'query'>;

/** Roles that hold projects:manage (admin, owner): the projects a user may manage. */
const MANAGING_ROLES = rolesWithScope('projects:manage');

const SELECT_PROJECT = `
SELECT p.id, p.name, p.slug, p.retention_days, p.created_at, p.deleted_at,
       (SELECT array_agg(DISTINCT s ORDER BY s) FROM core.api_keys k, unnest(k.scopes) s
        WHERE k.project_id = p.id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) AS api_key_scopes,
       json_build_object(
         'api_keys', (SELECT count(*) FROM core.api_keys k WHERE k.project_id = p.id AND k.revoked_at IS NULL),
         'members', (SELECT count(*) FROM core.members m WHERE m.project_id = p.id),
         'traces', (SELECT count(*) FROM telemetry.traces t WHERE t.project_id = p.id)) AS resource_counts
FROM core.projects p`;

/** Which projects a principal may manage: a key its own; a user those where they are admin/owner. */
function manageableFilter(p: Principal, firstParam: number): { sql: string; params: unknown[] } {
  if (p.kind === 'api_key') return { sql: `p.id = $${firstParam}`, params: [p.projectId] };
  return {
    sql: `p.id IN (SELECT project_id FROM core.members WHERE user_id = $${firstParam} AND role = ANY($${firstParam + 1}::text[]))`,
    params: [p.userId, MANAGING_ROLES],
  };
}

// ---- statements ---------------------------------------------------------------------------------

async function selectManageable(db: Queryable, p: Principal): Promise<ProjectRow[]> {
  const f = manageableFilter(p, 1);
  const r = await db.query<ProjectRow>(`${SELECT_PROJECT} WHERE p.deleted_at IS NULL AND ${f.sql} ORDER BY p.name, p.id`, f.params);
  return r.rows;
}

/** By id, or (Strathon's addressing) by slug within the organization of the caller's project. */
async function selectManageableOne(db: Queryable, p: Principal, idOrSlug: string): Promise<ProjectRow | undefined> {
  const byId = isUuid(idOrSlug);
  const match = byId ? 'p.id = $1::uuid' : 'p.slug = $1 AND p.organization_id = (SELECT organization_id FROM core.projects WHERE id = $2)';
  const head = byId ? [idOrSlug.toLowerCase()] : [idOrSlug, p.projectId];
  const f = manageableFilter(p, head.length + 1);
  const r = await db.query<ProjectRow>(`${SELECT_PROJECT} WHERE p.deleted_at IS NULL AND ${match} AND ${f.sql}`, [...head, ...f.params]);
  return r.rows[0];
}

async function selectById(db: Queryable, projectId: string): Promise<ProjectRow | undefined> {
  const r = await db.query<ProjectRow>(`${SELECT_PROJECT} WHERE p.id = $1`, [projectId]);
  return r.rows[0];
}

async function organizationOf(db: Queryable, projectId: string): Promise<string> {
  const r = await db.query<{ organization_id: string }>('SELECT organization_id FROM core.projects WHERE id = $1', [projectId]);
  const row = r.rows[0];
  if (!row) throw new NotFound('project not found');
  return row.organization_id;
}

/** Insert unless the slug is taken in the organization (then undefined). */
async function insertProject(db: Queryable, organizationId: string, name: string, slug: string): Promise<string | undefined> {
  const r = await db.query<{ id: string }>(
    `INSERT INTO core.projects (organization_id, name, slug) VALUES ($1, $2, $3)
     ON CONFLICT (organization_id, slug) DO NOTHING RETURNING id`, [organizationId, name, slug]);
  return r.rows[0]?.id;
}

async function insertOwner(db: Queryable, projectId: string, userId: string): Promise<void> {
  await db.query(`INSERT INTO core.members (project_id, user_id, role) VALUES ($1, $2, 'owner')`, [projectId, userId]);
}

async function updateProjectRow(db: Queryable, projectId: string, patch: { name?: string; retentionDays?: number | null }): Promise<void> {
  await db.query(
    `UPDATE core.projects SET name = coalesce($2, name),
            retention_days = CASE WHEN $3 THEN $4::integer ELSE retention_days END
     WHERE id = $1`,
    [projectId, patch.name ?? null, patch.retentionDays !== undefined, patch.retentionDays ?? null],
  );
}

// ---- services -----------------------------------------------------------------------------------

export function listProjects(deps: AccessDeps, p: Principal): Promise<ProjectRow[]> {
  return selectManageable(deps.pool, p);
}

export async function getProject(deps: AccessDeps, p: Principal, idOrSlug: string): Promise<ProjectRow> {
  const row = await selectManageableOne(deps.pool, p, idOrSlug);
  if (!row) throw new NotFound('project not found');
  return row;
}

/** A slug from a name: lowercase alphanumerics and single hyphens, 3..64 characters. */
export function slugFromName(name: string): string {
  const base = name.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48).replace(/-+$/, '');
  return base.length >= 3 ? base : `project-${base || randomBytes(3).toString('hex')}`.replace(/-+$/, '');
}

/**
 * Create a project in the caller's organization with a first API key (raw key returned once).
 * A user caller becomes its owner. The first key gets the SDK default scopes (or `keyScopes`),
 * never one its creator lacks — for a user, the creator is the new project's owner (`*`).
 * An explicit slug already taken → 409; a derived one gets a random suffix instead.
 */
export async function createProject(
  deps: AccessDeps, change: ChangeContext, input: { name: string; slug?: string; keyScopes?: string[] },
): Promise<{ project: ProjectRow; key: string; keyScopes: string[] }> {
  const p = change.principal;
  const keyScopes = input.keyScopes ?? DEFAULT_KEY_SCOPES;
  if (p.kind === 'api_key') assertCanGrantScopes(p, keyScopes);
  return inTransaction(deps.pool, async (tx) => {
    const org = await organizationOf(tx, p.projectId);
    let slug = input.slug ?? slugFromName(input.name);
    let id = await insertProject(tx, org, input.name, slug);
    for (let attempt = 0; !id && !input.slug && attempt < 5; attempt++) {
      slug = `${slugFromName(input.name).slice(0, 57)}-${randomBytes(3).toString('hex')}`;
      id = await insertProject(tx, org, input.name, slug);
    }
    if (!id) throw new Conflict(`project with slug '${slug}' already exists`);
    if (p.kind === 'user') await insertOwner(tx, id, p.userId);
    const first = await createFirstKey(tx, id, `${slug}-default-key`, keyScopes, principalDisplay(p));
    // The new project's chain records its birth; the caller's project records that it happened.
    const details = { name: input.name, slug, first_key_id: first.id, first_key_prefix: first.prefix, first_key_scopes: keyScopes };
    await recordChange(tx, deps, change, {
      projectId: p.projectId, action: 'project.create', resource: { type: 'project', id }, details,
    });
    await recordChange(tx, deps, change, {
      projectId: id, action: 'project.create', resource: { type: 'project', id }, details: { ...details, created_from_project_id: p.projectId },
    });
    const project = (await selectById(tx, id)) as ProjectRow;
    return { project, key: first.key, keyScopes };
  });
}

/** Rename / set retention of a project the caller may manage (else 404). */
export async function updateProject(
  deps: AccessDeps, change: ChangeContext, idOrSlug: string, patch: { name?: string; retentionDays?: number | null },
): Promise<ProjectRow> {
  const p = change.principal;
  return inTransaction(deps.pool, async (tx) => {
    const before = await selectManageableOne(tx, p, idOrSlug);
    if (!before) throw new NotFound('project not found');
    await updateProjectRow(tx, before.id, patch);
    await recordChange(tx, deps, change, {
      projectId: before.id, action: 'project.update', resource: { type: 'project', id: before.id },
      details: {
        ...(patch.name !== undefined ? { name: patch.name, previous_name: before.name } : {}),
        ...(patch.retentionDays !== undefined ? { retention_days: patch.retentionDays, previous_retention_days: before.retention_days } : {}),
      },
    });
    return (await selectById(tx, before.id)) as ProjectRow;
  });
}
