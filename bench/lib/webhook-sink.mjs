// A loopback webhook endpoint for the benchmarks: answers 200 at once and records, per request, the
// arrival time (performance.now() of this process), the webhook-id and the parsed body.
import http from 'node:http';
import { onCleanup } from './proc.mjs';

export async function startWebhookSink() {
  const arrivals = [];
  const waiters = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      arrivals.push({ at, webhookId: String(req.headers['webhook-id'] ?? ''), body });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      for (const w of waiters) w();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  onCleanup(close);
  return {
    url: (p = '/hook') => `http://127.0.0.1:${port}${p}`,
    arrivals,
    /** Resolves once `n` requests have arrived in all; rejects after `timeoutMs`. */
    waitForCount(n, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (arrivals.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${arrivals.length} of ${n} webhook requests arrived within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
