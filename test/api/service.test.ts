// Service routes and the error contract on every runtime.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { expectError, json, post, registerUser } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

describe('service routes', () => {
  it('reports health and readiness', async () => {
    expect(await json(await t.fetch('/health'))).toEqual({ status: 'ok' });
    const ready = await t.fetch('/ready');
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: 'ready' });
  });

  it('publishes the public configuration', async () => {
    const body = await json(await t.fetch('/api/config'));
    expect(body).toEqual({
      registration: 'open',
      chunk_size: 5242880,
      max_media_bytes: 524288000,
      media_retention_days: 7,
      message_retention_days: 30,
      max_members: 100,
      max_owned_groups: 10,
      invite_code_length: 8,
    });
  });

  it('serves the OpenAPI document generated from the routes', async () => {
    const doc = await json(await t.fetch('/openapi.json'));
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/auth/register', '/api/groups', '/api/groups/{groupId}']));
  });

  it('serves the docs page with its scripts from this server, not a CDN', async () => {
    const page = await t.fetch('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    expect(html).not.toMatch(/https?:\/\//);
    const script = await t.fetch('/docs/assets/swagger-ui-bundle.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect((await script.text()).length).toBeGreaterThan(100_000);
    await expectError(await t.fetch('/docs/assets/index.html'), 404, 'NOT_FOUND');
  });

  it('puts a request id and nosniff on every response', async () => {
    for (const res of [await t.fetch('/health'), await t.fetch('/nope')]) {
      expect(res.headers.get('x-request-id')).toMatch(/.+/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

describe('errors in the contract shape', () => {
  it('unknown route → 404 NOT_FOUND', async () => {
    await expectError(await t.fetch('/api/definitely-not-here'), 404, 'NOT_FOUND');
  });

  it('wrong method → 405 METHOD_NOT_ALLOWED with Allow', async () => {
    const res = await t.fetch('/health', { method: 'DELETE' });
    expect(res.headers.get('allow')).toContain('GET');
    await expectError(res, 405, 'METHOD_NOT_ALLOWED');
  });

  it('malformed JSON → 400 VALIDATION_ERROR', async () => {
    await expectError(await t.fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":' }), 400, 'VALIDATION_ERROR');
  });

  it('wrong content type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    await expectError(await t.fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('a body over the route cap → 413 PAYLOAD_TOO_LARGE, with or without Content-Length', async () => {
    const big = JSON.stringify({ username: 'x'.repeat(200_000), password: 'y' });
    await expectError(await t.fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big }), 413, 'PAYLOAD_TOO_LARGE');
    const chunks = [new TextEncoder().encode('{"username":"'), new TextEncoder().encode('x'.repeat(200_000)), new TextEncoder().encode('"}')];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const res = await t.fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    await expectError(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('invalid fields → 400 VALIDATION_ERROR naming the field', async () => {
    const err = await expectError(await t.fetch('/api/auth/register', post({ username: 'a', password: 'short', public_key: {} })), 400, 'VALIDATION_ERROR');
    expect(JSON.stringify(err.details)).toContain('username');
  });

  it('a missing or bad token → 401 UNAUTHENTICATED; never a token from the query string', async () => {
    await expectError(await t.fetch('/api/groups'), 401, 'UNAUTHENTICATED');
    await expectError(await t.fetch('/api/groups', { headers: { authorization: 'Bearer nonsense' } }), 401, 'UNAUTHENTICATED');
    const user = await registerUser(t);
    await expectError(await t.fetch(`/api/groups?access_token=${user.access}`), 401, 'UNAUTHENTICATED');
    const ok = await t.fetch('/api/groups', { headers: user.auth });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
  });
});
