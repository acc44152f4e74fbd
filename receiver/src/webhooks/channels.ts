// Notification channels (SPEC §9): webhook endpoints of a project, with their signing secrets
// sealed under STRATHON_ENCRYPTION_KEY. Every change runs in one transaction with its audit row.
// A channel is only ever addressed within the caller's project: another project's id is 404.
import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { Conflict, NotFound, Unavailable, Unprocessable } from '../errors.js';
import { appendAudit, type AuditActor } from '../audit/audit.js';
import { enqueueEvent, type WebhookEventType } from './outbox.js';
import { newSigningSecret, PREVIOUS_SECRET_TTL_SECONDS, SecretBox } from './signing.js';
import { RefusedUrl, resolveAllowed } from './ssrf.js';
import { inTransaction } from '../db/transaction.js';

export interface WebhookDeps {
  pool: pg.Pool;
  config: Pick<Config, 'env' | 'encryptionKey' | 'webhookAllowPrivate' | 'auditHmacKey' | 'auditHmacKeyId' | 'auditHmacKeysPrevious'>;
  metrics: { registry: Registry };
}

/** Who asks for a change, and from where (for the audit row). */
export interface ChangeContext { actor: AuditActor; requestId: string | null; sourceIp: string | null }

export interface ChannelRow {
  project_id: string; id: string; name: string; channel_type: 'webhook'; url: string; description: string | null;
  events: string[]; enabled: boolean; created_at: Date; updated_at: Date; previous_secret_expires_at: Date | null;
}

export interface ChannelInput { name: string; url: string; description: string | null; events: WebhookEventType[]; enabled: boolean }
export type ChannelPatch = Partial<ChannelInput>;

export const MAX_URL_LENGTH = 2048;

const COLUMNS = `project_id, id, name, channel_type, url, description, events, enabled, created_at, updated_at,
  CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at`;

type Tx = pg.PoolClient;

export { inTransaction };

export async function audit(tx: Tx, deps: WebhookDeps, change: ChangeContext,
  event: { projectId: string; action: string; resource: { type: string; id: string }; details?: Record<string, unknown> }): Promise<void> {
  await appendAudit(tx, {
    projectId: event.projectId, actor: change.actor, action: event.action, resource: event.resource,
    requestId: change.requestId, sourceIp: change.sourceIp, details: event.details,
  }, { config: deps.config, metrics: deps.metrics });
}

function secretBox(config: WebhookDeps['config']): SecretBox {
  if (!config.encryptionKey) {
    throw new Unavailable('webhook signing secrets cannot be stored: STRATHON_ENCRYPTION_KEY is not set (generate one with: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64url\'))")', 60);
  }
  return new SecretBox(config.encryptionKey);
}

/**
 * The URL a channel may have: http(s) only (https in production), no credentials, and — unless
 * STRATHON_WEBHOOK_ALLOW_PRIVATE — a host resolving only to public addresses. 422 with the reason.
 */
export async function checkWebhookUrl(raw: string, config: WebhookDeps['config'], loc: (string | number)[] = ['body', 'url']): Promise<string> {
  const bad = (msg: string, type = 'url_parsing') => new Unprocessable(msg, loc, type);
  if (raw.length > MAX_URL_LENGTH) throw bad(`url must be at most ${MAX_URL_LENGTH} characters`, 'string_too_long');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('url is not a valid absolute URL (e.g. https://example.com/hooks/strathon)');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('url must use https (or http outside production)', 'url_scheme');
  if (config.env === 'production' && url.protocol !== 'https:') throw bad('url must use https when STRATHON_ENV=production', 'url_scheme');
  if (url.username || url.password) throw bad('url must not contain credentials; the endpoint authenticates deliveries by their signature');
  if (!url.hostname) throw bad('url has no host');
  // With private addresses allowed there is nothing to check (the name may resolve only later).
  if (!config.webhookAllowPrivate) {
    try {
      await resolveAllowed(url.hostname, false);
    } catch (err) {
      if (err instanceof RefusedUrl) throw bad(err.message, 'url_refused');
      throw err;
    }
  }
  return url.toString();
}

// ---- statements ---------------------------------------------------------------------------------

export async function listChannels(pool: pg.Pool, projectId: string): Promise<ChannelRow[]> {
  const r = await pool.query<ChannelRow>(`SELECT ${COLUMNS} FROM core.notification_channels WHERE project_id = $1 ORDER BY created_at DESC, id`, [projectId]);
  return r.rows;
}

async function selectChannel(db: Pick<Tx, 'query'>, projectId: string, id: string, lock = ''): Promise<ChannelRow | undefined> {
  const r = await db.query<ChannelRow>(`SELECT ${COLUMNS} FROM core.notification_channels WHERE project_id = $1 AND id = $2 ${lock}`, [projectId, id]);
  return r.rows[0];
}

export async function getChannel(pool: pg.Pool, projectId: string, id: string): Promise<ChannelRow> {
  const row = await selectChannel(pool, projectId, id);
  if (!row) throw new NotFound('notification channel not found');
  return row;
}

const hostOf = (url: string) => new URL(url).host;

