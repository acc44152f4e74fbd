// Webhooks (SPEC §9): the public face of receiver/src/webhooks/.
//
//   outbox.ts      emitEvent(db, event): event + one delivery per receiving channel, in the caller's
//                  transaction, and NOTIFY strathon_webhooks (sent at commit)
//   channels.ts    channels of a project: create (secret once), update, delete, rotate, test
//   deliveries.ts  a channel's deliveries; re-queue a dead one; purge old delivered ones
//   sweeper.ts     webhook_sweeper_task: claim (SKIP LOCKED, leased + advisory lock), send, back off, dead-letter
//   wakeups.ts     LISTEN strathon_webhooks: a sweeper tick at once on every committed event
//   deliver.ts     one HTTP attempt: pinned address, deadline, no redirects, bounded read
//   signing.ts     whsec_ secrets, Standard Webhooks signatures, sealing under the encryption key
//   ssrf.ts        which addresses a webhook may reach
export { EVENT_TYPES, NOTIFY_CHANNEL, emitEvent, enqueueEvent, isEventType, type OutboxEvent, type WebhookEventType } from './outbox.js';
export {
  checkWebhookUrl, createChannel, deleteChannel, getChannel, listChannels, rotateSecret, sendTestEvent, updateChannel, MAX_URL_LENGTH,
  type ChangeContext, type ChannelInput, type ChannelPatch, type ChannelRow, type TestSent, type WebhookDeps,
} from './channels.js';
export {
  listDeliveries, purgeDeliveredWebhooks, retryDelivery, DELIVERY_STATUSES, type DeliveryCursor, type DeliveryRow, type DeliveryStatus,
} from './deliveries.js';
export {
  backoffMs, sweepOnce, webhookMetrics, webhookSweeperWorker, WEBHOOK_SWEEPER_TASK, type SweepResult, type SweeperDeps, type WebhookSweeperOptions,
} from './sweeper.js';
export { webhookWakeups, withWebhookWakeups } from './wakeups.js';
export { attemptDelivery, type AttemptRequest, type AttemptResult } from './deliver.js';
export { SECRET_PREFIX, PREVIOUS_SECRET_TTL_SECONDS, SecretBox, newSigningSecret, secretKey, signature, signatureHeader } from './signing.js';
export { refusedAddressReason, resolveAllowed, parseIp, RefusedUrl, type ResolvedAddress } from './ssrf.js';
