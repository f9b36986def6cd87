// A chunk whose upload is aborted while its body is still arriving (Content-Length known, so the
// body streams into the disk store as it comes): 409, no 500 and no "unhandled error" logged,
// and nothing of the upload left on disk. Deterministic: half the chunk, the abort, the rest.
import { request } from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, expectStatus, json, registerUser } from '../support/api';
import { CHUNK, chunkOf, randomFile, startUpload } from '../support/media';
import { createTarget } from '../support/node-target';

const logged: Array<Record<string, unknown>> = [];
let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  t = await createTarget({ logger: { log: (_level, fields) => void logged.push(fields) } });
});
afterAll(() => t?.close());

/** PUTs a chunk in two halves, running `between` after the first half has reached the server. */
function putInHalves(path: string, headers: Record<string, string>, bytes: Uint8Array, between: () => Promise<void>) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(t.url + path, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.write(bytes.subarray(0, bytes.length / 2));
    setTimeout(() => {
      between().then(() => req.end(bytes.subarray(bytes.length / 2)), reject);
    }, 300);
  });
}

describe('a chunk whose upload is aborted mid-body', () => {
  it('answers 409 CONFLICT, logs no unhandled error, and leaves nothing on disk', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const file = randomFile(CHUNK + 10);
    for (let trial = 0; trial < 3; trial++) {
      const open = await startUpload(t, owner, orbit.id, file.length);
      const answer = await putInHalves(`/api/media/upload/${open.media_id}/chunks/0`, owner.auth, chunkOf(file, 0), async () => {
        await expectStatus(await t.fetch(`/api/media/upload/${open.media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
      });
      expect(answer.status).toBe(409);
      expect(JSON.parse(answer.body).error.code).toBe('CONFLICT');
      expect(existsSync(join(t.env.DATA_DIR!, 'blobs', 'objects', 'media', orbit.id, open.media_id))).toBe(false);
    }
    expect(logged.filter((f) => JSON.stringify(f).includes('unhandled'))).toEqual([]);
  });
});

describe('a client that drops its connection mid-chunk', () => {
  it('leaves nothing counted and no file behind, logs no unhandled error, and the next copy counts', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const file = randomFile(CHUNK + 10);
    const open = await startUpload(t, owner, orbit.id, file.length);
    const path = `/api/media/upload/${open.media_id}/chunks/0`;
    const folder = join(t.env.DATA_DIR!, 'blobs', 'objects', 'media', orbit.id, open.media_id);
    for (let trial = 0; trial < 3; trial++) {
      // Half the chunk under a Content-Length of the whole (the body streams into the store as it
      // arrives), then the connection goes.
      await new Promise<void>((resolve) => {
        const req = request(t.url + path, { method: 'PUT', headers: { ...owner.auth, 'content-type': 'application/octet-stream', 'content-length': String(CHUNK) } });
        req.on('error', () => resolve());
        req.write(chunkOf(file, 0).subarray(0, CHUNK / 2), () => setTimeout(() => req.destroy(), 200));
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(readdirSync(folder)).toEqual([]);
    }
    const status = await json(await t.fetch(`/api/media/upload/${open.media_id}`, { headers: owner.auth }));
    expect(status).toMatchObject({ received: [] });
    await expectStatus(await t.fetch(path, { method: 'PUT', headers: { ...owner.auth, 'content-type': 'application/octet-stream' }, body: chunkOf(file, 0) as Uint8Array<ArrayBuffer> }), 200);
    expect(logged.filter((f) => JSON.stringify(f).includes('unhandled'))).toEqual([]);
  });
});
