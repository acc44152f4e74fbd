// The SSRF guard (SPEC §9): with STRATHON_WEBHOOK_ALLOW_PRIVATE=false, URLs resolving to loopback,
// private, link-local, CGNAT, multicast, unspecified, unique-local and metadata addresses (and the
// IPv6 forms embedding such IPv4 addresses) are refused at creation with the reason, and again at
// connect time (a row that slipped past creation, e.g. a name whose DNS answer changed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emitEvent } from '../../src/webhooks/outbox.js';
import { attemptDelivery, checkWebhookUrl, refusedAddressReason, resolveAllowed, SecretBox } from '../../src/webhooks/webhooks.js';
import { DEFAULT_PROJECT_ID } from '../helpers.js';
import { api, deliveryRows, endpoint, waitFor, webhookReceiver } from './support.js';

test('address classes: what is refused and why; public addresses pass', () => {
  const refused: [string, RegExp][] = [
    ['127.0.0.1', /loopback/], ['127.8.9.10', /loopback/], ['10.0.0.1', /private/], ['172.16.0.1', /private/], ['172.31.255.255', /private/],
    ['192.168.1.1', /private/], ['169.254.169.254', /metadata/], ['169.254.1.1', /link-local/], ['100.64.0.1', /carrier-grade NAT/],
    ['100.127.255.254', /carrier-grade NAT/], ['0.0.0.0', /unspecified/], ['224.0.0.251', /multicast/], ['255.255.255.255', /reserved|broadcast/],
    ['::1', /loopback/], ['::', /unspecified/], ['fe80::1', /link-local/], ['fe80::1%eth0', /link-local/], ['fc00::1', /unique-local/],
    ['fd12:3456::1', /unique-local/], ['fd00:ec2::254', /metadata/], ['ff02::1', /multicast/],
    ['::ffff:127.0.0.1', /IPv4-mapped.*loopback/], ['::ffff:7f00:1', /IPv4-mapped.*loopback/], ['::ffff:169.254.169.254', /mapped.*metadata/],
    ['::ffff:10.1.2.3', /mapped.*private/], ['::127.0.0.1', /IPv4-compatible.*loopback/], ['::a00:1', /IPv4-compatible.*private/],
    ['64:ff9b::a9fe:a9fe', /NAT64.*metadata/], ['2002:7f00:1::1', /6to4.*loopback/], ['[::1]', /loopback/],
  ];
  for (const [addr, why] of refused) assert.match(String(refusedAddressReason(addr)), why, addr);
  for (const addr of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:93.184.216.34', '2a00:1450:4001::200e']) {
    assert.equal(refusedAddressReason(addr), null, addr);
  }
});

test('resolveAllowed: a hostname resolving to loopback (localhost) is refused; allow-private lets it through', async () => {
  await assert.rejects(resolveAllowed('localhost', false), /refused address: localhost resolves to (127\.0\.0\.1|::1) is loopback/);
  assert.ok((await resolveAllowed('localhost', true)).length >= 1);
  assert.deepEqual(await resolveAllowed('93.184.216.34', false), [{ address: '93.184.216.34', family: 4 }]);
  assert.deepEqual(await resolveAllowed('[2606:4700:4700::1111]', false), [{ address: '2606:4700:4700::1111', family: 6 }]);
});

test('https is required in production (checked before any address)', async () => {
  const production = { env: 'production' as const, webhookAllowPrivate: false, encryptionKey: undefined, auditHmacKey: Buffer.alloc(32), auditHmacKeyId: 1, auditHmacKeysPrevious: new Map() };
  await assert.rejects(checkWebhookUrl('http://93.184.216.34/hook', production), /https when STRATHON_ENV=production/);
  assert.equal(await checkWebhookUrl('https://93.184.216.34/hook', production), 'https://93.184.216.34/hook');
  await assert.rejects(checkWebhookUrl('https://10.0.0.1/hook', production), /10\.0\.0\.1 is private/);
});

const r = await webhookReceiver({ STRATHON_WEBHOOK_ALLOW_PRIVATE: 'false' }, {
  firstRunDelaySeconds: 0.05, intervals: { webhook_sweeper_task: 0.05 }, webhookSweeper: { timeoutMs: 1000 },
});

