// What a server without its database answers, checked the same way on every runtime.
import { expect } from 'vitest';
import { expectError, post, publicKey } from './api';

/**
 * Register, login and /ready answer 503 UNAVAILABLE with Retry-After; /health stays 200. Returns
 * the username the requests carried, which no log line may contain.
 */
export async function expectUnavailableAnswers(fetch: (path: string, init?: RequestInit) => Promise<Response>): Promise<string> {
  const username = `leaky_${Math.random().toString(36).slice(2, 10)}`;
  const requests: Array<[string, RequestInit]> = [
    ['/api/auth/register', post({ username, password: 'a long password', public_key: publicKey() })],
    ['/api/auth/login', post({ username, password: 'a long password' })],
    ['/ready', {}],
  ];
  for (const [path, init] of requests) {
    const res = await fetch(path, init);
    await expectError(res, 503, 'UNAVAILABLE');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  }
  expect((await fetch('/health')).status).toBe(200);
  return username;
}

/** Log lines about the outage name the error's class only, never the request's data or SQL. */
export function expectCleanLog(lines: string[], username: string): Array<Record<string, unknown>> {
  const entries = lines.filter((l) => l.includes('database unavailable')).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(entries.length).toBeGreaterThan(0);
  for (const entry of entries) {
    expect(entry.error).toMatch(/^\w+$/);
    if (entry.at !== undefined) expect(entry.at).toMatch(/^[\w/.-]+:\d+:\d+$/);
  }
  const all = lines.join('\n');
  expect(all).not.toContain(username);
  expect(all).not.toMatch(/params|select |insert /i);
  return entries;
}
