// pglite-socket feeds every connection's protocol messages to one PGlite backend. It keeps a
// connection's transaction together, but not an extended-protocol exchange (Parse … Sync): under
// concurrency another connection's Parse replaces the unnamed statement between someone's Parse
// and Bind ("unnamed prepared statement does not exist"). This keeps each exchange whole too, and
// keeps the queue going after a failed message (the stock one stops for good).
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

interface Item {
  handlerId: number;
  message: Uint8Array;
  resolve(bytes: number): void;
  reject(err: unknown): void;
  onData(data: Uint8Array): void;
}

interface Queue {
  queue: Item[];
  processing: boolean;
  lastHandlerId: number | null;
  db: { isInTransaction(): boolean; runExclusive<T>(f: () => Promise<T>): Promise<T>; execProtocolRawStream(m: Uint8Array, o: { onRawData(d: Uint8Array): void }): Promise<unknown> };
  processQueue(): Promise<void>;
  clearQueueForHandler(id: number): void;
}

// Parse, Bind, Describe, Execute, Close, Flush: an exchange goes on until Sync.
const IN_EXCHANGE = new Set([0x50, 0x42, 0x44, 0x45, 0x43, 0x48]);

export function keepExchangesWhole(server: PGLiteSocketServer): void {
  const q = (server as unknown as { queryQueue: Queue }).queryQueue;
  let exchangeOf: number | null = null;

  q.processQueue = async function (this: Queue) {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length) {
        const owner = this.db.isInTransaction() && this.lastHandlerId !== null ? this.lastHandlerId : exchangeOf;
        const at = owner === null ? 0 : this.queue.findIndex((item) => item.handlerId === owner);
        if (at === -1) break; // wait for the owner's next message
        const [item] = this.queue.splice(at, 1) as [Item];
        const type = item.message[0]!;
        exchangeOf = IN_EXCHANGE.has(type) ? item.handlerId : null;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
        } catch (err) {
          item.reject(err);
          continue;
        }
        this.lastHandlerId = item.handlerId;
        item.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  }.bind(q);

  const clear = q.clearQueueForHandler.bind(q);
  q.clearQueueForHandler = (id: number) => {
    clear(id);
    if (exchangeOf === id) {
      exchangeOf = null;
      void q.processQueue();
    }
  };
}
