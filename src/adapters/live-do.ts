// The Workers live gateway: the Worker authorizes the upgrade, then hands it to the orbit's Durable
// Object with the authorized identity in an internal header. Only this code can set it: the object
// is reachable through its namespace binding alone, never by a public route.
import type { DurableObjectNamespace } from '@cloudflare/workers-types';
import type { Executor, LiveGateway, LiveRequest } from '../deps';
import { AppError } from '../domain/errors';
import { requireMember } from '../domain/groups';
import { tooManySockets } from '../domain/live/protocol';
import { roomStub } from './fanout-do';

export const IDENTITY_HEADER = 'x-orbital-live-identity';
export const ORBIT_HEADER = 'x-orbit-id';

/** `onOpened`: the room accepted a socket (the Analytics Engine's socket_opened; the room counts closes). */
export function durableObjectLive(ns: DurableObjectNamespace, db: Executor, onOpened?: () => void): LiveGateway {
  return {
    canUpgrade: (c) => c.req.header('upgrade')?.toLowerCase() === 'websocket',
    async upgrade(_c, request: LiveRequest) {
      const member = await requireMember(db, request.groupId, request.userId);
      const identity = { ...request, joinedAt: member.joinedAt.getTime() };
      const res = await roomStub(ns, request.groupId).fetch('https://orbit-room/connect', {
        headers: { upgrade: 'websocket', [ORBIT_HEADER]: request.groupId, [IDENTITY_HEADER]: JSON.stringify(identity) },
      });
      if (res.status === 429) throw tooManySockets();
      if (res.status !== 101) throw new AppError('UNAVAILABLE', 'The live room is not available; retry shortly.');
      onOpened?.();
      return res as unknown as Response;
    },
  };
}
