// Projects, members, invitations, /v1/me (SPEC §6.1, §7.3). Placeholder until implemented.
import type { ReceiverContext } from '../context.js';
import type { Route } from './routes.js';

export function projectRoutes(_ctx: ReceiverContext): Route[] {
  return [];
}
