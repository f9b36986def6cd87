// One writing transaction plus the events it emitted, published only after commit.
import type { Deps, Tx } from '../deps';
import type { StoredEvent } from './events';

export class Outbox {
  readonly events: StoredEvent[] = [];
  add(...events: StoredEvent[]): void {
    this.events.push(...events);
  }
}

export async function write<T>(deps: Pick<Deps, 'db' | 'fanout' | 'defer'>, work: (tx: Tx, outbox: Outbox) => Promise<T>): Promise<T> {
  const outbox = new Outbox();
  const result = await deps.db.transaction((tx) => work(tx, outbox));
  publish(deps, outbox.events);
  return result;
}

export function publish(deps: Pick<Deps, 'fanout' | 'defer'>, events: StoredEvent[]): void {
  if (!events.length) return;
  const byGroup = new Map<string, StoredEvent[]>();
  for (const e of events) {
    const list = byGroup.get(e.groupId) ?? [];
    list.push(e);
    byGroup.set(e.groupId, list);
  }
  for (const [groupId, list] of byGroup) deps.defer(deps.fanout.publish(groupId, list));
}
