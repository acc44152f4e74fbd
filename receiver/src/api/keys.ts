// API key routes (SPEC §6.2, §7.3 /v1/api_keys). Placeholder until implemented.
import type { ReceiverContext } from '../context.js';
import type { Route } from './routes.js';

export function apiKeyRoutes(_ctx: ReceiverContext): Route[] {
  return [];
}
