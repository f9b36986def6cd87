// Catch-up from the orbit event log over REST: the events after a seq, each as the caller may
// see it. A position older than the log keeps is 410 with the oldest kept seq, so the client
// knows to reload through the list endpoints instead of missing events silently.
import type { Executor } from '../deps';
import { AppError } from './errors';
import { oldestSeq, readEvents, viewEvent, type WireEvent } from './events';
import { requireMember } from './groups';

export interface EventPage {
  items: WireEvent[];
  next_after_seq: number;
  oldest_seq: number;
}

const gone = (oldest: number) =>
  new AppError('GONE', 'Events after this seq are no longer kept; reload through the list endpoints.', { oldest_seq: oldest });

export async function catchUp(db: Executor, input: { groupId: string; viewerId: string; afterSeq: number; limit: number }): Promise<EventPage> {
  await requireMember(db, input.groupId, input.viewerId);
  const { oldest } = await oldestSeq(db, input.groupId);
  if (input.afterSeq + 1 < oldest) throw gone(oldest);
  const events = await readEvents(db, input.groupId, input.afterSeq, input.limit);
  // Cleanup may have pruned the log between the two reads: a gap is answered like an old position.
  if (events[0] && events[0].seq > input.afterSeq + 1) throw gone(events[0].seq);
  const items = events.map((e) => viewEvent(e, input.viewerId));
  return { items, next_after_seq: items.length ? items[items.length - 1]!.seq : input.afterSeq, oldest_seq: oldest };
}