// ---- changes ------------------------------------------------------------------------------------

/** A new channel and its secret (returned this once; only the sealed form is stored). */
export async function createChannel(deps: WebhookDeps, change: ChangeContext, projectId: string, input: ChannelInput): Promise<{ row: ChannelRow; secret: string }> {
  const url = await checkWebhookUrl(input.url, deps.config);
  const secret = newSigningSecret();
  const sealed = secretBox(deps.config).seal(secret);
  return inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<ChannelRow>(
      `INSERT INTO core.notification_channels (project_id, name, url, description, events, enabled, secret_enc)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [projectId, input.name, url, input.description, input.events, input.enabled, sealed]);
    const row = r.rows[0] as ChannelRow;
    await audit(tx, deps, change, {
      projectId, action: 'notification_channel.create', resource: { type: 'notification_channel', id: row.id },
      details: { name: row.name, url_host: hostOf(url), events: row.events, enabled: row.enabled },
    });
    return { row, secret };
  });
}

export async function updateChannel(deps: WebhookDeps, change: ChangeContext, projectId: string, id: string, patch: ChannelPatch): Promise<ChannelRow> {
  const url = patch.url === undefined ? null : await checkWebhookUrl(patch.url, deps.config);
  return inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<ChannelRow>(
      `UPDATE core.notification_channels
       SET name = coalesce($3, name), url = coalesce($4, url),
           description = CASE WHEN $5::boolean THEN $6 ELSE description END,
           events = coalesce($7::text[], events), enabled = coalesce($8::boolean, enabled), updated_at = now()
       WHERE project_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [projectId, id, patch.name ?? null, url, patch.description !== undefined, patch.description ?? null, patch.events ?? null, patch.enabled ?? null]);
    const row = r.rows[0];
    if (!row) throw new NotFound('notification channel not found');
    await audit(tx, deps, change, {
      projectId, action: 'notification_channel.update', resource: { type: 'notification_channel', id },
      details: { changed: Object.keys(patch).sort(), ...(url ? { url_host: hostOf(url) } : {}), ...(patch.events ? { events: patch.events } : {}), ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}) },
    });
    return row;
  });
}

/** Deletes the channel and its deliveries (pending ones are never sent). */
export async function deleteChannel(deps: WebhookDeps, change: ChangeContext, projectId: string, id: string): Promise<void> {
  await inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<{ name: string }>('DELETE FROM core.notification_channels WHERE project_id = $1 AND id = $2 RETURNING name', [projectId, id]);
    if (!r.rowCount) throw new NotFound('notification channel not found');
    await audit(tx, deps, change, {
      projectId, action: 'notification_channel.delete', resource: { type: 'notification_channel', id }, details: { name: r.rows[0]?.name },
    });
  });
}

/**
 * A new secret (returned this once). The current one becomes the previous one and keeps signing,
 * beside the new one, for 24 h; a previous secret still inside its 24 h is dropped.
 */
export async function rotateSecret(deps: WebhookDeps, change: ChangeContext, projectId: string, id: string): Promise<{ row: ChannelRow; secret: string }> {
  const secret = newSigningSecret();
  const sealed = secretBox(deps.config).seal(secret);
  return inTransaction(deps.pool, async (tx) => {
    const r = await tx.query<ChannelRow>(
      `UPDATE core.notification_channels
       SET previous_secret_enc = secret_enc, previous_secret_expires_at = now() + make_interval(secs => $4),
           secret_enc = $3, updated_at = now()
       WHERE project_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [projectId, id, sealed, PREVIOUS_SECRET_TTL_SECONDS]);
    const row = r.rows[0];
    if (!row) throw new NotFound('notification channel not found');
    await audit(tx, deps, change, {
      projectId, action: 'notification_channel.rotate_secret', resource: { type: 'notification_channel', id },
      details: { previous_secret_valid_seconds: PREVIOUS_SECRET_TTL_SECONDS },
    });
    return { row, secret };
  });
}

export interface TestSent { eventId: string; deliveryId: string; webhookId: string }

/** A `webhook.test` event for this channel alone (whatever events it subscribes to). */
export async function sendTestEvent(deps: WebhookDeps, change: ChangeContext, projectId: string, id: string): Promise<TestSent> {
  return inTransaction(deps.pool, async (tx) => {
    const channel = await selectChannel(tx, projectId, id, 'FOR SHARE');
    if (!channel) throw new NotFound('notification channel not found');
    if (!channel.enabled) throw new Conflict('notification channel is disabled: enable it to send a test');
    const sent = await enqueueEvent(tx, {
      projectId, type: 'webhook.test',
      data: { channel_id: id, channel_name: channel.name, message: 'Test event from Strathon: this endpoint receives signed webhooks.' },
    }, id);
    if (!sent.eventId || !sent.deliveryId || !sent.webhookId) throw new Error('test event was not enqueued');
    await audit(tx, deps, change, {
      projectId, action: 'notification_channel.test', resource: { type: 'notification_channel', id }, details: { event_id: sent.eventId },
    });
    return { eventId: sent.eventId, deliveryId: sent.deliveryId, webhookId: sent.webhookId };
  });
}
