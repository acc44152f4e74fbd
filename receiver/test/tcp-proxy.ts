// A loopback TCP proxy in front of Postgres, to make the database hang or vanish on demand.
import net from 'node:net';

export type ProxyMode = 'up' | 'hang' | 'down';

export interface TcpProxy { port: number; url(dbUrl: string): string; set(mode: ProxyMode): void; close(): Promise<void> }

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: ProxyMode = 'up';
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    if (mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const cleanup = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cleanup).on('close', cleanup);
    upstream.on('error', cleanup).on('close', cleanup);
    client.on('data', (d) => { if (mode === 'up') upstream.write(d); });
    upstream.on('data', (d) => { if (mode === 'up') client.write(d); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url(dbUrl: string) {
      const u = new URL(dbUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    set(m: ProxyMode) {
      mode = m;
      if (m === 'down') for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
    },
    async close() {
      for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
