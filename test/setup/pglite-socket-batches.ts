// PGlite is one backend behind many sockets. Its socket server queues protocol messages one by
// one, so concurrent connections interleave: one connection's Bind can meet another's Parse of
// the unnamed statement ("bind message supplies 3 parameters, but prepared statement requires
// 15"). Real Postgres gives every connection its own backend. This keeps serving a connection
// from its first extended-protocol message to its Sync before taking anyone else's.
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C', 'H'].map((c) => c.charCodeAt(0)));
const BATCH_END = new Set(['S', 'Q', 'X'].map((c) => c.charCodeAt(0)));

interface Item {
  handlerId: number;
  message: Uint8Array;
  resolve(bytes: number): void;
  reject(err: unknown): void;
  onData(data: Uint8Array): void;
}

export function keepProtocolBatchesTogether(server: PGLiteSocketServer): void {
  const queue = (server as unknown as { queryQueue: any }).queryQueue;
  let batchOwner: number | null = null;

  queue.processQueue = async function processQueue(this: any) {
    if (this.processing || this.queue.length === 0) return;
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        const sticky = batchOwner ?? (this.db.isInTransaction() ? this.lastHandlerId : null);
        const index = sticky === null ? 0 : this.queue.findIndex((i: Item) => i.handlerId === sticky);
        if (index === -1) break; // wait for the connection holding the backend
        const [item] = this.queue.splice(index, 1) as Item[];
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item!.message, {
              onRawData: (data: Uint8Array) => {
                bytes += data.length;
                item!.onData(data);
              },
            }),
          );
        } catch (err) {
          item!.reject(err);
          continue;
        }
        const type = item!.message[0]!;
        if (EXTENDED.has(type)) batchOwner = item!.handlerId;
        else if (BATCH_END.has(type)) batchOwner = null;
        this.lastHandlerId = item!.handlerId;
        item!.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  };

  const clear = queue.clearQueueForHandler.bind(queue);
  queue.clearQueueForHandler = (handlerId: number) => {
    clear(handlerId);
    if (batchOwner === handlerId) {
      batchOwner = null;
      void queue.processQueue();
    }
  };
}
