// Auth routes (SPEC §6.3, §7.3): register, login + MFA, sessions, API-key tokens, passwords, /v1/me.
// HTTP only: bodies are validated here (422 naming the field), the work is done by auth/ services,
// and every state change is audited through appendAudit inside the change's transaction.
import type { Request, Response } from 'express';
import { decodeJwt } from 'jose';
import type { ReceiverContext } from '../context.js';
import { Forbidden, HttpError, BadRequest, Unavailable, Unprocessable } from '../errors.js';
import { appendAudit } from '../audit/audit.js';
import { actingRole } from '../access/grants.js';
import { Authenticator } from '../auth/authenticate.js';
import { clientIp } from '../auth/client-ip.js';
import { adminResetPassword, changePassword, register, type RegisterResult } from '../auth/accounts.js';
import type { AuditHook, AuthDeps, ClientMeta } from '../auth/events.js';
import { passwordLogin, verifyMfaToken, type SecondFactor, type SessionGrant } from '../auth/login.js';
import { looksLikeTotp } from '../auth/mfa.js';
import { disableMfa, enableMfa, regenerateBackupCodes, setupMfa } from '../auth/mfa-enrolment.js';
import { PasswordHasher } from '../auth/passwords.js';
import { ROLES, type Principal, type Role, type UserPrincipal } from '../auth/principal.js';
import { revokeSession, SESSION_COOKIE } from '../auth/sessions.js';
import { issueTokenPair, refreshTokenState, rotateRefreshToken } from '../auth/token-family.js';
import { looksLikeJwt, revokeJti, verifyToken } from '../auth/tokens.js';
import { failClosed } from '../auth/transaction.js';
import { principalOf } from './app.js';
import { anyAuth, none, role, scope, type Route } from './routes.js';

// ---- request bodies -------------------------------------------------------------------------------

type Body = Record<string, unknown>;

function bodyOf(req: Request): Body {
  const b: unknown = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new Unprocessable('body must be a JSON object', ['body'], 'model_type');
  return b as Body;
}

/** A string field. Secrets (passwords, codes, tokens) are taken verbatim; other text is trimmed. */
function str(b: Body, name: string, opts: { required: true; max?: number; verbatim?: boolean }): string;
function str(b: Body, name: string, opts?: { required?: boolean; max?: number; verbatim?: boolean }): string | undefined;
function str(b: Body, name: string, opts: { required?: boolean; max?: number; verbatim?: boolean } = {}): string | undefined {
  const v = b[name];
  if (v === undefined || v === null || (v === '' && !opts.required)) {
    if (opts.required) throw new Unprocessable('field required', ['body', name], 'missing');
    return undefined;
  }
  if (typeof v !== 'string') throw new Unprocessable(`${name} must be a string`, ['body', name], 'string_type');
  const s = opts.verbatim ? v : v.trim();
  if (opts.required && s.length === 0) throw new Unprocessable(`${name} must not be empty`, ['body', name], 'string_too_short');
  const max = opts.max ?? 1024;
  if (s.length > max) throw new Unprocessable(`${name} must be at most ${max} characters`, ['body', name], 'string_too_long');
  return s;
}

function emailField(b: Body, name = 'email'): string {
  const e = str(b, name, { required: true, max: 320 });
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e)) throw new Unprocessable(`${name} is not an email address`, ['body', name], 'value_error');
  return e.toLowerCase();
}

function roleField(b: Body, name = 'role'): Role | undefined {
  const r = str(b, name);
  if (r === undefined) return undefined;
  if (!(ROLES as string[]).includes(r)) throw new Unprocessable(`${name} must be one of: owner, admin, operator, viewer`, ['body', name], 'enum');
  return r as Role;
}

/** `code` (TOTP or backup code, told apart by shape), or the explicit `totp_code` / `backup_code`. */
function secondFactor(b: Body): SecondFactor {
  const totp = str(b, 'totp_code', { max: 32, verbatim: true });
  const backup = str(b, 'backup_code', { max: 64, verbatim: true });
  const code = str(b, 'code', { max: 64, verbatim: true });
  if (totp !== undefined) return { totpCode: totp };
  if (backup !== undefined) return { backupCode: backup };
  if (code !== undefined) return looksLikeTotp(code) ? { totpCode: code } : { backupCode: code };
  return {};
}

// ---- responses ------------------------------------------------------------------------------------

