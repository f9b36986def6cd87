// PGlite serves every socket connection from one backend and queues their protocol messages one
// by one, so two connections' Parse/Bind/Execute can interleave ("bind message supplies 1
// parameters, but prepared statement requires 11"). Turns fix that in the proxy: a connection
// that starts talking waits for its turn and keeps it until the server is ready for a query
// outside a transaction (ReadyForQuery 'I'), or the connection ends. Real Postgres needs none.
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I'
const SSL_REQUEST_CODE = 80877103;

export class Turns {
  private holder: Conversation | null = null;
  private readonly queue: Conversation[] = [];

  take(c: Conversation): void {
    if (!this.holder) {
      this.holder = c;
      c.granted();
    } else if (this.holder !== c && !this.queue.includes(c)) {
      this.queue.push(c);
    }
  }

  give(c: Conversation): void {
    const at = this.queue.indexOf(c);
    if (at >= 0) this.queue.splice(at, 1);
    if (this.holder !== c) return;
    this.holder = this.queue.shift() ?? null;
    this.holder?.granted();
  }
}

/** One client connection: holds its bytes until its turn, and watches the server's answers for the end of it. */
export class Conversation {
  private pending: Buffer[] = [];
  private holding = false;
  private fromServer = Buffer.alloc(0);
  private sslReply = false;

  constructor(
    private readonly turns: Turns,
    private readonly toServer: (bytes: Buffer) => void,
  ) {}

  /** Bytes from the client. */
  send(bytes: Buffer): void {
    if (bytes.length === 8 && bytes.readInt32BE(4) === SSL_REQUEST_CODE) this.sslReply = true;
    if (this.holding) return this.toServer(bytes);
    this.pending.push(bytes);
    this.turns.take(this);
  }

  granted(): void {
    this.holding = true;
    for (const bytes of this.pending.splice(0)) this.toServer(bytes);
  }

  /** Bytes from the server (forwarded by the caller); ends the turn at an idle ReadyForQuery. */
  received(bytes: Buffer): void {
    let data = Buffer.concat([this.fromServer, bytes]);
    if (this.sslReply && data.length) {
      // The answer to an SSL request is one bare byte, outside the message framing.
      this.sslReply = false;
      data = data.subarray(1);
      this.end();
    }
    while (data.length >= 5) {
      const size = 1 + data.readInt32BE(1);
      if (data.length < size) break;
      if (data[0] === READY_FOR_QUERY && data[5] === IDLE) this.end();
      data = data.subarray(size);
    }
    this.fromServer = Buffer.from(data);
  }

  /** The turn is over (or the connection is). */
  end(): void {
    this.holding = false;
    this.turns.give(this);
  }
}
