// Headers fit for an API, on every runtime: nosniff everywhere, HSTS over TLS only, no caching of
// authenticated answers, CORS only for configured origins, and each route's body cap enforced
// before the body is read (with or without Content-Length).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { b64, createOrbit, expectError, post, registerUser, type TestOrbit, type TestUser } from '../support/api';
import { bigB64 } from '../support/content';
import { CHUNK, putChunk, startUpload } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
let user: TestUser;
let orbit: TestOrbit;
beforeAll(async () => {
  t = await createTarget();
  user = await registerUser(t);
  orbit = await createOrbit(t, user);
});
afterAll(() => t?.close());

const APP = 'https://app.example';

describe('nosniff and caching', () => {
  it('every answer is nosniff; authenticated ones, errors included, are never cached', async () => {
    const answers = {
      health: await t.fetch('/health'),
      unknownRoute: await t.fetch('/api/nope'),
      wrongMethod: await t.fetch('/health', { method: 'PUT' }),
      noToken: await t.fetch('/api/users/me'),
      docs: await t.fetch('/docs/assets/swagger-ui.css'),
      me: await t.fetch('/api/users/me', { headers: user.auth }),
      notMine: await t.fetch(`/api/groups/${crypto.randomUUID()}`, { headers: user.auth }),
      invalid: await t.fetch('/api/groups', post({ encrypted_name: 'not base64!' }, user.auth)),
    };
    for (const [name, res] of Object.entries(answers)) {
      await res.arrayBuffer();
      expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
    }
    for (const name of ['me', 'notMine', 'invalid'] as const) expect(answers[name].headers.get('cache-control'), name).toContain('no-store');
  });
});

describe('HSTS', () => {
  it('only when the request came over TLS', async () => {
    // workerd requests are https://; the Node server listens on plain http.
    const plain = await t.fetch('/health');
    expect(plain.headers.get('strict-transport-security')).toBe(t.name === 'workerd' ? 'max-age=31536000' : null);
  });

  it('behind a trusted proxy that terminated TLS (X-Forwarded-Proto: https), not from an untrusted one', async () => {
    const proxied = await t.fetch('/health', { headers: { 'x-forwarded-proto': 'https' } });
    expect(proxied.headers.get('strict-transport-security')).toBe('max-age=31536000');
    const untrusting = await createTarget({ env: { TRUST_PROXY: 'off' } });
    try {
      const res = await untrusting.fetch('/health', { headers: { 'x-forwarded-proto': 'https' } });
      expect(res.headers.get('strict-transport-security')).toBe(t.name === 'workerd' ? 'max-age=31536000' : null);
    } finally {
      await untrusting.close();
    }
  });
});

describe('CORS', () => {
  const preflight = (target: Target, origin: string) =>
    target.fetch('/api/groups', {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' },
    });

  it('answers no origin when none is configured', async () => {
    const pre = await preflight(t, APP);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await t.fetch('/api/users/me', { headers: { ...user.auth, origin: APP } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows exactly the configured origins, preflight and actual request', async () => {
    const cors = await createTarget({ env: { CORS_ORIGINS: `${APP}, https://other.example` } });
    try {
      const who = await registerUser(cors);
      const pre = await preflight(cors, APP);
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe(APP);
      expect(pre.headers.get('access-control-allow-methods')).toMatch(/POST/);
      expect(pre.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('idempotency-key');

      const res = await cors.fetch('/api/groups', post({ encrypted_name: b64(24), encrypted_group_key: b64(64) }, { ...who.auth, origin: APP }));
      expect(res.status).toBe(201);
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(res.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('x-request-id');
      expect(res.headers.get('vary')?.toLowerCase()).toContain('origin');

      const stranger = 'https://evil.example';
      expect((await preflight(cors, stranger)).headers.get('access-control-allow-origin')).toBeNull();
      const refused = await cors.fetch('/api/users/me', { headers: { ...who.auth, origin: stranger } });
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await cors.close();
    }
  });
});

describe('body caps per route, before the body is read', () => {
  /** A body sent as a stream: no Content-Length, so the cap has to count what arrives. */
  const streamed = (text: string) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(text);
        for (let i = 0; i < bytes.length; i += 16 * 1024) controller.enqueue(bytes.subarray(i, i + 16 * 1024));
        controller.close();
      },
    });
  const send = (path: string, body: string, chunked: boolean, method = 'POST') =>
    t.fetch(path, {
      method,
      headers: { ...user.auth, 'content-type': 'application/json' },
      body: chunked ? streamed(body) : body,
      ...(chunked ? { duplex: 'half' } : {}),
    } as RequestInit);

  it('a small JSON route (64 KiB) refuses more, with and without Content-Length', async () => {
    const body = JSON.stringify({ invite_code: 'x'.repeat(70 * 1024) });
    for (const chunked of [false, true]) await expectError(await send('/api/groups/join', body, chunked), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('the thread route takes more than 64 KiB (a 64 KiB body in base64) and refuses past its own cap', async () => {
    const thread = (bodyBytes: number) => JSON.stringify({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(32), encrypted_body: bigB64(bodyBytes) });
    expect((await send('/api/threads', thread(64 * 1024), false)).status).toBe(201);
    for (const chunked of [false, true]) await expectError(await send('/api/threads', thread(200 * 1024), chunked), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a chunk is at most chunk_size bytes', async () => {
    const upload = await startUpload(t, user, orbit.id, CHUNK + 10);
    await expectError(await putChunk(t, user, upload.media_id, 0, new Uint8Array(CHUNK + 1)), 413, 'PAYLOAD_TOO_LARGE');
    expect((await putChunk(t, user, upload.media_id, 0, new Uint8Array(CHUNK))).status).toBe(200);
  });
});
