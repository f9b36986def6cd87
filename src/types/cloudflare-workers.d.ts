// The part of `cloudflare:workers` we use, typed against @cloudflare/workers-types without
// loading its globals (they clash with Node's and the DOM's).
declare module 'cloudflare:workers' {
  import type { DurableObjectState, WebSocket as CfWebSocket } from '@cloudflare/workers-types';
  export abstract class DurableObject<Env = unknown> {
    protected ctx: DurableObjectState;
    protected env: Env;
    constructor(ctx: DurableObjectState, env: Env);
    fetch(request: Request): Response | Promise<Response>;
    alarm?(): void | Promise<void>;
    webSocketMessage?(ws: CfWebSocket, message: string | ArrayBuffer): void | Promise<void>;
    webSocketClose?(ws: CfWebSocket, code: number, reason: string, wasClean: boolean): void | Promise<void>;
    webSocketError?(ws: CfWebSocket, error: unknown): void | Promise<void>;
  }
}
