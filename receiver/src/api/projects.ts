// Projects and members (SPEC §6.1, §7.3 /v1/projects, /v1/members). An object the caller cannot
// manage — another project, another project's user — answers 404, checked before the body.
import type { Request, Response } from 'express';
import type { ReceiverContext } from '../context.js';
import { NotFound, Unprocessable } from '../errors.js';
import {
  changeRole, createProject, getMember, getProject, input, inviteMember, isRole, listMembers, listProjects, removeMember,
  transferOwnership, updateProject, type MemberRow, type ProjectRow,
} from '../access/access.js';
import type { Role } from '../auth/principal.js';
import { principalOf } from './app.js';
import { accessDeps, changeContext } from './keys.js';
import { role, scope, type Route } from './routes.js';

const SLUG = /^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/;
const MAX_RETENTION_DAYS = 36_500;
const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Strathon's ProjectResponse; `api_key` is the raw first key on create only, else null. */
function projectJson(p: ProjectRow, apiKey: string | null = null) {
  return {
    id: p.id, name: p.name, slug: p.slug, retention_days: p.retention_days, api_key: apiKey, api_key_scopes: p.api_key_scopes,
    created_at: iso(p.created_at), deleted_at: iso(p.deleted_at), resource_counts: p.resource_counts,
  };
}

function memberJson(m: MemberRow) {
  return {
    id: m.user_id, user_id: m.user_id, email: m.email, display_name: m.display_name, role: m.role,
    joined_at: iso(m.joined_at), last_active: iso(m.last_active), mfa_enabled: m.mfa_enabled,
  };
}

function roleField(b: Record<string, unknown>): Role {
  const r = b.role;
  if (r === undefined || r === null) throw new Unprocessable('role is required', ['body', 'role'], 'missing');
  if (!isRole(r)) throw new Unprocessable('role must be one of: owner, admin, operator, viewer', ['body', 'role'], 'enum');
  return r;
}

/** A user id that is not a UUID names nobody in the project: 404, like another project's user. */
function userIdParam(req: Request): string {
  const id = String(req.params.user_id ?? '');
  if (!input.isUuid(id)) throw new NotFound('member not found');
  return id.toLowerCase();
}

export function projectRoutes(ctx: ReceiverContext): Route[] {
  const deps = accessDeps(ctx);

  // ---- projects -----------------------------------------------------------------------------------

  const list = async (_req: Request, res: Response) => {
    res.json({ data: (await listProjects(deps, principalOf(res))).map((p) => projectJson(p)), next_cursor: null });
  };

  const create = async (req: Request, res: Response) => {
    const b = input.bodyObject(req.body);
    const name = input.text(b, 'name', 200, { required: true });
    const slug = input.text(b, 'slug', 64);
    if (slug !== undefined && !SLUG.test(slug)) {
      throw new Unprocessable('slug must be 3-64 characters: lowercase letters, digits and hyphens, not starting or ending with a hyphen', ['body', 'slug']);
    }
    const created = await createProject(deps, changeContext(ctx, req, res), { name, slug, keyScopes: input.scopes(b, 'api_key_scopes') });
    res.status(201).json({ ...projectJson(created.project, created.key), api_key_scopes: created.keyScopes });
  };

  const patch = async (req: Request, res: Response) => {
    const idOrSlug = String(req.params.id ?? '');
    await getProject(deps, principalOf(res), idOrSlug);
    const b = input.bodyObject(req.body);
    if (b.slug !== undefined) throw new Unprocessable('slug cannot be changed', ['body', 'slug']);
    const name = input.text(b, 'name', 200);
    const retentionDays = b.retention_days === null ? null : input.intInRange(b, 'retention_days', 1, MAX_RETENTION_DAYS);
    if (name === undefined && retentionDays === undefined) throw new Unprocessable('nothing to update: give name and/or retention_days', ['body']);
    const updated = await updateProject(deps, changeContext(ctx, req, res), idOrSlug, { name, retentionDays });
    res.json(projectJson(updated));
  };

  // ---- members ------------------------------------------------------------------------------------

  const members = async (_req: Request, res: Response) => {
    res.json({ data: (await listMembers(deps, principalOf(res).projectId)).map(memberJson), next_cursor: null });
  };

  const invite = async (req: Request, res: Response) => {
    const b = input.bodyObject(req.body);
    const email = input.email(b, 'email');
    const r = roleField(b);
    const inv = await inviteMember(deps, changeContext(ctx, req, res), email, r);
    res.status(201).json({ id: inv.id, email, role: r, invitation_token: inv.token, expires_at: inv.expiresAt.toISOString() });
  };

  const setRole = async (req: Request, res: Response) => {
    const userId = userIdParam(req);
    await getMember(deps, principalOf(res).projectId, userId);
    const r = roleField(input.bodyObject(req.body));
    res.json(memberJson(await changeRole(deps, changeContext(ctx, req, res), userId, r)));
  };

  const remove = async (req: Request, res: Response) => {
    await removeMember(deps, changeContext(ctx, req, res), userIdParam(req));
    res.status(204).end();
  };

  const transfer = async (req: Request, res: Response) => {
    const t = await transferOwnership(deps, changeContext(ctx, req, res), userIdParam(req));
    res.json({ transferred: true, owner: memberJson(t.owner), previous_owner: memberJson(t.previousOwner) });
  };

  return [
    { method: 'GET', path: '/v1/projects', auth: scope('projects:manage'), body: 'none', handler: list },
    { method: 'POST', path: '/v1/projects', auth: scope('projects:manage'), body: 'json', handler: create },
    { method: 'PATCH', path: '/v1/projects/:id', auth: scope('projects:manage'), body: 'json', handler: patch },
    { method: 'GET', path: '/v1/members', auth: scope('projects:manage'), body: 'none', handler: members },
    { method: 'POST', path: '/v1/members/invitations', auth: scope('projects:manage'), body: 'json', handler: invite },
    { method: 'PATCH', path: '/v1/members/:user_id', auth: scope('projects:manage'), body: 'json', handler: setRole },
    { method: 'DELETE', path: '/v1/members/:user_id', auth: scope('projects:manage'), body: 'none', handler: remove },
    { method: 'POST', path: '/v1/members/:user_id/transfer-ownership', auth: role('owner'), body: 'json', handler: transfer },
  ];
}
