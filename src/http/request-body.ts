// A request body read once as it arrives (a chunk PUT). On Node, @hono/node-server hands over the
// incoming message as `env.incoming`: reading it directly skips the web stream node-server would
// build over it, which costs a promise, a queue entry and garbage per piece of every upload.
// Elsewhere (Workers), and for a body the route's cap counts as it streams, the web body.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import type { ByteSource } from '../deps';

export function bodyOnce(c: Context): ByteSource | null {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  // A chunked body has no declared length: hono's bodyLimit counts it through c.req.raw.
  const declared = c.req.header('content-length') !== undefined && c.req.header('transfer-encoding') === undefined;
  if (incoming && typeof incoming.iterator === 'function' && declared && !incoming.readableDidRead) {
    // Stopping early leaves the message open: the error answer drains the rest (c.req.raw.body).
    return incoming.iterator({ destroyOnReturn: false });
  }
  return c.req.raw.body;
}
