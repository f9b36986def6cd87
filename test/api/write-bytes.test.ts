// The per-user byte budget counts the bytes a write actually sends, with or without
// Content-Length: a chunked body pays like any other, and concurrent chunked bodies cannot slip
// past a budget they do not fit in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { b64, createOrbit, expectError, expectStatus, json, registerUser, type TestUser } from '../support/api';
import { CHUNK, randomFile, startUpload } from '../support/media';
import type { Target } from '../support/types';
import { MESSAGE_BODY_CAP } from '../../src/routes/messages/schemas';

let t: Target;
beforeAll(async () => {
  t = await createTarget({ env: { RATE_LIMIT: 'on' } });
});
afterAll(() => t?.close());

const randomIp = () => `10.${Array.from(crypto.getRandomValues(new Uint8Array(3))).join('.')}`;
const encoder = new TextEncoder();

/** A body sent without Content-Length (Transfer-Encoding: chunked over HTTP/1.1), in 3 pieces. */
function chunked(bytes: Uint8Array): RequestInit {
  const third = Math.ceil(bytes.length / 3);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += third) controller.enqueue(bytes.slice(i, i + third));
      controller.close();
    },
  });
  return { body: stream, duplex: 'half' } as RequestInit;
}

const bytesCharged = async (user: TestUser) =>
  Number((await t.sql<{ hits: string }>('select hits from rate_limits where key = $1 and window_end > now()', [`w:b:${user.id}`]))[0]?.hits ?? 0);

/** Spends the user's byte budget down to `room` bytes; returns the bytes then charged. */
async function fillBudget(user: TestUser, room: number): Promise<number> {
  const limit = 2 * Number(t.env.MAX_MEDIA_BYTES ?? 524_288_000) + 256 * 1024 * 1024;
  const start = limit - Math.floor(room);
  await t.sql(
    `insert into rate_limits (key, window_start, window_end, hits) values ($1, now(), now() + interval '1 hour', $2)
     on conflict (key) do update set window_start = now(), window_end = now() + interval '1 hour', hits = $2`,
    [`w:b:${user.id}`, start],
  );
  return start;
}

const message = (user: TestUser, groupId: string, body: Uint8Array, init: RequestInit) =>
  t.fetch(`/api/groups/${groupId}/messages`, { method: 'POST', headers: { ...user.auth, 'content-type': 'application/json' }, ...init, ip: randomIp() } as never);

describe('per-user byte budget', () => {
  it('a chunked JSON body pays the bytes it sent, as one with Content-Length does', async () => {
    const user = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, user);
    const before = await bytesCharged(user);
    const body = encoder.encode(JSON.stringify({ envelope: b64(60_000) }));
    await expectStatus(await message(user, orbit.id, body, chunked(body)), 201);
    expect(await bytesCharged(user)).toBe(before + body.length);
    await expectStatus(await message(user, orbit.id, body, { body: body as Uint8Array<ArrayBuffer> }), 201);
    expect(await bytesCharged(user)).toBe(before + 2 * body.length);
  });

  it('a chunked media chunk pays its bytes', async () => {
    const user = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, user);
    const size = 300_000;
    const upload = await startUpload(t, user, orbit.id, size);
    const before = await bytesCharged(user);
    const chunk = randomFile(size);
    const res = await t.fetch(`/api/media/upload/${upload.media_id}/chunks/0`, {
      method: 'PUT',
      headers: { ...user.auth, 'content-type': 'application/octet-stream' },
      ...chunked(chunk),
    } as never);
    await expectStatus(res, 200);
    expect(await bytesCharged(user)).toBe(before + size);
  });

  it('a chunked media chunk the budget cannot cover is refused before anything is stored', async () => {
    const user = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, user);
    const size = 300_000;
    const upload = await startUpload(t, user, orbit.id, size);
    const start = await fillBudget(user, CHUNK / 2);
    const res = await t.fetch(`/api/media/upload/${upload.media_id}/chunks/0`, {
      method: 'PUT',
      headers: { ...user.auth, 'content-type': 'application/octet-stream' },
      ...chunked(randomFile(size)),
    } as never);
    await expectError(res, 429, 'RATE_LIMITED');
    expect(await bytesCharged(user)).toBe(start);
    const status = await t.fetch(`/api/media/upload/${upload.media_id}`, { headers: user.auth });
    expect((await json(status)).received).toEqual([]);
  });

  it('chunked bodies the budget cannot cover are refused, all of them at once, and pay nothing', async () => {
    const user = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, user);
    // Room for half the route's cap: a body of unknown length must hold the whole cap while it runs.
    const start = await fillBudget(user, MESSAGE_BODY_CAP / 2);
    const body = encoder.encode(JSON.stringify({ envelope: b64(30_000) }));
    const answers = await Promise.all(Array.from({ length: 12 }, () => message(user, orbit.id, body, chunked(body))));
    for (const res of answers) await expectError(res, 429, 'RATE_LIMITED');
    expect(await bytesCharged(user)).toBe(start);
    expect(await t.sql('select id from signal_messages where group_id = $1', [orbit.id])).toEqual([]);
    // The same body with its length declared fits.
    const declared = { body: body as Uint8Array<ArrayBuffer>, headers: { ...user.auth, 'content-type': 'application/json', 'content-length': String(body.length) } };
    await expectStatus(await message(user, orbit.id, body, declared), 201);
    expect(await bytesCharged(user)).toBe(start + body.length);
  });
});
