// In-process fan-out: committed events go to this process's live hub. With node-postgres, a
// NOTIFY (orbit id and seq) tells the other processes, whose hubs read the log.
import type { Fanout } from '../deps';
import type { StoredEvent } from '../domain/events';

export type EventListener = (groupId: string, events: StoredEvent[]) => void;

export class LocalFanout implements Fanout {
  private readonly listeners = new Set<EventListener>();
  constructor(private readonly notifyOthers?: (groupId: string, events: StoredEvent[]) => Promise<void>) {}

  onEvents(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async publish(groupId: string, events: StoredEvent[]): Promise<void> {
    for (const listener of this.listeners) listener(groupId, events);
    if (this.notifyOthers && events.length) await this.notifyOthers(groupId, events);
  }
}
