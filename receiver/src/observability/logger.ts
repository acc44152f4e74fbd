// pino logger; secrets are redacted by the logger's own configuration, not by call sites.
import { pino, destination as pinoDestination, stdTimeFunctions, type Logger, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'headers["x-api-key"]',
  '*.password', '*.token', '*.key', '*.secret', '*.api_key', '*.apiKey', '*.access_token', '*.refresh_token',
  'password', 'token', 'api_key', 'apiKey', 'secret', 'authorization', 'cookie',
];

export function createLogger(opts: { level: string; format: 'text' | 'json'; destination?: DestinationStream }): Logger {
  const base = {
    level: opts.level,
    base: { service: 'strathon-receiver' },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (opts.format === 'json') return pino(base, opts.destination ?? pinoDestination({ sync: true }));
  const stream = pretty({ singleLine: true, colorize: false, translateTime: 'SYS:standard', ignore: 'pid,hostname,service', destination: opts.destination ?? 1, sync: true });
  return pino(base, stream);
}
