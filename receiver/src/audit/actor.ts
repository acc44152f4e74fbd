// Who did it: the actor recorded on an audit row, from an authenticated principal or for the
// receiver itself (workers) and strathon-admin.
import type { Principal } from '../auth/principal.js';
import type { ActorType } from './canonical.js';

export interface AuditActor {
  type: ActorType;
  /** user id, API key id, worker name, or the OS user running strathon-admin. */
  id: string | null;
  /** email, key prefix, "system", … — what a person reads in the log. */
  display?: string | null;
  keyPrefix?: string | null;
}

export function auditActorFromPrincipal(p: Principal): AuditActor {
  switch (p.kind) {
    case 'api_key':
      // Also when the key is presented as an access JWT minted from it: the key is the actor.
      return { type: 'api_key', id: p.keyId, display: p.keyPrefix, keyPrefix: p.keyPrefix };
    case 'user':
      return { type: 'user', id: p.userId, display: p.email, keyPrefix: null };
  }
}

/** The receiver acting on its own (a worker, a budget halt): `component` names the part. */
export function systemActor(component: string): AuditActor {
  return { type: 'system', id: component, display: 'system' };
}

/** strathon-admin, run by `osUser` (process user name). */
export function cliActor(osUser: string | null): AuditActor {
  return { type: 'cli', id: osUser, display: 'strathon-admin' };
}
