// `npm run backup` of an embedded server (as `npm start` runs it) holding large rows, then
// `npm run restore` of the archive: the server's RSS before, at its peak and after; the longest
// wait of an API call made every 50 ms meanwhile; the restore's peak RSS. BENCH_BACKUP_BEFORE=<dir>
// (a built checkout of an older commit) runs the same scenario there too, on a copy of the same data.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite } from '../src/adapters/db-pglite';
import { migrate } from '../src/db/migrate';
import type { Bench, BenchResult } from './harness';
import { round } from './harness';
import { buildOnce, startAsNpmStart } from './npm-start';

const ROWS = Number(process.env.BENCH_BACKUP_ROWS ?? 2000);
const SECRET = 'orbital-bench-secret-0123456789-abcdefghijklmnop';

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** An embedded data dir holding ROWS threads of 64 KiB bodies (the contract's largest). */
async function seed(dir: string): Promise<void> {
  const handle = await openPglite({ dataDir: join(dir, 'pglite') });
  await migrate(handle.db);
  const q = (text: string, params: unknown[] = []) => handle.client.query(text, params);
  const { rows } = await q(`insert into users (username, username_lower, password_hash, public_key) values ('bench', 'bench', 'x', '{}') returning id`);
  const userId = (rows[0] as { id: string }).id;
  const group = await q(`insert into groups (encrypted_name, created_by, owner_id, member_count, max_members, last_seq) values (decode('00', 'hex'), $1, $1, 1, 100, $2) returning id`, [userId, ROWS]);
  const groupId = (group.rows[0] as { id: string }).id;
  await q(`insert into group_members (group_id, user_id, role) values ($1, $2, 'owner')`, [groupId, userId]);
  await q(`insert into group_quotas (group_id) values ($1)`, [groupId]);
  for (let from = 1; from <= ROWS; from += 100) {
    await q(
      `insert into threads (group_id, author_id, key_epoch, encrypted_title, encrypted_body, seq, last_activity_seq)
       select $1, $2, 1, decode('00', 'hex'), convert_to(repeat(md5(i::text), 2048), 'UTF8'), i, i from generate_series($3::int, $4::int) i`,
      [groupId, userId, from, Math.min(ROWS, from + 99)],
    );
  }
  await handle.close();
}

/** Runs `node <script> <args>` in `cwd`; resolves with its exit code and its peak RSS (sampled every 50 ms). */
async function runCli(cwd: string, script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; peakMb: number; out: string }> {
  const child = spawn(process.execPath, [script, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  let peakMb = 0;
  const timer = setInterval(() => {
    try {
      peakMb = Math.max(peakMb, rssMb(child.pid!));
    } catch {
      // exited between two samples
    }
  }, 50);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearInterval(timer);
  return { code, peakMb, out };
}

async function scenario(label: string, cwd: string, seeded: string): Promise<Record<string, string | number>> {
  buildOnce(cwd);
  const work = mkdtempSync(join(tmpdir(), 'orbital-bench-backup-'));
  try {
    const dataDir = join(work, 'data');
    cpSync(seeded, dataDir, { recursive: true });
    const env = { DATA_DIR: dataDir, JWT_SECRET: SECRET };
    const server = await startAsNpmStart(env, { cwd });
    const pid = server.child.pid!;
    const before = rssMb(pid);
    let peak = before;
    let slowest = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const started = performance.now();
        await fetch(`${server.url}/ready`).then((r) => r.arrayBuffer());
        slowest = Math.max(slowest, performance.now() - started);
        peak = Math.max(peak, rssMb(pid));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const archive = join(work, 'orbital.tar');
    const backup = await runCli(cwd, 'dist/backup.js', [archive], env);
    probing = false;
    await probe;
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssMb(pid);
    await server.stop();
    if (backup.code !== 0) throw new Error(`backup failed in ${cwd}: ${backup.out}`);
    const restore = await runCli(cwd, 'dist/restore.js', [archive], { DATA_DIR: join(work, 'restored'), JWT_SECRET: SECRET });
    if (restore.code !== 0) throw new Error(`restore failed in ${cwd}: ${restore.out}`);
    return {
      server: label,
      'RSS before (MB)': round(before, 0),
      'RSS peak during backup (MB)': round(peak, 0),
      'RSS 1 s after (MB)': round(after, 0),
      'longest /ready wait (ms)': round(slowest, 0),
      'backup CLI peak RSS (MB)': round(backup.peakMb, 0),
      'restore peak RSS (MB)': round(restore.peakMb, 0),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function run(): Promise<BenchResult> {
  const seeded = mkdtempSync(join(tmpdir(), 'orbital-bench-backup-seed-'));
  try {
    await seed(seeded);
    const rows = [await scenario('this tree', '.', seeded)];
    const before = process.env.BENCH_BACKUP_BEFORE;
    if (before) rows.push(await scenario(`before (${execFileSync('git', ['-C', before, 'rev-parse', '--short', 'HEAD']).toString().trim()})`, before, seeded));
    return {
      title: `Backup and restore of an embedded server holding ${ROWS.toLocaleString('en')} threads of 64 KiB`,
      rows,
      notes: [
        'The server runs as `npm start` runs it (PGlite, default log level); `npm run backup` asks it over its socket while a client calls /ready every 50 ms.',
        'PGlite is one WASM heap that does not shrink: what a backup makes it hold at once, the server keeps.',
        'The longest wait is the snapshot: the embedded database serves one transaction at a time.',
      ].join('\n'),
    };
  } finally {
    rmSync(seeded, { recursive: true, force: true });
  }
}

export default { name: 'backup', run } satisfies Bench;
