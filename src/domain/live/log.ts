// The reads a live room makes: ranges of the orbit's log, and thread membership for typing.
import { and, eq } from 'drizzle-orm';
import { orbitEvents, threads } from '../../db/schema';
import type { Executor } from '../../deps';
import { readEvents, type StoredEvent } from '../events';

const PAGE = 500;

/** Events with after < seq ≤ upTo, in order, read in pages. `keepGoing` may stop early (e.g. a byte budget). */
export async function readRange(
  db: Executor,
  groupId: string,
  after: number,
  upTo: number,
  keepGoing: (page: StoredEvent[]) => boolean = () => true,
): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let from = after;
  while (from < upTo) {
    const page = await readEvents(db, groupId, from, PAGE, upTo);
    out.push(...page);
    if (!keepGoing(page) || page.length < PAGE) break;
    from = page[page.length - 1]!.seq;
  }
  return out;
}

export async function threadInOrbit(db: Executor, groupId: string, threadId: string): Promise<boolean> {
  const rows = await db
    .select({ id: threads.id })
    .from(threads)
    .where(and(eq(threads.id, threadId), eq(threads.groupId, groupId)))
    .limit(1);
  return rows.length === 1;
}
