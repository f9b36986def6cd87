// The server as `npm start` starts it, for benchmarks: dist/ built by the same build step, then the
// start script's own command (package.json `scripts.start`) with this Node, the environment given
// (nothing inherited but PATH and HOME, so the log level is the default), stdout and stderr to a file.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartedServer {
  url: string;
  child: ChildProcess;
  /** Where its stdout and stderr go. */
  logFile: string;
  stop(): Promise<void>;
}

let built = false;

/** `npm run build:server`, once per benchmark run (what `prestart` does before every start). */
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { stdio: 'inherit' });
  built = true;
}

/** `scripts.start` without its leading `node`: the arguments `npm start` gives Node. */
export function startArgs(): string[] {
  const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(/\s+/);
  if (start[0] !== 'node') throw new Error(`npm start does not run node: ${start.join(' ')}`);
  return start.slice(1);
}

/**
 * Starts the server as `npm start` does with `env` (PORT defaults to 0: a free port), and resolves once
 * its `listening` line is in the log file. `nodeArgs` go before the script (profiling only).
 */
export async function startAsNpmStart(env: Record<string, string>, options: { nodeArgs?: string[]; timeoutMs?: number } = {}): Promise<StartedServer> {
  buildOnce();
  const logFile = join(mkdtempSync(join(tmpdir(), 'orbital-bench-log-')), 'server.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...startArgs()], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const line = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"msg":"listening"'));
    if (line) {
      const url = (JSON.parse(line) as { url: string }).url;
      const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      };
      return { url, child, logFile, stop };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not start:\n${readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
