// Statements whose SQL text is built once, then run with values on any executor (the pool or a
// transaction). drizzle renders a query's SQL each time it runs, walking every table, column and
// parameter of it; on a thread or reply create that was a fifth of the request's CPU (profiled:
// BENCHMARKS.md, "Statements built once"). A statement is written with the query builder or the
// sql tag as before, with sql.placeholder() where values go; the first run renders it, and every
// run hands text and values to the executor's own session, which encodes parameters and maps rows
// exactly as the query builder would. The SQL sent is the same as before, byte for byte.
import { Column, is, SQL, type Query } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Executor } from '../deps';

/** The rendering is the same for every driver: one dialect, no casing. */
const dialect = new PgDialect();

export interface Statement<Row> {
  /** The rows, mapped as the query builder maps them (or the driver's raw rows when no selection was given). */
  run(db: Executor, values: Record<string, unknown>): Promise<Row[]>;
}

/** How one selected field turns a driver value into the app's (what the query builder's row mapping uses). */
type Decoder = { mapFromDriverValue(value: unknown): unknown };

/** As drizzle's own row mapping picks it: the column, or the decoder of an sql`` field (set by mapWith). */
function decoderOf(field: unknown): Decoder {
  if (is(field, Column)) return field;
  const sql = is(field, SQL) ? field : (field as SQL.Aliased).sql;
  return (sql as unknown as { decoder: Decoder }).decoder;
}

/**
 * `build` makes the query (from any executor; it is only rendered, never run). `selection` is the
 * flat object passed to select() or returning(): each row becomes an object with its keys, each
 * value decoded by its field as the query builder does (without its per-value type checks);
 * without one, rows come back as the driver gives them (as db.execute does).
 */
export function statement<Row>(build: (db: Executor) => { getSQL(): SQL }, selection?: Record<string, unknown>): Statement<Row> {
  let query: Query | undefined;
  const keys = selection ? Object.keys(selection) : [];
  const decoders = selection ? Object.values(selection).map(decoderOf) : [];
  const toRows = (rows: unknown[][]) =>
    rows.map((values) => {
      const row: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const value = values[i];
        row[keys[i]!] = value === null ? null : decoders[i]!.mapFromDriverValue(value);
      }
      return row as Row;
    });
  return {
    async run(db, values) {
      query ??= dialect.sqlToQuery(build(db).getSQL());
      if (!selection) return ((await db._.session.prepareQuery(query, undefined, undefined, false).execute(values)) as { rows: Row[] }).rows;
      // With a result mapper the session asks the driver for arrays, in the selection's order.
      return (await db._.session.prepareQuery(query, undefined, undefined, true, toRows).execute(values)) as Row[];
    },
  };
}
