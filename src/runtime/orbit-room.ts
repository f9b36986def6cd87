// The per-orbit Durable Object: owns the orbit's live sockets (Hibernation API) and receives
// committed events from the Worker.
import { DurableObject } from 'cloudflare:workers';
import type { WorkerEnv } from './worker-deps';

export class OrbitRoom extends DurableObject<WorkerEnv> {
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/publish' && request.method === 'POST') {
      // Live sockets arrive with the live issue; until then events are accepted and dropped.
      await request.arrayBuffer();
      return new Response(null, { status: 204 });
    }
    return new Response('not found', { status: 404 });
  }
}