test('creating a channel: refused addresses answer 422 with the reason; a public literal is accepted', async () => {
  const cases: [string, RegExp][] = [
    ['http://127.0.0.1:8080/hook', /127\.0\.0\.1 is loopback/],
    ['http://10.0.0.1/hook', /10\.0\.0\.1 is private/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is the cloud metadata service/],
    ['http://[::1]:9000/hook', /::1 is loopback/],
    ['http://[::ffff:127.0.0.1]/hook', /is an IPv4-mapped form of a loopback IPv4 address/],
    ['http://[fd00:ec2::254]/', /metadata/],
    ['http://100.100.100.200/', /carrier-grade NAT/],
    ['http://localhost:4318/v1/traces', /localhost resolves to .* is loopback/],
    ['http://0.0.0.0:4318/', /unspecified/],
  ];
  const unresolvable = await api(r.url, 'POST', '/v1/notification-channels', r.key, { name: 'nowhere', url: 'http://no-such-host.invalid/hook' });
  assert.equal(unresolvable.status, 422);
  assert.match(unresolvable.body.detail[0].msg, /host no-such-host\.invalid does not resolve/);
  for (const [url, why] of cases) {
    const res = await api(r.url, 'POST', '/v1/notification-channels', r.key, { name: 'evil', url });
    assert.equal(res.status, 422, `${url}: ${res.text}`);
    assert.deepEqual(res.body.detail[0].loc, ['body', 'url']);
    assert.equal(res.body.detail[0].type, 'url_refused');
    assert.match(res.body.detail[0].msg, why, url);
    assert.match(res.body.detail[0].msg, /STRATHON_WEBHOOK_ALLOW_PRIVATE/);
  }
  assert.equal((await r.pool.query('SELECT 1 FROM core.notification_channels')).rowCount, 0);
  // A public-looking literal passes the guard (nothing connects to it here: no event is sent).
  const ok = await api(r.url, 'POST', '/v1/notification-channels', r.key, { name: 'public', url: 'http://93.184.216.34/hook', events: ['halt.created'], enabled: false });
  assert.equal(ok.status, 201, ok.text);
  // PATCH checks a new URL the same way.
  const patched = await api(r.url, 'PATCH', `/v1/notification-channels/${ok.body.id}`, r.key, { url: 'http://192.168.0.10/' });
  assert.equal(patched.status, 422);
  assert.match(patched.body.detail[0].msg, /192\.168\.0\.10 is private/);
});

test('connect time: a stored URL that now resolves to a refused address is not contacted', async () => {
  const hook = await endpoint();
  // Direct attempt: refused before any socket opens.
  const plain = await attemptDelivery({ url: 'http://93.184.216.34/hook', headers: {}, body: '{}', allowPrivate: false, requireHttps: true, timeoutMs: 1000, maxResponseBytes: 1024 });
  assert.equal(plain.error, 'https is required when STRATHON_ENV=production', 'refused before any connection');
  const direct = await attemptDelivery({ url: hook.url('/direct'), headers: {}, body: '{}', allowPrivate: false, timeoutMs: 1000, maxResponseBytes: 1024 });
  assert.equal(direct.ok, false);
  assert.match(String(direct.error), /refused address: 127\.0\.0\.1 is loopback/);
  const viaName = await attemptDelivery({ url: `http://localhost:${hook.port}/direct`, headers: {}, body: '{}', allowPrivate: false, timeoutMs: 1000, maxResponseBytes: 1024 });
  assert.match(String(viaName.error), /localhost resolves to .* is loopback/);
  // The same address with allow-private: the request is made (the guard, not the network, refused it).
  const allowed = await attemptDelivery({ url: hook.url('/direct'), headers: {}, body: '{}', allowPrivate: true, timeoutMs: 1000, maxResponseBytes: 1024 });
  assert.equal(allowed.ok, true, String(allowed.error));
  assert.equal(hook.at('/direct').length, 1);

  // Through the sweeper: a channel row that bypassed the creation check (as after a DNS change).
  const sealed = new SecretBox(r.encryptionKey).seal(`whsec_${Buffer.alloc(32, 1).toString('base64')}`);
  const ch = await r.pool.query<{ id: string }>(
    `INSERT INTO core.notification_channels (project_id, name, url, events, secret_enc) VALUES ($1, 'rebound', $2, '{halt.created}', $3) RETURNING id`,
    [DEFAULT_PROJECT_ID, hook.url('/rebound'), sealed]);
  const channelId = ch.rows[0]!.id;
  await emitEvent(r.pool, { projectId: DEFAULT_PROJECT_ID, type: 'halt.created', data: { halt_id: 1 } });
  const row = await waitFor('failed attempt', async () => (await deliveryRows(r.pool, channelId)).find((d) => d.attempts >= 1 && d.status !== 'delivering'));
  assert.match(String(row.last_error), /refused address: 127\.0\.0\.1 is loopback/);
  assert.equal(hook.at('/rebound').length, 0, 'the endpoint was never contacted');
});
