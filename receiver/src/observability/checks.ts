// A readiness check result, as shown under "checks" in GET /ready.
export interface Check { status: 'ok' | 'failed' | 'disabled'; reason?: string; [k: string]: unknown }
