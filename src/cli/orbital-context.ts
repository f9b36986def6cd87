// What every command gets: parsed options, the home folder, output (human or --json), and clients
// that keep the session file current as tokens rotate.
import { OrbitalClient, SecureClient, type TokenPair } from '../client';
import { Home } from './orbital-home';
import { ProgressBar } from './orbital-progress';

export const OPTIONS = {
  server: { type: 'string' },
  home: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  yes: { type: 'boolean', short: 'y' },
  progress: { type: 'boolean' },
  'password-stdin': { type: 'boolean' },
  invite: { type: 'string' },
  backup: { type: 'boolean' },
  uses: { type: 'string' },
  expires: { type: 'string' },
  title: { type: 'string' },
  body: { type: 'string' },
  parent: { type: 'string' },
  limit: { type: 'string' },
  thread: { type: 'string' },
  name: { type: 'string' },
  type: { type: 'string' },
  concurrency: { type: 'string' },
  out: { type: 'string', short: 'o' },
  force: { type: 'boolean' },
  after: { type: 'string' },
  count: { type: 'string' },
  user: { type: 'string' },
} as const;

export type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** A mistake in how the command was called (exit code 2). */
export class UsageError extends Error {}

export class Ctx {
  private client: OrbitalClient | undefined;
  private secureClient: SecureClient | undefined;

  constructor(
    readonly values: Values,
    readonly positionals: string[],
    readonly env: NodeJS.ProcessEnv,
    readonly home: Home,
    readonly stdout: NodeJS.WritableStream = process.stdout,
    readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  get json(): boolean {
    return this.values.json === true;
  }

  /** Prints the human text, or the data as one JSON document with --json. */
  out(human: string | string[], data: unknown): void {
    if (this.json) this.stdout.write(JSON.stringify(data) + '\n');
    else this.stdout.write((Array.isArray(human) ? human.join('\n') : human) + '\n');
  }

  /** Notes for people (stderr), never in --json output. */
  note(line: string): void {
    if (!this.json) this.stderr.write(line + '\n');
  }

  arg(index: number, what: string): string {
    const value = this.positionals[index];
    if (value === undefined || value === '') throw new UsageError(`missing ${what}`);
    return value;
  }

  int(name: 'uses' | 'expires' | 'limit' | 'concurrency' | 'after' | 'count', dflt?: number): number | undefined {
    const raw = this.values[name];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number`);
    return n;
  }

  server(): string {
    const server = this.values.server ?? this.env.ORBITAL_SERVER ?? this.home.session()?.server ?? this.home.identity()?.server;
    if (!server) throw new UsageError('no server: pass --server URL or set ORBITAL_SERVER');
    if (!/^https?:\/\//.test(server)) throw new UsageError('--server must be an http:// or https:// URL');
    return server.replace(/\/+$/, '');
  }

  api(): OrbitalClient {
    if (this.client) return this.client;
    const server = this.server();
    const session = this.home.session();
    const tokens: TokenPair | null = session && session.server === server ? session : null;
    this.client = new OrbitalClient({
      server,
      tokens,
      userAgent: 'orbital-cli/0.1',
      onTokens: (pair) => this.home.saveSession(server, pair),
      loadTokens: () => {
        const latest = this.home.session();
        return latest && latest.server === server ? latest : null;
      },
    });
    return this.client;
  }

  /** The logged-in user with the private key of this home. */
  secure(): SecureClient {
    if (this.secureClient) return this.secureClient;
    const identity = this.home.identity();
    if (identity && !identity.user_id) throw new UsageError(`the registration of ${identity.username} did not finish: run orbital register ${identity.username} again, or orbital login ${identity.username}`);
    if (!identity) throw new UsageError(`no key pair in ${this.home.dir}: run orbital register (or orbital login with a key backup)`);
    const api = this.api();
    if (!api.tokens) throw new UsageError('not logged in: run orbital login');
    this.secureClient = new SecureClient(api, {
      userId: identity.user_id,
      username: identity.username,
      keys: { publicJwk: identity.public_key, privateJwk: identity.private_key },
    });
    return this.secureClient;
  }

  /** A bar on stderr when it is a terminal (or with --progress), never with --json. */
  progress(label: string, total: number): ProgressBar | undefined {
    if (this.json || !(this.stderr.isTTY || this.values.progress)) return undefined;
    return new ProgressBar({ label, total, stream: this.stderr });
  }
}
