// A backup's staging folder: DATA_DIR/.backup-<pid>-<random>, holding a copy of every table and a
// link to every media file until the archive is packed. Named by its process so that what a killed
// one left (SIGKILL, the OOM killer, Ctrl-C on the CLI) can be told from a backup still running.
import { readdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { isRunning } from '../data-dir';

const STAGING = /^\.backup-(\d+)-/;

export async function newStaging(parent: string): Promise<string> {
  await mkdir(parent, { recursive: true, mode: 0o700 });
  return mkdtemp(join(parent, `.backup-${process.pid}-`));
}

/**
 * Removes staging folders under `parent`: those of processes that are gone, or this process's own
 * (on an interrupt, where no `finally` runs). Synchronous, for a signal handler. Answers their names.
 */
export function removeStaging(parent: string, whose: 'gone' | 'mine'): string[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const removed = names.filter((name) => {
    const pid = Number(STAGING.exec(name)?.[1]);
    return pid > 0 && (whose === 'mine' ? pid === process.pid : pid !== process.pid && !isRunning(pid));
  });
  for (const name of removed) rmSync(join(parent, name), { recursive: true, force: true });
  return removed;
}
