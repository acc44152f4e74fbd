// Security headers on every dashboard response (SPEC §6.4, §12).
import type { ServerResponse } from 'node:http';

/** No inline script or style anywhere: scripts and styles come from /static only. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // data: for the MFA QR code (an SVG the receiver renders, shown as an image, never as markup).
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export const PERMISSIONS_POLICY = [
  'accelerometer=()', 'autoplay=()', 'camera=()', 'display-capture=()', 'geolocation=()', 'gyroscope=()', 'magnetometer=()',
  'microphone=()', 'midi=()', 'payment=()', 'usb=()', 'serial=()', 'hid=()', 'bluetooth=()', 'browsing-topics=()',
].join(', ');

export function setSecurityHeaders(res: ServerResponse, requestId: string, secure: boolean): void {
  res.setHeader('X-Request-Id', requestId);
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'strict-origin-when-cross-origin');
  res.setHeader('Permissions-Policy', PERMISSIONS_POLICY);
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
  // Only over TLS: an HSTS header on plain HTTP is ignored by browsers and would mislead.
  if (secure) res.setHeader('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
}