function cookie(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

function sessionJson(g: SessionGrant) {
  return {
    token: g.token, token_type: 'session', expires_at: g.expiresAt.toISOString(),
    user: { id: g.user.id, email: g.user.email, name: g.user.name },
    must_change_password: g.user.mustChangePassword,
  };
}

function registerMessage(r: RegisterResult): string {
  switch (r.via) {
    case 'first_user': return `registered as owner of ${r.organization.name} / ${r.project.name}`;
    case 'invitation': return `registered; joined project ${r.project.name} as ${r.role}`;
    default: return `user created in project ${r.project.name} as ${r.role}; they log in with the password you set`;
  }
}

function requireUser(p: Principal): UserPrincipal {
  if (p.kind !== 'user') throw new Forbidden('requires a user session, not an API key');
  return p;
}

// ---- routes ---------------------------------------------------------------------------------------

export function authRoutes(ctx: ReceiverContext): Route[] {
  const { config } = ctx;
  const hasher = new PasswordHasher(config.passwordPepper);
  const ipOf = (req: Request) => clientIp(req, config.trustedProxies);
  const metaOf = (req: Request): ClientMeta => ({ ip: ipOf(req), userAgent: req.headers['user-agent'] });

  /** Audit rows carry the request id and client IP of the request that caused them. */
  const auditFor = (req: Request, res: Response): AuditHook => {
    const requestId = String(res.getHeader('X-Request-Id') ?? '') || null;
    const sourceIp = ipOf(req);
    return async (db, event) => {
      await appendAudit(db, { ...event, requestId, sourceIp }, { config, metrics: ctx.metrics });
    };
  };
  const depsFor = (req: Request, res: Response): AuthDeps => ({ pool: ctx.pool, hasher, config, audit: auditFor(req, res) });

  const setSession = (res: Response, g: SessionGrant) => {
    res.setHeader('Set-Cookie', cookie(g.token, config.sessionTtlSeconds, config.cookieSecure));
  };

  /** A lost Postgres is 503 "auth backend unavailable" on every auth route (fail closed). */
  const route = (r: Omit<Route, 'handler'>, handler: (req: Request, res: Response) => Promise<void>): Route => ({
    ...r,
    handler: async (req: Request, res: Response) => {
      try {
        await handler(req, res);
      } catch (err) {
        failClosed(err);
      }
    },
  });

  const registerHandler = async (req: Request, res: Response) => {
    const b = bodyOf(req);
    const email = emailField(b);
    const password = str(b, 'password', { required: true, verbatim: true });
    const displayName = str(b, 'display_name', { max: 200 }) ?? str(b, 'name', { max: 200 }) ?? null;
    const invitationToken = str(b, 'invitation_token', { max: 512 });
    const requestedRole = roleField(b);
    // The caller (if any) is resolved only when it matters: after the first user, without an invitation.
    const resolveCaller = async () => {
      if (!Authenticator.credential(req.headers)) return undefined;
      const principal = await ctx.auth.authenticate(req.headers, ipOf(req));
      return { principal, actingRole: actingRole(principal) };
    };
    const r = await register(depsFor(req, res), { email, password, displayName, invitationToken, role: requestedRole }, resolveCaller, metaOf(req));
    if (r.session) res.setHeader('Set-Cookie', cookie(r.session.token, config.sessionTtlSeconds, config.cookieSecure));
    res.status(201).json({
      token: r.session?.token ?? null,
      ...(r.session ? { token_type: 'session', expires_at: r.session.expiresAt.toISOString() } : {}),
      user: r.user,
      role: r.role,
      organization: r.organization,
      project: r.project,
      message: registerMessage(r),
    });
  };

  const loginHandler = async (req: Request, res: Response) => {
    const b = bodyOf(req);
    const email = str(b, 'email', { required: true, max: 320 });
    const password = str(b, 'password', { required: true, verbatim: true, max: 4096 });
    const result = await passwordLogin(depsFor(req, res), email, password, secondFactor(b), metaOf(req));
    if (result.kind === 'mfa_required') {
      res.json({ mfa_required: true, mfa_token: result.mfaToken, expires_at: result.expiresAt.toISOString() });
      return;
    }
    setSession(res, result);
    res.json(sessionJson(result));
  };

  const mfaVerifyHandler = async (req: Request, res: Response) => {
    const b = bodyOf(req);
    const mfaToken = str(b, 'mfa_token', { required: true, verbatim: true, max: 200 });
    const factor = secondFactor(b);
    if (factor.totpCode === undefined && factor.backupCode === undefined) throw new Unprocessable('field required', ['body', 'code'], 'missing');
    const grant = await verifyMfaToken(depsFor(req, res), mfaToken, factor, metaOf(req));
    setSession(res, grant);
    res.json(sessionJson(grant));
  };

  const tokenHandler = async (req: Request, res: Response) => {
    const p = principalOf(res);
    if (p.kind !== 'api_key' || p.via !== 'key') throw new Forbidden('POST /v1/auth/token exchanges a raw API key (stra_…); sessions and access tokens cannot mint tokens');
    res.json(await issueTokenPair(depsFor(req, res), p));
  };

  const refreshHandler = async (req: Request, res: Response) => {
    const token = str(bodyOf(req), 'refresh_token', { required: true, verbatim: true, max: 4096 });
    res.json(await rotateRefreshToken(depsFor(req, res), token));
  };

  const validateHandler = async (req: Request, res: Response) => {
    const token = str(bodyOf(req), 'token', { verbatim: true, max: 4096 }) ?? Authenticator.credential(req.headers);
    if (!token) {
      res.json({ valid: false, claims: null, reason: 'token required' });
      return;
    }
    try {
      res.json({ valid: true, claims: await validateToken(token, req) });
    } catch (err) {
      // Fail closed when Postgres is down; any other refusal is an answer, not an error.
      if (err instanceof Unavailable || !(err instanceof HttpError)) throw err;
      res.json({ valid: false, claims: null, reason: err.message });
    }
  };

  const validateToken = async (token: string, req: Request): Promise<Record<string, unknown>> => {
    if (looksLikeJwt(token)) {
      let typ: unknown;
      try {
        typ = decodeJwt(token).typ;
      } catch {
        throw new BadRequest('invalid token');
      }
      if (typ === 'refresh') {
        const claims = await verifyToken(config.jwtSecret, token, 'refresh');
        const state = await refreshTokenState(ctx.pool, claims.jti);
        if (state !== 'live') throw new BadRequest(state === 'revoked' ? 'token revoked' : 'invalid token');
        return { ...claims };
      }
      await ctx.auth.authenticate({ authorization: `Bearer ${token}` }, ipOf(req));
      return { ...(await verifyToken(config.jwtSecret, token, 'access')) };
    }
    const p = await ctx.auth.authenticate({ authorization: `Bearer ${token}`, 'x-project-id': req.headers['x-project-id'] }, ipOf(req));
    if (p.kind === 'user') {
      return { sub: p.userId, kind: 'session', email: p.email, project_id: p.projectId, role: p.role, must_change_password: p.mustChangePassword };
    }
    return { sub: p.keyId, kind: 'api_key', project_id: p.projectId, scopes: p.scopes, key_prefix: p.keyPrefix };
  };

  const logoutHandler = async (req: Request, res: Response) => {
    const p = principalOf(res);
    const deps = depsFor(req, res);
    if (p.kind === 'user') {
      await revokeSession(ctx.pool, p.sessionHash);
      await deps.audit(ctx.pool, { projectId: p.projectId, actor: { type: 'user', id: p.userId, display: p.email }, action: 'auth.logout', resource: { type: 'session' } });
    } else if (p.via === 'jwt' && p.jti) {
      const presented = Authenticator.credential(req.headers) ?? '';
      const claims = await verifyToken(config.jwtSecret, presented, 'access');
      await revokeJti(ctx.pool, claims.jti, claims.exp, 'logout');
      await deps.audit(ctx.pool, { projectId: p.projectId, actor: { type: 'api_key', id: p.keyId, display: p.keyPrefix, keyPrefix: p.keyPrefix }, action: 'auth.logout', resource: { type: 'access_token', id: claims.jti } });
    } else {
      throw new BadRequest('an API key cannot be logged out; revoke it with DELETE /v1/api_keys/{id}');
    }
    res.setHeader('Set-Cookie', cookie('', 0, config.cookieSecure));
    res.json({ revoked: true });
  };

  const changePasswordHandler = async (req: Request, res: Response) => {
    const p = requireUser(principalOf(res));
    const b = bodyOf(req);
    const current = str(b, 'current_password', { required: true, verbatim: true, max: 4096 });
    const next = str(b, 'new_password', { required: true, verbatim: true, max: 4096 });
    const r = await changePassword(depsFor(req, res), p, current, next);
    res.json({ changed: true, revoked_sessions: r.revokedSessions, message: 'password changed; your other sessions were signed out' });
  };

  const mfaSetupHandler = async (req: Request, res: Response) => {
    const e = await setupMfa(depsFor(req, res), requireUser(principalOf(res)));
    res.json({ secret: e.secret, otpauth_uri: e.otpauthUri, qr_svg: e.qrSvg });
  };

  const mfaEnableHandler = async (req: Request, res: Response) => {
    const code = str(bodyOf(req), 'code', { required: true, verbatim: true, max: 32 });
    const r = await enableMfa(depsFor(req, res), requireUser(principalOf(res)), code);
    res.json({ enabled: true, backup_codes: r.backupCodes, message: 'MFA enabled; store the backup codes now, they are shown only once' });
  };

  const mfaDisableHandler = async (req: Request, res: Response) => {
    const b = bodyOf(req);
    const password = str(b, 'password', { required: true, verbatim: true, max: 4096 });
    const code = str(b, 'code', { verbatim: true, max: 64 }) ?? str(b, 'totp_code', { verbatim: true, max: 64 }) ?? str(b, 'backup_code', { verbatim: true, max: 64 });
    if (code === undefined) throw new Unprocessable('field required', ['body', 'code'], 'missing');
    await disableMfa(depsFor(req, res), requireUser(principalOf(res)), password, code);
    res.json({ enabled: false });
  };

  const backupCodesHandler = async (req: Request, res: Response) => {
    const r = await regenerateBackupCodes(depsFor(req, res), requireUser(principalOf(res)));
    res.json({ backup_codes: r.backupCodes, message: 'new backup codes; the previous ones no longer work' });
  };

  const adminResetHandler = async (req: Request, res: Response) => {
    const email = emailField(bodyOf(req));
    const p = principalOf(res);
    const r = await adminResetPassword(depsFor(req, res), p, actingRole(p), email);
    res.json({ temporary_password: r.temporaryPassword, message: `temporary password for ${r.email}: it works once and must be changed at the next login; their sessions were revoked` });
  };

  const meHandler = async (_req: Request, res: Response) => {
    const p = principalOf(res);
    if (p.kind === 'user') {
      res.json({
        kind: 'user', id: p.userId, email: p.email, display_name: p.displayName, project_id: p.projectId, role: p.role, scopes: p.scopes,
        must_change_password: p.mustChangePassword,
      });
      return;
    }
    res.json({ kind: 'api_key', id: p.keyId, key_prefix: p.keyPrefix, project_id: p.projectId, scopes: p.scopes, via: p.via });
  };

  return [
    route({ method: 'POST', path: '/v1/auth/register', auth: none, body: 'json' }, registerHandler),
    route({ method: 'POST', path: '/v1/auth/login', auth: none, body: 'json' }, loginHandler),
    route({ method: 'POST', path: '/v1/auth/mfa/verify', auth: none, body: 'json' }, mfaVerifyHandler),
    route({ method: 'POST', path: '/v1/auth/token', auth: anyAuth, body: 'json' }, tokenHandler),
    route({ method: 'POST', path: '/v1/auth/refresh', auth: none, body: 'json' }, refreshHandler),
    route({ method: 'POST', path: '/v1/auth/validate', auth: none, body: 'json' }, validateHandler),
    route({ method: 'POST', path: '/v1/auth/logout', auth: anyAuth, body: 'json', duringPasswordChange: true }, logoutHandler),
    route({ method: 'POST', path: '/v1/auth/change-password', auth: role('viewer'), body: 'json', duringPasswordChange: true }, changePasswordHandler),
    route({ method: 'POST', path: '/v1/auth/mfa/setup', auth: role('viewer'), body: 'json' }, mfaSetupHandler),
    route({ method: 'POST', path: '/v1/auth/mfa/enable', auth: role('viewer'), body: 'json' }, mfaEnableHandler),
    route({ method: 'POST', path: '/v1/auth/mfa/disable', auth: role('viewer'), body: 'json' }, mfaDisableHandler),
    route({ method: 'POST', path: '/v1/auth/mfa/backup-codes', auth: role('viewer'), body: 'json' }, backupCodesHandler),
    route({ method: 'POST', path: '/v1/auth/admin-reset-password', auth: scope('projects:manage'), body: 'json' }, adminResetHandler),
    route({ method: 'GET', path: '/v1/me', auth: anyAuth, body: 'none', duringPasswordChange: true }, meHandler),
  ];
}
