// Statements whose SQL text is built once, then run with values on any executor (the pool or a
// transaction). drizzle renders a query's SQL each time it runs, walking every table, column and
// parameter of it; on a thread or reply create that was a fifth of the request's CPU (profiled:
// BENCHMARKS.md, "Statements built once"). A statement is written with the query builder or the
// sql tag as before, with sql.placeholder() where values go; the first run renders it, and every
// run hands text and values to the executor's own session, which encodes parameters and maps rows
// exactly as the query builder would. The SQL sent is the same as before, byte for byte.
import type { Query, SQL } from 'drizzle-orm';
import { PgDialect, type SelectedFieldsOrdered } from 'drizzle-orm/pg-core';
import type { Executor } from '../deps';

/** The rendering is the same for every driver: one dialect, no casing. */
const dialect = new PgDialect();

export interface Statement<Row> {
  /** The rows, mapped as the query builder maps them (or the driver's raw rows when no selection was given). */
  run(db: Executor, values: Record<string, unknown>): Promise<Row[]>;
}

/**
 * `build` makes the query (from any executor; it is only rendered, never run). `selection` is the
 * flat object passed to select() or returning(): its fields map the rows; without one, rows come
 * back as the driver gives them (as db.execute does).
 */
export function statement<Row>(build: (db: Executor) => { getSQL(): SQL }, selection?: Record<string, unknown>): Statement<Row> {
  let query: Query | undefined;
  const fields = selection && (Object.entries(selection).map(([key, field]) => ({ path: [key], field })) as SelectedFieldsOrdered);
  return {
    async run(db, values) {
      query ??= dialect.sqlToQuery(build(db).getSQL());
      const out = await db._.session.prepareQuery(query, fields, undefined, fields !== undefined).execute(values);
      return (fields ? out : (out as { rows: Row[] }).rows) as Row[];
    },
  };
}
