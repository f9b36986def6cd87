// Which operations the server under test offers, from its own OpenAPI document. Client tests that
// need routes built on other branches skip (naming what is missing) until those routes exist;
// with ORBITAL_REQUIRE_ALL_ROUTES=1 a missing route fails the test instead (set it once merged).
import type { TestContext } from 'vitest';
import type { Target } from './types';

/** "get /api/groups/{groupId}" → "get /api/groups/{}": parameter names do not matter. */
export const operation = (op: string) => op.toLowerCase().replace(/\{[^}]+\}/g, '{}');

export async function offeredOperations(t: Target): Promise<Set<string>> {
  const doc = (await (await t.fetch('/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
  return new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => operation(`${method} ${path}`))));
}

export function missingOperations(offered: Set<string>, ops: string[]): string[] {
  return ops.filter((op) => !offered.has(operation(op)));
}

/** Skips the running test while the server lacks any of `ops` (fails instead under ORBITAL_REQUIRE_ALL_ROUTES=1). */
export function requireOperations(ctx: TestContext, offered: Set<string>, ops: string[]): void {
  const missing = missingOperations(offered, ops);
  if (!missing.length) return;
  if (process.env.ORBITAL_REQUIRE_ALL_ROUTES === '1') throw new Error(`the server does not offer ${missing.join(', ')}`);
  ctx.skip(`the server does not offer ${missing.join(', ')} yet`);
}

/** The base URL of a Node target's server (for clients that take a URL, not the target's fetch). */
export async function serverUrl(t: Target): Promise<string> {
  return new URL((await t.fetch('/health')).url).origin;
}
