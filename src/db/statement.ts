// Statements whose SQL text is built once, then run with values on any executor (the pool or a
// transaction). drizzle renders a query's SQL each time it runs, walking every table, column and
// parameter of it; on a thread or reply create that was a fifth of the request's CPU (profiled:
// BENCHMARKS.md, "Statements built once"). A statement is written with the query builder or the
// sql tag as before, with sql.placeholder() where values go; the first run renders it, and every
// run encodes parameters and maps rows exactly as the query builder would. The SQL sent is the
// same as before, byte for byte.
import { Column, entityKind, is, Param, Placeholder, SQL, type Query } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Executor } from '../deps';
import { queryNamedIfAllowed, statementName } from './named-statements';

/** The rendering is the same for every driver: one dialect, no casing. */
const dialect = new PgDialect();

export interface Statement<Row> {
  /** The rows, mapped as the query builder maps them (or the driver's raw rows when no selection was given). */
  run(db: Executor, values: Record<string, unknown>): Promise<Row[]>;
}

/**
 * Sessions whose client takes pg's query(config, values) (node-postgres, Hyperdrive, Neon's pool):
 * there a statement hands its query straight to the client with the configs drizzle made for it
 * once, skipping drizzle's per-run prepared-query object, tracing spans and placeholder checks
 * (measured: 8 µs of a statement's 130 µs of client CPU, 1–5 % of a create; BENCHMARKS.md).
 * Other sessions (PGlite) go through drizzle's prepared query.
 */
const PG_CLIENT_SESSIONS = new Set(['NodePgSession', 'NeonSession']);

interface PgConfigs {
  /** Rows as objects (no selection) and as arrays (a selection), with drizzle's type parsers. */
  objects: object;
  arrays: object;
}

type Session = Executor['_']['session'];
const sessionKind = (session: Session) => (session.constructor as unknown as Record<symbol, string>)[entityKind];

/** Each parameter's value for a run, as drizzle's fillPlaceholders gives it, with its type checks made once. */
function paramPlan(params: unknown[]): (values: Record<string, unknown>) => unknown[] {
  const valueOf = (values: Record<string, unknown>, name: string) => {
    if (!(name in values)) throw new Error(`No value for placeholder "${name}" was provided`);
    return values[name];
  };
  const plan = params.map((p): ((values: Record<string, unknown>) => unknown) => {
    if (is(p, Placeholder)) return (values) => valueOf(values, p.name);
    if (is(p, Param) && is(p.value, Placeholder)) {
      const { name } = p.value;
      const encoder = p.encoder as { mapToDriverValue(value: unknown): unknown };
      return (values) => encoder.mapToDriverValue(valueOf(values, name));
    }
    return () => p;
  });
  return (values) => plan.map((f) => f(values));
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
  let fill: ((values: Record<string, unknown>) => unknown[]) | undefined;
  let name: string | undefined;
  const configs = new Map<string, PgConfigs>(); // by session kind: each driver's own type parsers
  return {
    async run(db, values) {
      const session = db._.session;
      query ??= dialect.sqlToQuery(build(db).getSQL());
      const kind = sessionKind(session) ?? '';
      if (PG_CLIENT_SESSIONS.has(kind)) {
        fill ??= paramPlan(query.params);
        let config = configs.get(kind);
        if (!config) configs.set(kind, (config = pgConfigs(session, query)));
        const client = (session as unknown as { client: Parameters<typeof queryNamedIfAllowed>[0] }).client;
        name ??= statementName(query.sql);
        const result = await queryNamedIfAllowed(client, selection ? config.arrays : config.objects, name, fill(values));
        return selection ? toRows(result.rows as unknown[][]) : (result.rows as Row[]);
      }
      if (!selection) return ((await session.prepareQuery(query, undefined, undefined, false).execute(values)) as { rows: Row[] }).rows;
      // With a result mapper the session asks the driver for arrays, in the selection's order.
      return (await session.prepareQuery(query, undefined, undefined, true, toRows).execute(values)) as Row[];
    },
  };
}

/** The query configs (text, row mode, type parsers) drizzle's prepared query makes for this session's driver. */
function pgConfigs(session: Session, query: Query): PgConfigs {
  const prepared = session.prepareQuery(query, undefined, undefined, false) as unknown as { rawQueryConfig: object; queryConfig: object };
  return { objects: prepared.rawQueryConfig, arrays: prepared.queryConfig };
}
