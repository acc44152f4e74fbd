// Receiver entry point: SPEC §3 boot sequence, banner, signals. Nothing else lives here.
import dotenv from 'dotenv';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './observability/logger.js';
import { startReceiver } from './receiver.js';
import { DEV_KEY } from './auth/keys.js';
import { VERSION } from './version.js';

dotenv.config({ quiet: true });

async function main() {
  let loaded;
  try {
    loaded = loadConfig(process.env, VERSION);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`strathon-receiver: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  for (const w of warnings) log.warn(w);

  let receiver;
  try {
    receiver = await startReceiver(config, log);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'receiver failed to start');
    await new Promise((r) => setTimeout(r, 50));
    process.exit(1);
  }
  const dashboardUrl = `http://localhost:${config.dashboardPort}`;
  const banner = [
    '',
    `  Strathon-TS receiver ${config.version} is up`,
    `  OTLP/HTTP endpoint:  ${receiver.url}/v1/traces`,
    receiver.grpcPort ? `  OTLP/gRPC endpoint:  ${receiver.url.replace(/^http:\/\//, '').replace(/:\d+$/, '')}:${receiver.grpcPort}` : '  OTLP/gRPC:           disabled (STRATHON_GRPC_ENABLED=false)',
    `  Dashboard:           ${dashboardUrl}`,
    `  Health / readiness:  ${receiver.url}/health  ${receiver.url}/ready`,
    config.seedDevKey
      ? `  Dev API key:         ${DEV_KEY}   (development only; STRATHON_SEED_DEV_KEY=true)`
      : '  API key:             create one with: npx strathon-admin create-api-key --project 00000000-0000-0000-0000-000000000001',
    '',
  ].join('\n');
  process.stdout.write(`${banner}\n`);
  log.info({ url: receiver.url, port: receiver.port }, 'receiver listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'signal received');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 10 s, exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    receiver
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

process.on('unhandledRejection', (err) => {
  process.stderr.write(`unhandled rejection (kept running): ${String((err as Error)?.stack ?? err)}\n`);
});

void main();
