// scripts/build-server.mjs while processes run from dist/ (the tests' `npm pack` and `npm install -g .`
// rebuild it beside servers and CLIs started from it): an unchanged tree rewrites nothing, so no
// process can read a file in the middle of being written.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

const chunksOf = (root: string) => readdirSync(join(root, 'dist', 'chunks')).filter((name) => name.endsWith('.js')).map((name) => readFileSync(join(root, 'dist', 'chunks', name), 'utf8'));

it('a build is skipped while nothing it read changed, and runs again when a source file does', { timeout: 60_000 }, async () => {
  // A copy of the sources, so the edit below cannot reach a build running beside this test.
  const copy = mkdtempSync(join(tmpdir(), 'orbital-build-'));
  try {
    cpSync(join(ROOT, 'src'), join(copy, 'src'), { recursive: true });
    cpSync(join(ROOT, 'scripts', 'build-server.mjs'), join(copy, 'scripts', 'build-server.mjs'));
    cpSync(join(ROOT, 'tsconfig.json'), join(copy, 'tsconfig.json'));
    cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    const build = () => execFileSync(process.execPath, ['scripts/build-server.mjs', '--verbose'], { cwd: copy, encoding: 'utf8' });
    expect(build()).toMatch(/^dist\/ built/);
    expect(build()).toMatch(/^dist\/ up to date/);
    const file = join(copy, 'src', 'http', 'security-headers.ts');
    writeFileSync(file, readFileSync(file, 'utf8').replace("'nosniff'", "'nosniff-edited'"));
    expect(build()).toMatch(/^dist\/ built/);
    expect(chunksOf(copy).some((text) => text.includes('nosniff-edited'))).toBe(true);
    // An output removed (a half-cleaned dist/), or written by anything else (an older commit's
    // build script writes the same entry names), is built again too.
    rmSync(join(copy, 'dist', 'server.js'));
    expect(build()).toMatch(/^dist\/ built/);
    writeFileSync(join(copy, 'dist', 'server.js'), "import './chunks/an-older-build.js';\n");
    expect(build()).toMatch(/^dist\/ built/);
    expect(build()).toMatch(/^dist\/ up to date/);
    // A file saved while a build runs: the next build has it, whether or not that one read it.
    const saving = spawn(process.execPath, ['scripts/build-server.mjs'], { cwd: copy, stdio: 'ignore' });
    const saved = new Promise((resolve) => saving.once('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(file, readFileSync(file, 'utf8').replace("'nosniff-edited'", "'nosniff-saved-meanwhile'"));
    await saved;
    build();
    expect(chunksOf(copy).some((text) => text.includes('nosniff-saved-meanwhile'))).toBe(true);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
