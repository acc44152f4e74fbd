// Cookies: parse the Cookie header; write Set-Cookie with the dashboard's fixed attributes
// (HttpOnly, SameSite=Strict, Path=/, Secure over TLS or when configured).

export const SESSION_COOKIE = 'strathon_session';
export const PROJECT_COOKIE = 'strathon_project';
export const CSRF_COOKIE = 'strathon_csrf';
export const MFA_COOKIE = 'strathon_mfa';
export const FLASH_COOKIE = 'strathon_flash';

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || out.has(name)) continue;
    try {
      out.set(name, decodeURIComponent(part.slice(eq + 1).trim()));
    } catch {
      // a malformed value is simply absent
    }
  }
  return out;
}

export interface CookieOptions { maxAgeSeconds?: number; secure: boolean }

export function setCookie(name: string, value: string, opts: CookieOptions): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, 'Path=/', 'HttpOnly', 'SameSite=Strict'];
  if (opts.maxAgeSeconds !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`);
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}

export function clearCookie(name: string, secure: boolean): string {
  return setCookie(name, '', { maxAgeSeconds: 0, secure });
}
