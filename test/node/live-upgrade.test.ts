// The Node server's own upgrade path: only a real handshake (Connection: upgrade) reaches the hub.
// A GET that merely carries `Upgrade: websocket` arrives as a plain request, is refused, and takes
// no place under the per-user socket cap.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, registerUser } from '../support/api';
import { livePath } from '../support/live';
import { createTarget } from '../support/node-target';

let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

function plainGet(path: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(t.url + path, { headers: { ...headers, upgrade: 'websocket', connection: 'keep-alive' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('error', reject);
    req.end();
  });
}

describe('an Upgrade header without a handshake', () => {
  it('is refused 400 and leaves all five sockets of the cap to open', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (let i = 0; i < 5; i++) {
      const res = await plainGet(livePath(orbit.id), owner.auth);
      expect([res.status, res.body.error.code]).toEqual([400, 'VALIDATION_ERROR']);
    }
    const sockets = await Promise.all(Array.from({ length: 5 }, () => t.socket(livePath(orbit.id), owner.auth)));
    expect(sockets).toHaveLength(5);
    for (const s of sockets) s.close();
  });
});
