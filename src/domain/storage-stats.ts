// What the server holds, in totals only: for the metrics gauges and `npm run admin -- storage`.
import { count, eq, sql } from 'drizzle-orm';
import { groupQuotas, media } from '../db/schema';
import type { Executor } from '../deps';

export interface StorageTotals {
  uploads_in_progress: number;
  bytes_stored: number;
  files_stored: number;
  bytes_reserved: number;
}

export async function storageTotals(db: Executor): Promise<StorageTotals> {
  const [[uploads], [quotas]] = await Promise.all([
    db.select({ n: count() }).from(media).where(eq(media.status, 'uploading')),
    db
      .select({
        bytes: sql<string>`coalesce(sum(${groupQuotas.bytesUsed}), 0)`,
        files: sql<string>`coalesce(sum(${groupQuotas.filesUsed}), 0)`,
        reserved: sql<string>`coalesce(sum(${groupQuotas.bytesReserved}), 0)`,
      })
      .from(groupQuotas),
  ]);
  return {
    uploads_in_progress: Number(uploads?.n ?? 0),
    bytes_stored: Number(quotas?.bytes ?? 0),
    files_stored: Number(quotas?.files ?? 0),
    bytes_reserved: Number(quotas?.reserved ?? 0),
  };
}
