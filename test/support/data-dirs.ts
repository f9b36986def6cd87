// A new DATA_DIR for a server or CLI process the test starts. With the embedded database it holds
// a copy of one that global setup initialised once (initdb only, no migration: restore still finds
// it empty), so each process skips the ~4 s of CPU an initdb costs. data-dir.test.ts,
// startup.test.ts and one restore keep starting from an empty folder, as a first `npm start` does.
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';

export function newDataDir(prefix = 'orbital-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const initialised = inject('pgliteInitialised');
  if (initialised) cpSync(initialised, join(dir, 'pglite'), { recursive: true });
  return dir;
}
