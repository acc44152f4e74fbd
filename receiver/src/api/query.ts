// The read API of the trace store (SPEC §7.3): traces, spans, agents, costs, model prices.
import type { ReceiverContext } from '../context.js';
import type { Route } from './routes.js';
import { traceRoutes } from './traces.js';
import { spanRoutes } from './spans.js';
import { agentRoutes } from './agents.js';
import { costRoutes } from './costs.js';
import { modelPriceRoutes } from './model-prices.js';

export function queryRoutes(ctx: ReceiverContext): Route[] {
  return [...traceRoutes(ctx), ...spanRoutes(ctx), ...agentRoutes(ctx), ...costRoutes(ctx), ...modelPriceRoutes(ctx)];
}
