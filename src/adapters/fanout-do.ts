// Fan-out on Workers: committed events go to the orbit's Durable Object, which owns its sockets.
import type { DurableObjectNamespace } from '@cloudflare/workers-types';
import type { Fanout } from '../deps';
import type { StoredEvent } from '../domain/events';

export function roomStub(ns: DurableObjectNamespace, groupId: string) {
  return ns.get(ns.idFromName(groupId));
}

/** `onHandedOver`: the room took this many events (the Analytics Engine's events_fanned_out). */
export function durableObjectFanout(ns: DurableObjectNamespace, onHandedOver?: (events: number) => void): Fanout {
  return {
    async publish(groupId: string, events: StoredEvent[]) {
      const res = await roomStub(ns, groupId).fetch('https://orbit-room/publish', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-orbit-id': groupId },
        body: JSON.stringify(events),
      });
      if (!res.ok) throw new Error(`orbit room refused events: ${res.status}`);
      onHandedOver?.(events.length);
    },
  };
}
