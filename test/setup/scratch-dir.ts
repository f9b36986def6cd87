// Where the tests' scratch folders go: a PGlite copy per test file (1,100 files, 40 MB), servers'
// data dirs, packed tarballs. On a disk file system (ext4 here) each copy cost ~0.5 s of kernel
// CPU, a fifth of the suite's; on tmpfs ~50 ms. So when /dev/shm is there and TMPDIR is not set,
// each vitest process points TMPDIR (os.tmpdir(), inherited by workers and the processes tests
// start) at a folder of its own there, removed when it exits; a killed run's folder goes at a later
// run, once its process is gone and nothing was created in it for an hour (a pid alone can belong to
// another PID namespace sharing /dev/shm).
// A whole run peaks at ~0.7 GB there: a smaller /dev/shm (a container's 64 MB) is left alone.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SHM = '/dev/shm';
const PREFIX = 'orbital-test-';
const NEEDED = 2 * 1024 ** 3;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function useMemoryScratch(): void {
  if (process.env.TMPDIR || !existsSync(SHM)) return;
  try {
    for (const name of readdirSync(SHM).filter((n) => n.startsWith(PREFIX))) {
      const pid = Number(name.slice(PREFIX.length).split('-')[0]);
      const path = join(SHM, name);
      try {
        if (pid && !alive(pid) && Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { recursive: true, force: true });
      } catch {
        // another user's, or gone meanwhile
      }
    }
    const { bavail, bsize } = statfsSync(SHM);
    if (bavail * bsize < NEEDED) return;
    const dir = join(SHM, `${PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.TMPDIR = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  } catch {
    // not writable: the system's temporary folder, as before
  }
}
