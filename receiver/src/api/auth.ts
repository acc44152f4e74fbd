// Auth routes (SPEC §6.3: register, login, MFA, tokens, sessions). Placeholder until implemented.
import type { ReceiverContext } from '../context.js';
import type { Route } from './routes.js';

export function authRoutes(_ctx: ReceiverContext): Route[] {
  return [];
}
