// Ends a pool's connections whose statement has had no answer for too long: a connection that went
// silent (a network partition, a proxy that stopped passing bytes) would otherwise hold its pool
// slot until the kernel gives up on it, ~15 minutes. Ending it fails the statement in flight, and
// the pool drops it. One timer for the pool, rather than pg's query_timeout, which arms a timer
// per statement: ~17 µs of CPU each (measured; a fifth of a thread-list request's budget).

import type { Pool, PoolClient } from 'pg';

interface PgClient {
  connection?: { stream?: { destroy(): void } };
}

interface WatchedClient extends PgClient {
  /** pg's own record of the statement in flight (internal, pinned with pg; test/node/database-connection-lost.test.ts). */
  _getActiveQuery(): unknown;
}

/** Closes a pg client's socket at once. Not end(): it waits for the server's answer, which a silent connection never sends. */
export function dropConnection(client: object): void {
  (client as PgClient).connection?.stream?.destroy();
}

/** Returns the function that stops watching (the pool's end). */
export function endSilentConnections(pool: Pool, boundMs: number): () => void {
  const seen = new Map<PoolClient, { query: unknown; since: number }>();
  pool.on('connect', (client) => seen.set(client, { query: null, since: 0 }));
  pool.on('remove', (client) => seen.delete(client));
  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const [client, last] of seen) {
        const query = (client as unknown as WatchedClient)._getActiveQuery();
        if (!query || query !== last.query) {
          last.query = query;
          last.since = now;
        } else if (now - last.since >= boundMs) {
          seen.delete(client);
          dropConnection(client);
        }
      }
    },
    Math.max(50, boundMs / 10),
  );
  timer.unref();
  return () => clearInterval(timer);
}
