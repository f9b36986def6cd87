// A client nobody here wrote: openapi-typescript generates types from the served /openapi.json,
// a small program uses them through openapi-fetch, the TypeScript compiler checks it, and it then
// runs register → orbit → thread against a real server. Works from the document alone, or fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTarget } from '../support/node-target';

const root = join(import.meta.dirname, '../..');
// Inside node_modules, so the program resolves openapi-fetch the way an app would.
const cacheDir = join(root, 'node_modules', '.cache');
let dir: string;
let t: Awaited<ReturnType<typeof createTarget>>;

const PROGRAM = `import createClient from 'openapi-fetch';
import type { paths } from './schema';

const b64 = (n: number) => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n))));

export async function flow(baseUrl: string, username: string) {
  const client = createClient<paths>({ baseUrl });
  const registered = await client.POST('/api/auth/register', {
    body: { username, password: 'correct horse battery staple', public_key: { kty: 'OKP', crv: 'X25519', x: 'A'.repeat(43) } },
  });
  if (!registered.data) throw new Error('register: ' + registered.error?.error.code);
  const headers = { authorization: 'Bearer ' + registered.data.access_token };
  const orbit = await client.POST('/api/groups', { headers, body: { encrypted_name: b64(24), encrypted_group_key: b64(48) } });
  if (!orbit.data) throw new Error('orbit: ' + orbit.error?.error.code);
  const thread = await client.POST('/api/threads', {
    headers,
    body: { group_id: orbit.data.group.id, key_epoch: 1, encrypted_title: b64(16), encrypted_body: b64(64) },
  });
  if (!thread.data) throw new Error('thread: ' + thread.error?.error.code);
  const list = await client.GET('/api/groups/{groupId}/threads', { headers, params: { path: { groupId: orbit.data.group.id }, query: { limit: 10 } } });
  const missing = await client.GET('/api/threads/{threadId}', { headers, params: { path: { threadId: crypto.randomUUID() } } });
  // The error's code is the document's enum: a code it does not list would not compile here.
  const code: 'NOT_FOUND' | 'VALIDATION_ERROR' | 'UNAUTHENTICATED' | 'TOKEN_EXPIRED' | 'METHOD_NOT_ALLOWED' | 'INTERNAL' | 'UNAVAILABLE' | undefined =
    missing.error?.error.code;
  return { threadId: thread.data.id, listed: list.data?.items.map((t) => t.id) ?? [], missingStatus: missing.response.status, code };
}
`;

beforeAll(async () => {
  t = await createTarget();
  mkdirSync(cacheDir, { recursive: true });
  dir = mkdtempSync(join(cacheDir, 'generated-client-'));
  const document = await (await fetch(t.url + '/openapi.json')).text();
  writeFileSync(join(dir, 'openapi.json'), document);
  // openapi-typescript needs TypeScript 5's compiler API; tools/openapi-gen carries both.
  const gen = join(root, 'tools/openapi-gen/node_modules/openapi-typescript/bin/cli.js');
  execFileSync(process.execPath, [gen, join(dir, 'openapi.json'), '-o', join(dir, 'schema.ts')], { stdio: 'pipe' });
  writeFileSync(join(dir, 'flow.ts'), PROGRAM);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'esnext', moduleResolution: 'bundler', strict: true, noEmit: true, skipLibCheck: true, lib: ['es2022', 'dom'] },
      files: ['flow.ts'],
    }),
  );
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('type-checks a program written against the generated types', () => {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  let output = '';
  try {
    execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { stdio: 'pipe' });
  } catch (err) {
    output = String((err as { stdout?: Buffer }).stdout ?? err);
  }
  expect(output).toBe('');
});

it('runs register → orbit → thread against the server', async () => {
  const { flow } = (await import(join(dir, 'flow.ts'))) as { flow: (url: string, name: string) => Promise<Record<string, unknown>> };
  const out = await flow(t.url, `gen_${Date.now().toString(36)}`);
  expect(out.listed).toEqual([out.threadId]);
  expect(out).toMatchObject({ missingStatus: 404, code: 'NOT_FOUND' });
});
