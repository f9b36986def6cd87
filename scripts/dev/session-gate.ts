// PGlite's socket server maps every connection onto ONE Postgres session and runs the protocol
// messages of different connections in arrival order. With several connections at once (the
// Worker's concurrent requests), one connection's statements can land inside another's
// transaction, or between its BEGIN and its first query. Real Postgres isolates them.
//
// The gate restores isolation the way in-process PGlite does it (one transaction at a time): a
// connection holds the gate from its first message until the server says it is idle again (a
// ReadyForQuery with status 'I' answering everything it sent); other connections' messages wait
// in the proxy meanwhile. Serial execution is a valid schedule for Postgres too, so every
// property that holds under concurrency on Postgres must hold here.

/** Messages after which the server sends ReadyForQuery: Query and Sync (the startup packet too). */
const ANSWERED = new Set([0x51 /* Q */, 0x53 /* S */]);
const SSL_REQUEST = 80877103;

export interface GatedConnection {
  /** Client bytes arrive; they go to the server now or when the gate is free. */
  fromClient(data: Buffer): void;
  /** Server bytes arrive (to be passed on to the client as they are). */
  fromServer(data: Buffer): void;
  /** The connection is gone: it no longer holds or waits for the gate. */
  close(): void;
}

export function createSessionGate() {
  let holder: Connection | null = null;
  const waiting: Connection[] = [];

  class Connection implements GatedConnection {
    private pending: Buffer[] = [];
    private clientBuf = Buffer.alloc(0);
    private serverBuf = Buffer.alloc(0);
    private started = false;
    private sslAnswerDue = false;
    /** ReadyForQuery messages the server still owes this connection. */
    private owed = 0;
    private idle = true;
    private closed = false;
    private terminated = false;

    constructor(private readonly send: (data: Buffer) => void) {}

    fromClient(data: Buffer) {
      if (this.closed) return;
      this.pending.push(data);
      if (holder === this) this.flush();
      else if (!holder) this.take();
      else if (!waiting.includes(this)) waiting.push(this);
    }

    fromServer(data: Buffer) {
      this.serverBuf = Buffer.concat([this.serverBuf, data]);
      if (this.sslAnswerDue && this.serverBuf.length > 0) {
        // The answer to SSLRequest is a single untyped byte.
        this.sslAnswerDue = false;
        this.serverBuf = this.serverBuf.subarray(1);
      }
      while (this.serverBuf.length >= 5) {
        const length = this.serverBuf.readInt32BE(1);
        if (this.serverBuf.length < 1 + length) break;
        if (this.serverBuf[0] === 0x5a /* Z */) {
          this.owed = Math.max(0, this.owed - 1);
          this.idle = this.serverBuf[5] === 0x49 /* I */;
        }
        this.serverBuf = this.serverBuf.subarray(1 + length);
      }
      if (holder === this && this.owed === 0 && this.idle && this.pending.length === 0) release();
    }

    close() {
      this.closed = true;
      this.pending = [];
      const at = waiting.indexOf(this);
      if (at >= 0) waiting.splice(at, 1);
      if (holder === this) release();
    }

    take() {
      holder = this;
      this.flush();
    }

    private flush() {
      for (const chunk of this.pending.splice(0)) {
        this.count(chunk);
        this.send(chunk);
      }
      // Terminate gets no answer: nothing else will come from this connection.
      if (this.terminated && holder === this) release();
    }

    /** Counts the client's messages that the server answers with ReadyForQuery. */
    private count(chunk: Buffer) {
      this.clientBuf = Buffer.concat([this.clientBuf, chunk]);
      while (true) {
        if (!this.started) {
          if (this.clientBuf.length < 8) return;
          const length = this.clientBuf.readInt32BE(0);
          if (this.clientBuf.length < length) return;
          if (this.clientBuf.readInt32BE(4) === SSL_REQUEST) this.sslAnswerDue = true;
          else {
            this.started = true;
            this.owed++;
            this.idle = false;
          }
          this.clientBuf = this.clientBuf.subarray(length);
          continue;
        }
        if (this.clientBuf.length < 5) return;
        const length = this.clientBuf.readInt32BE(1);
        if (this.clientBuf.length < 1 + length) return;
        if (this.clientBuf[0] === 0x58 /* X */) this.terminated = true;
        if (ANSWERED.has(this.clientBuf[0]!)) {
          this.owed++;
          this.idle = false;
        }
        this.clientBuf = this.clientBuf.subarray(1 + length);
      }
    }
  }

  function release() {
    holder = null;
    const next = waiting.shift();
    next?.take();
  }

  return { connect: (send: (data: Buffer) => void): GatedConnection => new Connection(send) };
}
