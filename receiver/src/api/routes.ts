// The route table: every route of the receiver declares its auth here. An undeclared route is
// unreachable (404); a declared path with another method answers 405 with Allow.
import type { Request, Response } from 'express';
import type { Role } from '../auth/principal.js';

export type RouteAuth =
  | { kind: 'none' }
  /** Any principal (API key, access JWT or user) holding the scope; users get it from their role. */
  | { kind: 'scope'; scope: string }
  /** A user session with at least this role in the selected project (keys are refused). */
  | { kind: 'role'; role: Role }
  /** Any authenticated principal. */
  | { kind: 'any' };

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  auth: RouteAuth;
  /** 'raw' routes parse their own body (OTLP) and render errors as google.rpc.Status. */
  body: 'json' | 'raw' | 'none';
  /** Reachable by a user who must change their password first (change-password, me, logout). */
  duringPasswordChange?: boolean;
  handler: (req: Request, res: Response) => unknown;
}

export const none: RouteAuth = { kind: 'none' };
export const anyAuth: RouteAuth = { kind: 'any' };
export const scope = (s: string): RouteAuth => ({ kind: 'scope', scope: s });
export const role = (r: Role): RouteAuth => ({ kind: 'role', role: r });
