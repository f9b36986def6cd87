// The `orbital` command installed as the README says (`npm install -g .`, here into a temporary
// prefix) and run from another folder: --version and per-command help, the password rule said
// plainly, no key pair left by a refused registration, thread id prefixes, downloads into the
// folder the command runs in, and removals that read as sentences.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '../support/node-target';

const root = join(import.meta.dirname, '../..');
const base = mkdtempSync(join(tmpdir(), 'orbital-install-'));
const bin = join(base, 'prefix', 'bin', 'orbital');
const work = join(base, 'work');
let t: Awaited<ReturnType<typeof createTarget>>;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function orbital(homeName: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--home', join(base, homeName), ...args], {
      cwd: work,
      env: { ...process.env, ORBITAL_SERVER: t.url, ORBITAL_PASSWORD: 'correct horse battery staple', INIT_CWD: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function json(homeName: string, args: string[]) {
  const run = await orbital(homeName, ['--json', ...args]);
  if (run.code !== 0) throw new Error(`orbital ${args.join(' ')} → ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}

const name = (p: string) => `${p}_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  // A global install of this folder links it: nothing is fetched.
  execFileSync('npm', ['install', '-g', '.', '--prefix', join(base, 'prefix'), '--offline', '--no-audit', '--no-fund'], { cwd: root, stdio: 'pipe' });
  t = await createTarget();
}, 180_000);

afterAll(async () => {
  await t?.close();
  rmSync(base, { recursive: true, force: true });
});

describe('the installed orbital command', () => {
  it('prints its version and one command’s help from any folder', async () => {
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
    expect(await orbital('none', ['--version'])).toMatchObject({ code: 0, stdout: `orbital ${version}\n` });
    const help = await orbital('none', ['watch', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: orbital .*watch <orbit> \[--after SEQ\] \[--count N\]/);
    expect(help.stdout).toMatch(/--count N stops after N events/);
  });

  it('says the password rule, and leaves no key pair when the server refuses the registration', async () => {
    const short = await orbital('short', ['register', name('pat')], { ORBITAL_PASSWORD: 'too short' });
    expect(short).toMatchObject({ code: 2, stderr: 'orbital: the password must be 12 to 256 characters long\n' });
    expect(existsSync(join(base, 'short', 'identity.json'))).toBe(false);

    const taken = name('taken');
    await json('taken1', ['register', taken]);
    const again = await orbital('taken2', ['register', taken]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^orbital: CONFLICT: /);
    expect(existsSync(join(base, 'taken2', 'identity.json'))).toBe(false);
  });

  it('takes thread id prefixes, downloads into the current folder, and tells removals as sentences', async () => {
    const alice = name('alice');
    const bob = name('bob');
    await json('alice', ['register', alice]);
    const orbit = await json('alice', ['orbit', 'create', 'Book club']);
    const thread = await json('alice', ['post', orbit.group.id, '--title', 'First meeting', '--body', 'Thursday?']);
    const prefix = thread.id.slice(0, 8);
    await json('alice', ['reply', prefix, 'Works for me']);
    const replies = await json('alice', ['replies', prefix]);
    expect(replies.items.map((r: { text: string }) => r.text)).toEqual(['Works for me']);

    writeFileSync(join(base, 'notes.txt'), 'chapter one');
    const uploaded = await json('alice', ['upload', orbit.group.id, join(base, 'notes.txt')]);
    const saved = await json('alice', ['download', uploaded.id]);
    expect(saved.path).toBe(join(work, 'notes.txt'));
    expect(readFileSync(join(work, 'notes.txt'), 'utf8')).toBe('chapter one');
    expect(existsSync(join(root, 'notes.txt'))).toBe(false);

    await json('bob', ['register', bob]);
    await json('bob', ['join', orbit.invite.code]);
    await json('alice', ['orbit', 'remove', orbit.group.id, bob, '--yes']);
    const { last_seq: last } = await json('alice', ['orbit', 'show', orbit.group.id]);
    const watched = await orbital('alice', ['watch', orbit.group.id, '--after', '0', '--count', String(last)]);
    const lines = watched.stdout.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[\\d+\\] ${bob} joined$`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[\\d+\\] ${alice} removed ${bob}$`)));
  }, 180_000);
});
