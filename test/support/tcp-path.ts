// A TCP path to the database for tests of a network that stops carrying bytes.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** A TCP path to the database that can be made to stop carrying anything, both ways, connections left open. */
export async function holdablePath(target: URL) {
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) (sockets.push(s), s.on('error', () => {}));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hold: () => sockets.forEach((s) => (s.unpipe(), s.pause())),
    close: () => (sockets.forEach((s) => s.destroy()), server.close()),
  };
}
