// The part of `cloudflare:test` the workerd target uses (the plugin's own typings pull in the
// Workers globals, which clash with Node's).
declare module 'cloudflare:test' {
  export const env: Record<string, unknown>;
  export function createExecutionContext(): { waitUntil(p: Promise<unknown>): void; passThroughOnException(): void };
  export function waitOnExecutionContext(ctx: unknown): Promise<void>;
  export function createScheduledController(options?: { scheduledTime?: Date | number; cron?: string }): unknown;
  export function runInDurableObject<O, R>(stub: unknown, callback: (instance: O, state: any) => R | Promise<R>): Promise<R>;
  export function evictDurableObject(stub: unknown, options?: { webSockets?: 'close' | 'hibernate' }): Promise<void>;
  export function runDurableObjectAlarm(stub: unknown): Promise<boolean>;
}
