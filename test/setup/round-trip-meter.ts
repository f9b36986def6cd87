// Counts database round trips at the proxies: one per answer the client has to wait for, that is
// each time the server flushes a ReadyForQuery (the end of a start-up, a query or a Sync) or
// answers an SSLRequest. Counting mere turns of direction would overcount: Postgres flushes
// partial answers (ParseComplete…) whenever the client's next message has not arrived yet, and
// node-postgres writes Parse, Bind and Execute separately. Tests read and reset the counts over
// loopback HTTP, since the Worker under test runs in workerd, not in this process.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TrafficMeter } from '../../scripts/dev/ws-tcp-proxy';

export interface RoundTrips {
  connections: number;
  roundTrips: number;
}

/** Meters by name (one per proxy); the HTTP answer is `{ [name]: RoundTrips }`. */
export async function startRoundTripMeter(): Promise<{ meter(name: string): TrafficMeter; url: string; close(): Promise<void> }> {
  let counts: Record<string, RoundTrips> = {};
  const meter = (name: string): TrafficMeter => ({
    connection() {
      const of = () => (counts[name] ??= { connections: 0, roundTrips: 0 });
      of().connections++;
      return {
        fromClient: () => {},
        fromServer: (data) => {
          if (endsAnExchange(data)) of().roundTrips++;
        },
      };
    },
  });
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(counts));
    if (req.method === 'POST') counts = {};
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { meter, url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** 'Z', length 5, status: the server's ReadyForQuery; or the one-byte answer to an SSLRequest. */
function endsAnExchange(data: Buffer): boolean {
  if (data.length === 1) return data[0] === 0x4e || data[0] === 0x53;
  const at = data.length - 6;
  return at >= 0 && data[at] === 0x5a && data.readUInt32BE(at + 1) === 5;
}
