// scripts/build-server.mjs while processes run from dist/ (the tests' `npm pack` and `npm install -g .`
// rebuild it beside servers and CLIs started from it): an unchanged tree rewrites nothing, so no
// process can read a file in the middle of being written.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dist = join(ROOT, 'dist');

const files = () =>
  Object.fromEntries(
    readdirSync(dist, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !e.parentPath.includes('client'))
      .map((e) => {
        const path = join(e.parentPath, e.name);
        const s = statSync(path, { bigint: true });
        return [path, `${s.ino}:${s.mtimeNs}`];
      }),
  );

it('a rebuild of an unchanged tree leaves every file of dist/ as it was', () => {
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { cwd: ROOT });
  const before = files();
  expect(Object.keys(before).some((p) => p.endsWith('server.js'))).toBe(true);
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { cwd: ROOT });
  expect(files()).toEqual(before);
});
