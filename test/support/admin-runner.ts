// `npm run admin` for tests. `viaProcess` runs a command as an operator does, a process of its own;
// `run` runs the same code (adminMain: arguments, output, exit code) in this process, on one
// database kept open between commands: a process per command spent ~1.7 s of CPU opening it.
// The embedded database has one owner at a time: `release()` before the server starts again.
import { parseConfig } from '../../src/config';
import { adminMain } from '../../src/cli/admin-main';
import { openOfflineDeps } from '../../src/cli/offline-deps';
import { runEntry } from './server-process';

export interface AdminResult {
  code: number | null;
  /** stdout and stderr, as the process prints them. */
  out: string;
  json(): any;
}

export function adminRunner(env: () => Record<string, string>) {
  let held: Awaited<ReturnType<typeof openOfflineDeps>> | undefined;
  const result = (code: number | null, out: string): AdminResult => ({ code, out, json: () => JSON.parse(out) });
  return {
    async viaProcess(...args: string[]): Promise<AdminResult> {
      const run = runEntry('src/cli/admin.ts', env(), args);
      const code = await run.exited;
      return result(code, run.output());
    },
    async run(...args: string[]): Promise<AdminResult> {
      held ??= await openOfflineDeps(parseConfig(env()), { for: 'server' });
      const deps = held.deps;
      let out = '';
      const print = (text: string) => void (out += `${text}\n`);
      const code = await adminMain(args, { log: print, error: print }, (work) => work(deps));
      return result(code, out);
    },
    async release(): Promise<void> {
      const closing = held;
      held = undefined;
      await closing?.close();
    },
  };
}
