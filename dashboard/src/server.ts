// Dashboard placeholder: its own process on DASHBOARD_PORT; the full UI arrives with its issue.
import http from 'node:http';

const port = Number(process.env.DASHBOARD_PORT ?? 3000);
const receiverUrl = process.env.STRATHON_RECEIVER_URL ?? 'http://localhost:4318';

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strathon-TS dashboard</title></head>
<body><main><h1>Strathon-TS</h1><p>Dashboard coming. The receiver is at <a href="${receiverUrl}/ready">${receiverUrl}</a>.</p></main></body></html>`;

const server = http.createServer((req, res) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'strict-origin-when-cross-origin');
  res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'");
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
  res.setHeader('Cache-Control', 'no-store');
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ status: 'ok', service: 'strathon-dashboard' }));
    return;
  }
  if (path === '/') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(page);
    return;
  }
  res.statusCode = 404;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end('not found\n');
});

server.listen(port, process.env.DASHBOARD_HOST ?? '0.0.0.0', () => {
  process.stdout.write(`dashboard listening on http://localhost:${port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)));
