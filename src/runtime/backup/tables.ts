// What an archive holds and in which order: every table of the schema but the ones that only mean
// something to running processes, parents before children (foreign keys), then the blobs.
import { z } from 'zod';
import type { RawQuery } from './session';

export const FORMAT = 'orbital-backup';
export const VERSION = 1;

/** Per-process or per-minute state: a restored server starts without it. */
export const SKIPPED_TABLES = new Set(['live_socket_leases', 'live_tickets', 'rate_limits']);

const count = z.number().int().nonnegative();

/** What an archive says of itself (its first entry); an archive whose manifest is not this is refused. */
export const manifestSchema = z.object({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  created_at: z.string(),
  /** Hashes of the migrations the database had, oldest first. */
  migrations: z.array(z.string()),
  /** Tables in restore order, with their row counts. */
  tables: z.array(z.object({ name: z.string(), rows: count })),
  /** `included`: the disk store's files of every upload and file the rows name. */
  blobs: z.object({ store: z.enum(['disk', 's3', 'r2']), included: z.boolean(), files: count, bytes: count, missing: count }),
  note: z.string().optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** Tables of the public schema, each after the tables its foreign keys point to. */
export async function tablesInOrder(raw: RawQuery): Promise<string[]> {
  const tables = (await raw(`select c.relname as name from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') order by 1`)).map((r) => String(r.name));
  const edges = await raw(
    `select cl.relname as child, pr.relname as parent from pg_constraint k
     join pg_class cl on cl.oid = k.conrelid join pg_class pr on pr.oid = k.confrelid
     where k.contype = 'f' and cl.relnamespace = 'public'::regnamespace`,
  );
  const parents = new Map(tables.map((t) => [t, new Set<string>()]));
  for (const e of edges) if (e.child !== e.parent) parents.get(String(e.child))?.add(String(e.parent));
  const order: string[] = [];
  const placed = new Set<string>();
  while (order.length < tables.length) {
    const next = tables.find((t) => !placed.has(t) && [...parents.get(t)!].every((p) => placed.has(p)));
    if (!next) throw new Error('foreign keys form a cycle');
    order.push(next);
    placed.add(next);
  }
  return order.filter((t) => !SKIPPED_TABLES.has(t));
}

/** Quotes an identifier read from the catalog. */
export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
