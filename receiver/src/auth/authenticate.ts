// Resolve any credential of SPEC §7.1 to a Principal: raw stra_ key, access JWT, or user session
// (Bearer or strathon_session cookie). A user in several projects names one with X-Project-Id.
import type { IncomingHttpHeaders } from 'node:http';
import type pg from 'pg';
import { BadRequest, NotFound, Unauthorized, Unavailable } from '../errors.js';
import { presentedCredential, type ApiKeyAuthenticator } from './keys.js';
import { assertNotRevoked, looksLikeJwt, verifyToken } from './tokens.js';
import { sessionFromCookie, sha256 } from './sessions.js';
import { scopesForRole, type Principal, type Role } from './principal.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Authenticator {
  constructor(private readonly pool: pg.Pool, private readonly keys: ApiKeyAuthenticator, private readonly jwtSecret: Buffer) {}

  /** The raw credential a request presents (header first, then the session cookie). */
  static credential(headers: IncomingHttpHeaders): string | undefined {
    return presentedCredential(headers) ?? sessionFromCookie(headers.cookie);
  }

  async authenticate(headers: IncomingHttpHeaders, clientIp: string): Promise<Principal> {
    const credential = Authenticator.credential(headers);
    if (!credential) throw new Unauthorized('token required');
    if (credential.startsWith('stra_')) {
      const p = await this.keys.authenticate(credential, clientIp);
      return { ...p, via: 'key' };
    }
    if (looksLikeJwt(credential)) return this.fromJwt(credential);
    // An mfa_token is never a session (SPEC §13.11): it lives in core.mfa_challenges, not core.sessions.
    return this.fromSession(credential, headers['x-project-id']);
  }

  private async fromJwt(token: string): Promise<Principal> {
    const claims = await verifyToken(this.jwtSecret, token, 'access');
    await assertNotRevoked(this.pool, claims.jti);
    if (claims.fam !== undefined && (typeof claims.fam !== 'string' || !UUID.test(claims.fam))) throw new Unauthorized('invalid token');
    // The key behind the token must still be valid: revoking a key kills its tokens at once. And
    // its refresh-token family must not be revoked (a reused refresh token revokes the family).
    let live: boolean;
    try {
      const r = await this.pool.query(
        {
          name: 'jwt_key_live',
          text: `SELECT 1 FROM core.api_keys WHERE project_id = $1 AND id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                 AND ($3::uuid IS NULL OR NOT EXISTS (SELECT 1 FROM core.refresh_tokens f WHERE f.family_id = $3::uuid AND f.revoked_at IS NOT NULL))`,
          values: [claims.pid, claims.sub, claims.fam ?? null],
        },
      );
      live = (r.rowCount ?? 0) > 0;
    } catch {
      throw new Unavailable('auth backend unavailable', 2);
    }
    if (!live) throw new Unauthorized('token revoked');
    return { kind: 'api_key', keyId: claims.sub, projectId: claims.pid, scopes: claims.scopes, keyPrefix: claims.prefix, via: 'jwt', jti: claims.jti };
  }

  private async fromSession(token: string, projectHeader: string | string[] | undefined): Promise<Principal> {
    const hash = sha256(token);
    let rows: { user_id: string; email: string; display_name: string | null; expires_at: Date; revoked_at: Date | null; disabled_at: Date | null; must_change_password: boolean; project_id: string | null; role: Role | null }[];
    try {
      const r = await this.pool.query(
        {
          name: 'session_lookup',
          text: `SELECT s.user_id, u.email, u.display_name, s.expires_at, s.revoked_at, u.disabled_at, u.must_change_password, m.project_id, m.role
                 FROM core.sessions s JOIN core.users u ON u.id = s.user_id
                 LEFT JOIN core.members m ON m.user_id = s.user_id
                 LEFT JOIN core.projects p ON p.id = m.project_id
                 WHERE s.token_hash = $1 AND (m.project_id IS NULL OR p.deleted_at IS NULL)
                 ORDER BY m.joined_at`,
          values: [hash],
        },
      );
      rows = r.rows;
    } catch {
      throw new Unavailable('auth backend unavailable', 2);
    }
    const first = rows[0];
    if (!first) throw new Unauthorized('invalid token');
    if (first.revoked_at) throw new Unauthorized('token revoked');
    if (first.expires_at.getTime() <= Date.now()) throw new Unauthorized('token expired');
    if (first.disabled_at) throw new Unauthorized('invalid token');
    const memberships = rows.filter((r) => r.project_id !== null);
    const wanted = Array.isArray(projectHeader) ? projectHeader[0] : projectHeader;
    let m;
    if (wanted) {
      if (!UUID.test(wanted)) throw new BadRequest('X-Project-Id must be a project UUID');
      m = memberships.find((x) => x.project_id === wanted.toLowerCase());
      if (!m) throw new NotFound('project not found');
    } else if (memberships.length === 1) {
      m = memberships[0];
    } else if (memberships.length === 0) {
      throw new NotFound('you are not a member of any project');
    } else {
      throw new BadRequest('X-Project-Id required');
    }
    const role = (m?.role ?? 'viewer') as Role;
    return {
      kind: 'user', userId: first.user_id, email: first.email, displayName: first.display_name,
      projectId: m?.project_id as string, role, scopes: scopesForRole(role), sessionHash: hash, mustChangePassword: first.must_change_password,
    };
  }
}
