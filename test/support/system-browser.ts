// The docs-page test drives a system Chromium (playwright-core downloads no browser). A machine
// without one skips that test with one line saying how to run it; CI sets REQUIRE_BROWSER=1 so a
// missing browser fails there instead.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** CHROMIUM_PATH when set, else the first Chromium-family browser on PATH. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM_PATH) return executable(env.CHROMIUM_PATH) ? env.CHROMIUM_PATH : undefined;
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of NAMES) for (const dir of dirs) if (executable(join(dir, name))) return join(dir, name);
  return undefined;
}

export const browserRequired = (env: NodeJS.ProcessEnv = process.env) => env.REQUIRE_BROWSER === '1';

export const BROWSER_SKIPPED =
  'docs-browser test skipped: no Chromium found (install it, e.g. `apt-get install chromium`, or set CHROMIUM_PATH; REQUIRE_BROWSER=1 makes this a failure)';
