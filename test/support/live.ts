// Helpers for live-socket tests: writing events through the server's own write path, and reading
// a socket until some frame arrives.
import { expect } from 'vitest';
import { appendEvent } from '../../src/domain/events';
import { write } from '../../src/domain/tx';
import { SocketRefused, type Target, type TestSocket } from './types';

export const livePath = (groupId: string, query: Record<string, string | number> = {}) => {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)])).toString();
  return `/api/groups/${groupId}/live${qs ? `?${qs}` : ''}`;
};

/** Appends `count` group_updated events, `perTx` per transaction, published after each commit as every write is. */
export async function writeEvents(
  t: Target,
  groupId: string,
  actorId: string,
  count: number,
  options: { perTx?: number; data?: (i: number) => Record<string, unknown> } = {},
): Promise<void> {
  const perTx = options.perTx ?? 1;
  await t.withDeps(async (deps) => {
    for (let done = 0; done < count; done += perTx) {
      await write(deps, async (tx, outbox) => {
        for (let i = done; i < Math.min(count, done + perTx); i++) {
          outbox.add(await appendEvent(tx, { groupId, type: 'group_updated', actorId, data: options.data?.(i) ?? { i } }));
        }
      });
    }
  });
}

/** A thread row of the orbit (typing needs one; the threads routes are not what these tests are about). */
export async function insertThread(t: Target, groupId: string, authorId: string): Promise<string> {
  const id = crypto.randomUUID();
  await t.sql(
    `insert into threads (id, group_id, author_id, key_epoch, encrypted_title, encrypted_body, last_activity_seq, seq) values ($1, $2, $3, 1, '\\x00', '\\x00', 0, 0)`,
    [id, groupId, authorId],
  );
  return id;
}

/** Opens a socket and reads until `ready`; returns the socket, the frames before `ready` and its seq. */
export async function openLive(t: Target, path: string, headers: Record<string, string> = {}) {
  const socket = await t.socket(path, headers);
  const before: any[] = [];
  for (;;) {
    const frame = await socket.next(15_000);
    if (frame?.type === 'ready') return { socket, before, ready: frame.seq as number };
    before.push(frame);
  }
}

/** Reads frames until one matches; returns every frame read, the match last. */
export async function readUntil(socket: TestSocket, match: (frame: any) => boolean, timeoutMs = 15_000): Promise<any[]> {
  const frames: any[] = [];
  for (;;) {
    const frame = await socket.next(timeoutMs);
    frames.push(frame);
    if (match(frame)) return frames;
  }
}

/** Reads until the event with this seq; returns the seqs of the events read. */
export async function seqsUntil(socket: TestSocket, seq: number): Promise<number[]> {
  const frames = await readUntil(socket, (f) => typeof f?.seq === 'number' && f.seq >= seq && f.type !== 'ready');
  return frames.filter((f) => typeof f?.seq === 'number' && f.group_id).map((f) => f.seq);
}

/** Expects the upgrade to be refused with this status and error code (as plain HTTP). */
export async function expectRefused(opening: Promise<unknown>, status: number, code: string) {
  const err = await opening.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SocketRefused);
  const refused = err as SocketRefused;
  expect(refused.status).toBe(status);
  const body = JSON.parse(refused.body);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.request_id).toBe('string');
  return body.error;
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
