// A repeated chunk changes nothing, but it is still checked as a first one is: a body of the
// wrong size (also one sent chunked, without Content-Length) or with a wrong X-Chunk-SHA256 is 400.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { createOrbit, expectError, expectStatus, json, registerUser } from '../support/api';
import { complete, putChunk, randomFile, sha256Hex, startUpload } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

/** A body without Content-Length, sent in pieces. */
function streamed(bytes: Uint8Array): RequestInit {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 64) controller.enqueue(bytes.slice(i, i + 64));
      controller.close();
    },
  });
  return { body, duplex: 'half' } as RequestInit;
}

describe('a chunk sent again', () => {
  it('is 200 and harmless with the right size, 400 with another size or a wrong digest', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const file = randomFile(1000);
    const { media_id } = await startUpload(t, owner, orbit.id, 1000);
    const path = `/api/media/upload/${media_id}/chunks/0`;
    const headers = { ...owner.auth, 'content-type': 'application/octet-stream' };
    await expectStatus(await putChunk(t, owner, media_id, 0, file), 200);

    await expectError(await t.fetch(path, { method: 'PUT', headers, ...streamed(randomFile(1001)) }), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(path, { method: 'PUT', headers, ...streamed(randomFile(999)) }), 400, 'VALIDATION_ERROR');
    await expectError(await putChunk(t, owner, media_id, 0, randomFile(1000), { 'x-chunk-sha256': await sha256Hex(file) }), 400, 'VALIDATION_ERROR');
    const again = await t.fetch(path, { method: 'PUT', headers: { ...headers, 'x-chunk-sha256': await sha256Hex(file) }, ...streamed(file) });
    expect(await json(await expectStatus(again, 200))).toEqual({ index: 0, received: 1, chunk_count: 1 });

    await expectStatus(await complete(t, owner, media_id), 201);
    const bytes = new Uint8Array(await (await t.fetch(`/api/media/${media_id}/download`, { headers: owner.auth })).arrayBuffer());
    expect(await sha256Hex(bytes)).toBe(await sha256Hex(file));
  });
});
