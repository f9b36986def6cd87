// A lingering close (as nginx does it) for answers sent before the request was read whole: 413,
// 401, 403, 404, 415 … and Node's own parse refusals (431 while the headers still arrive).
// Closing a socket with unread bytes makes the kernel send a reset, and a reset makes the
// client's kernel throw away the answer it has not read yet: the client sees a network error
// instead of its status. So after the answer the server half-closes (FIN), keeps reading and
// discarding, and closes once the client stops sending — within a bound, past which the
// connection is dropped as before. On Workers the platform does this itself.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface LingerBounds {
  /** Bytes read and discarded after the answer before giving up (2 × chunk size on the server). */
  maxBytes: number;
  /** How long to keep reading after the answer (5 s on the server). */
  maxMs: number;
}

const LINGERING = Symbol('lingering');
/** How often the bytes read are checked against the bound (Node's parser drops them unseen). */
const CHECK_EVERY_MS = 20;

/**
 * Call before the early answer is written. Node ends a `Connection: close` response with
 * socket.destroySoon(); for this socket that becomes "half-close, then drain within bounds".
 */
export function lingerAfterEarlyAnswer(incoming: IncomingMessage, bounds: LingerBounds): void {
  const socket = incoming.socket as Socket & { [LINGERING]?: true };
  if (!socket || socket.destroyed || socket[LINGERING]) return;
  socket[LINGERING] = true;

  let started = false;
  socket.destroySoon = function lingeringDestroySoon(this: Socket) {
    if (started) return;
    started = true;
    // Nobody reads the body any more (a body stream left unread would pause it): Node's parser
    // drops what arrives once the request has no 'data' listener and flows, as Node's own _dump() does.
    incoming.removeAllListeners('data');
    incoming.resume();
    drainThenClose(this, bounds, () => incoming.complete);
  };
}

/**
 * Half-closes a socket whose answer is written, reads and drops whatever still arrives, and
 * closes it once the client stops sending (`finished()`, or its own FIN) or past the bounds.
 */
export function drainThenClose(socket: Duplex, bounds: LingerBounds, finished: () => boolean = () => false): void {
  const read = () => (socket as Duplex & { bytesRead?: number }).bytesRead ?? 0;
  if (socket.writable) socket.end();
  const limit = read() + bounds.maxBytes;
  const done = () => {
    clearInterval(check);
    clearTimeout(deadline);
    if (!socket.destroyed) socket.destroy();
  };
  // Past the bound, or everything arrived (nothing unread is left): close now.
  const check = setInterval(() => (read() > limit || finished()) && done(), CHECK_EVERY_MS);
  const deadline = setTimeout(done, bounds.maxMs);
  check.unref();
  deadline.unref();
  // The client closed its side: it sends nothing more.
  if (socket.readableEnded) return done();
  socket.once('end', done);
  socket.once('close', done);
  socket.resume();
}
