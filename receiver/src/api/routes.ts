// The route table: every route of the receiver declares its auth here. An undeclared route is
// unreachable (404); a declared path with another method answers 405 with Allow.
import type { Request, Response } from 'express';

export type RouteAuth = { kind: 'none' } | { kind: 'scope'; scope: string };
export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  auth: RouteAuth;
  /** 'otlp' routes parse their own body and render errors as google.rpc.Status. */
  body: 'json' | 'raw' | 'none';
  handler: (req: Request, res: Response) => unknown;
}

export const none: RouteAuth = { kind: 'none' };
export const scope = (s: string): RouteAuth => ({ kind: 'scope', scope: s });
