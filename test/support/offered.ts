// Which operations the server under test offers, from its own OpenAPI document. Client tests
// name the operations they rely on, so a route that goes missing fails them with a clear message.
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

/** Fails the running test when the server lacks any of `ops`. */
export function requireOperations(_ctx: TestContext, offered: Set<string>, ops: string[]): void {
  const missing = missingOperations(offered, ops);
  if (missing.length) throw new Error(`the server does not offer ${missing.join(', ')}`);
}

/** The base URL of a Node target's server (for clients that take a URL, not the target's fetch). */
export async function serverUrl(t: Target): Promise<string> {
  return new URL((await t.fetch('/health')).url).origin;
}
