// Worker framework (SPEC §11). Placeholder until implemented: no workers, no checks.
import type { ReceiverContext } from '../context.js';
import type { Check } from '../observability/checks.js';

export interface Workers {
  start(): void;
  stop(timeoutMs: number): Promise<void>;
  checks(): Record<string, Check>;
}

export function createWorkers(_ctx: ReceiverContext): Workers {
  return { start() {}, async stop() {}, checks: () => ({}) };
}
