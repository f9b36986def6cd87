// A helper process of a benchmark (bench/live-clients.ts, bench/live-server.ts), driven over IPC:
// one question at a time, the answer is the next message it sends.
import { fork, type ChildProcess } from 'node:child_process';

export interface Child {
  ask<T = any>(message: unknown): Promise<T>;
  proc: ChildProcess;
  /** The first message it sent (its "started" report). */
  started: any;
}

export async function child(script: string, env: Record<string, string> = {}): Promise<Child> {
  const proc = fork(new URL(script, import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let pending: ((value: any) => void) | undefined;
  proc.on('message', (m: any) => {
    const p = pending;
    pending = undefined;
    p?.(m);
  });
  const ask = <T>(message: unknown) =>
    new Promise<T>((resolve, reject) => {
      pending = (m) => (m?.error ? reject(new Error(m.error)) : resolve(m));
      if (message !== undefined) proc.send(message as object);
    });
  const started = await ask(undefined);
  return { ask, proc, started };
}
