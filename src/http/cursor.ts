// Opaque keyset cursors: base64url JSON of the last item's sort key. A cursor that does not
// decode to the expected shape is 400, never a 500 and never a silent restart.
import { z } from 'zod';
import { AppError } from '../domain/errors';

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T extends z.ZodType>(cursor: string | undefined, shape: T): z.infer<T> | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parsed = shape.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  throw new AppError('VALIDATION_ERROR', 'The cursor is not valid; start again without one.', { field: 'cursor' });
}

/** Cursor shapes used by the lists. */
export const seqCursor = z.tuple([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);
// Year 0000 passes the ISO check but not Postgres' timestamptz input (it would be a 500).
export const timeIdCursor = z.tuple([z.iso.datetime().refine((v) => !v.startsWith('0000')), z.uuid()]);

/** Takes limit + 1 rows; returns the page and the cursor of its last item when more exist. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => unknown[]): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > limit && last ? encodeCursor(keyOf(last)) : null };
}
