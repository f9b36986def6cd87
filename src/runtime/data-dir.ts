// DATA_DIR on Node: owner-only permissions for everything in it, and one process at a time for
// the embedded database (two processes writing one PGlite folder can corrupt it).
import { closeSync, lstatSync, chmodSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

/** Files and folders this process creates are the owner's alone, PGlite's included: 0600 and 0700. */
export function ownerOnlyFiles(): void {
  // Worker threads cannot change the umask; the process that owns them already did.
  if (isMainThread) process.umask(0o077);
}

/** Creates DATA_DIR (0700). A folder an older version left open to others is tightened, file by file, once. */
export function prepareDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) tighten(dir);
}

/**
 * Takes group and world bits off everything under `path`. PGlite sets the modes of its cluster's
 * files itself (0666, past the umask) when it creates the cluster: run this once it is open.
 */
export function tighten(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  chmodSync(path, stat.isDirectory() ? 0o700 : stat.mode & 0o700);
  if (stat.isDirectory()) for (const entry of readdirSync(path)) tighten(join(path, entry));
}

export class DataDirBusy extends Error {}

export interface DataDirLock {
  release(): void;
}

const LOCK_FILE = 'orbital.lock';

/** Whether a process with this pid is alive (EPERM: alive, someone else's). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const EMBEDDED =
  'only one process may open its embedded database. Stop that process first, or set DATA_DIR or DATABASE_URL.';

/**
 * Takes DATA_DIR's lock file (its content: our pid), or throws DataDirBusy naming the process that
 * holds it and `why` one process at a time. A lock left by a process that is gone (a crash, a
 * kill -9) is taken over.
 */
export function lockDataDir(dir: string, why = EMBEDDED): DataDirLock {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      const release = () => {
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // Already gone.
        }
      };
      process.once('exit', release);
      return {
        release() {
          process.off('exit', release);
          release();
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      continue; // released between our two looks: try again
    }
    if (holder > 0 && holder !== process.pid && isRunning(holder)) {
      throw new DataDirBusy(
        `DATA_DIR ${dir} is in use by process ${holder} (a running server?): ${why}`,
      );
    }
    try {
      unlinkSync(path); // stale: its process is gone
    } catch {
      // Someone else took it over first.
    }
  }
  throw new DataDirBusy(`DATA_DIR ${dir}: could not take its lock file ${path}.`);
}
