// The server as `npm start` starts it, for benchmarks: dist/ built by the same build step, then the
// start script's own command (package.json `scripts.start`) with this Node, the environment given
// (nothing inherited but PATH and HOME, so the log level is the default), stdout and stderr to a file.
import { execFileSync, execSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartedServer {
  url: string;
  child: ChildProcess;
  /** Where its stdout and stderr go. */
  logFile: string;
  /** From spawn to the first 200 from /ready. */
  readyMs: number;
  /** CPU time the server used until then (its own, whatever else the machine runs). */
  readyCpuMs: number;
  stop(): Promise<void>;
}

const built = new Set<string>();

/** `npm run build:server` in `cwd`, once per benchmark run (what `prestart` does before every start). */
export function buildOnce(cwd = '.'): void {
  if (built.has(cwd)) return;
  if (!existsSync(join(cwd, 'scripts/build-server.mjs'))) return; // an older checkout: npm start ran TypeScript
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { stdio: 'inherit', cwd });
  built.add(cwd);
}

/** `scripts.start` without its leading `node`: the arguments `npm start` gives Node. */
export function startArgs(cwd = '.'): string[] {
  const start = (JSON.parse(readFileSync(join(cwd, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(/\s+/);
  if (start[0] !== 'node') throw new Error(`npm start does not run node: ${start.join(' ')}`);
  return start.slice(1);
}

/**
 * Starts the server as `npm start` does with `env` (PORT defaults to a free port), and resolves once
 * /ready answers 200. `nodeArgs` go before the script (profiling only); `cwd` is
 * another checkout of the project (an older commit, for before/after figures).
 */
export async function startAsNpmStart(
  env: Record<string, string>,
  options: { nodeArgs?: string[]; timeoutMs?: number; cwd?: string } = {},
): Promise<StartedServer> {
  const cwd = options.cwd ?? '.';
  buildOnce(cwd);
  const logFile = join(mkdtempSync(join(tmpdir(), 'orbital-bench-log-')), 'server.log');
  const fd = openSync(logFile, 'a');
  const port = env.PORT ?? String(await freePort());
  const started = performance.now();
  // BENCH_NODE_ARGS (e.g. --heapsnapshot-signal=SIGUSR2): for looking into a run, not for figures.
  const extra = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...extra, ...startArgs(cwd)], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', ...env, PORT: port },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  // Ready when /ready answers 200 (the log may be silent, so the `listening` line is not waited for).
  for (;;) {
    const ready = await fetch(`${url}/ready`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not start:\n${readFileSync(logFile, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = performance.now() - started;
  const readyCpuMs = cpuMs(child.pid!);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return { url, child, logFile, readyMs, readyCpuMs, stop };
}

/** A port nothing listens on right now (the OS picks it). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const CLOCK_TICKS = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;

/** CPU time (user + system, all threads) a process has used, in ms, from /proc. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
