// Runs the `orbital` CLI (bin/orbital.mjs) as a user would: a separate process with its own home
// folder, talking HTTP to the target's server. No terminal: confirmations need --yes.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/orbital.mjs', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as one JSON document (with --json). */
  json<T = any>(): T;
}

export interface CliUser {
  home: string;
  env?: Record<string, string>;
}

function spawnCli(user: CliUser, server: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, '--home', user.home, ...args], {
    env: { ...process.env, ORBITAL_SERVER: server, ORBITAL_PASSWORD: 'correct horse battery staple', ...user.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function runCli(user: CliUser, server: string, args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(user, server, args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.stdin.end(input ?? '');
    child.on('close', (code) =>
      resolve({
        code,
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout);
          } catch {
            throw new Error(`orbital ${args.join(' ')} printed no JSON (exit ${code}): ${stdout}\n${stderr}`);
          }
        },
      }),
    );
  });
}

/** Runs a command that must succeed and returns its --json output. */
export async function cliJson<T = any>(user: CliUser, server: string, args: string[], input?: string): Promise<T> {
  const res = await runCli(user, server, ['--json', ...args], input);
  if (res.code !== 0) throw new Error(`orbital ${args.join(' ')} exited ${res.code}: ${res.stderr}${res.stdout}`);
  return res.json<T>();
}

/** A long-running `orbital --json watch`: every JSON line it prints, and a way to wait for one. */
export class CliWatcher {
  readonly lines: any[] = [];
  stderr = '';
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiters: { test: (line: any) => boolean; resolve: (line: any) => void }[] = [];
  readonly exited: Promise<number | null>;

  constructor(user: CliUser, server: string, args: string[]) {
    this.child = spawnCli(user, server, ['--json', 'watch', ...args]);
    let buffer = '';
    this.child.stdout.on('data', (d) => {
      buffer += d;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!text.trim()) continue;
        const line = JSON.parse(text);
        this.lines.push(line);
        for (const w of [...this.waiters]) if (w.test(line)) (this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve(line));
      }
    });
    this.child.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', resolve));
  }

  waitFor<T = any>(test: (line: any) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
    const found = this.lines.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch never printed ${what}; got ${JSON.stringify(this.lines).slice(0, 2000)} ${this.stderr}`)), timeoutMs);
      this.waiters.push({ test, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }

  async stop(): Promise<number | null> {
    this.child.kill('SIGINT');
    return this.exited;
  }
}
