// OTLP/gRPC TraceService/Export on STRATHON_GRPC_PORT (SPEC §5.2). Placeholder until implemented.
import type { ReceiverContext } from '../context.js';

export interface GrpcServer { port: number; close(timeoutMs: number): Promise<void> }

export async function startGrpcServer(_ctx: ReceiverContext): Promise<GrpcServer | undefined> {
  return undefined;
}
