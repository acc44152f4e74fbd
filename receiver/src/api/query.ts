// Query API routes (SPEC §7: traces, spans, agents, costs, model prices). Placeholder until implemented.
import type { ReceiverContext } from '../context.js';
import type { Route } from './routes.js';

export function queryRoutes(_ctx: ReceiverContext): Route[] {
  return [];
}
