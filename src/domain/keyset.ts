// Keyset paging by (timestamp, id). Postgres keeps microseconds and a JS Date only milliseconds,
// so the cursor carries the timestamp as Postgres prints it: a row is never repeated or skipped
// because its time was rounded on the way through the client.
import { sql, type AnyColumn, type SQL } from 'drizzle-orm';

/** The column's exact time as RFC 3339 UTC text with microseconds (what a cursor should hold). */
export const exactTime = (column: AnyColumn): SQL<string> =>
  sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Rows strictly after the cursor's (time, id) in (time, id) order; no condition without a cursor. */
export function afterTimeId(time: AnyColumn, id: AnyColumn, cursor: readonly [string, string] | undefined): SQL | undefined {
  return cursor ? sql`(${time}, ${id}) > (${cursor[0]}::timestamptz, ${cursor[1]}::uuid)` : undefined;
}
