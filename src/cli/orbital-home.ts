// The CLI's local state in ~/.orbital (or --home / ORBITAL_HOME): the key pair (identity.json),
// the session tokens (session.json) and upload journals — all mode 0600 in a 0700 folder, written
// atomically so a crash never leaves half a key behind.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { JournalStore, TokenPair, UploadJournal, UserKeys } from '../client';

export interface StoredIdentity {
  v: 1;
  server: string;
  user_id: string;
  username: string;
  public_key: JsonWebKey;
  private_key: JsonWebKey;
  created_at: string;
}

export interface StoredSession extends TokenPair {
  server: string;
}

export function defaultHome(env: NodeJS.ProcessEnv): string {
  return resolve(env.ORBITAL_HOME || join(homedir(), '.orbital'));
}

export class Home {
  constructor(readonly dir: string) {}

  private path(name: string) {
    return join(this.dir, name);
  }

  private ensure(sub = '') {
    const dir = join(this.dir, sub);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    return dir;
  }

  private read<T>(name: string): T | null {
    try {
      return JSON.parse(readFileSync(this.path(name), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`${this.path(name)} is unreadable: ${(err as Error).message}`);
    }
  }

  private write(name: string, value: unknown) {
    this.ensure(name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '');
    const tmp = `${this.path(name)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path(name));
  }

  private remove(name: string) {
    rmSync(this.path(name), { force: true });
  }

  identity(): StoredIdentity | null {
    return this.read<StoredIdentity>('identity.json');
  }

  /** Removes a key pair that never became an account's (a refused registration). */
  forgetIdentity() {
    this.remove('identity.json');
  }

  saveIdentity(server: string, user: { id: string; username: string }, keys: UserKeys) {
    this.write('identity.json', {
      v: 1,
      server,
      user_id: user.id,
      username: user.username,
      public_key: keys.publicJwk,
      private_key: keys.privateJwk,
      created_at: new Date().toISOString(),
    } satisfies StoredIdentity);
  }

  session(): StoredSession | null {
    return this.read<StoredSession>('session.json');
  }

  saveSession(server: string, tokens: TokenPair | null) {
    if (tokens) this.write('session.json', { server, access_token: tokens.access_token, refresh_token: tokens.refresh_token } satisfies StoredSession);
    else this.remove('session.json');
  }

  /** The journal of uploads of one file into one orbit (resumed when the same file is uploaded again). */
  journal(groupId: string, filePath: string): JournalStore {
    const name = `uploads/${createHash('sha256').update(`${groupId}\n${resolve(filePath)}`).digest('hex').slice(0, 32)}.json`;
    return {
      load: async () => this.read<UploadJournal>(name),
      save: async (journal) => this.write(name, journal),
      clear: async () => this.remove(name),
    };
  }
}
