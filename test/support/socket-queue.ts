import type { TestSocket } from './types';

/** Turns a WebSocket-like object (ws in Node, WebSocket in workerd) into a TestSocket. */
export function queueSocket(ws: {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}): TestSocket {
  const buffered: unknown[] = [];
  const waiters: Array<(value: unknown) => void> = [];
  let closeResolve!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (closeResolve = r));
  ws.addEventListener('message', (event) => {
    const raw = typeof event.data === 'string' ? event.data : new TextDecoder().decode(event.data as ArrayBuffer);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // keep the raw text
    }
    const waiter = waiters.shift();
    if (waiter) waiter(value);
    else buffered.push(value);
  });
  ws.addEventListener('close', (event) => closeResolve({ code: event.code, reason: event.reason }));
  return {
    buffered,
    closed,
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    next<T>(timeoutMs = 5000): Promise<T> {
      if (buffered.length) return Promise.resolve(buffered.shift() as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no socket message within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (value: unknown) => {
          clearTimeout(timer);
          resolve(value as T);
        };
        waiters.push(waiter);
        void closed.then(({ code }) => {
          if (waiters.includes(waiter)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            clearTimeout(timer);
            reject(new Error(`socket closed (${code}) while waiting for a message`));
          }
        });
      });
    },
  };
}
