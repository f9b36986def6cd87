// The shape of the codebase: only runtimes and adapters may import a driver or a runtime API.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const FORBIDDEN = [/^pg$/, /^@electric-sql\//, /^@neondatabase\//, /^cloudflare:/, /^node:/, /^ws$/, /^@hono\/node-server/, /^drizzle-orm\/(pglite|node-postgres|neon-serverless)/];
const CORE = ['src/app.ts', 'src/deps.ts', 'src/config.ts', 'src/routes', 'src/domain', 'src/http', 'src/db'];

function files(path: string): string[] {
  if (statSync(path).isFile()) return path.endsWith('.ts') ? [path] : [];
  return readdirSync(path).flatMap((entry) => files(join(path, entry)));
}

describe('import boundaries', () => {
  it('routes, domain, http and db code import ports, never drivers or runtime APIs', () => {
    const offenders: string[] = [];
    for (const file of CORE.flatMap(files)) {
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const specifier = match[1] ?? match[2]!;
        const typeOnly = /^\s*(?:import|export)\s+type\s/.test(match[0].trimStart());
        if (!typeOnly && FORBIDDEN.some((re) => re.test(specifier))) offenders.push(`${relative('.', file)} → ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
