// Transactions on a pg-style pool with begin, commit and rollback sent as plain text. drizzle's own
// transaction sends them through its query builder: a render, a prepared-query object and tracing
// spans for each, on every write (measured: BENCHMARKS.md, "Transactions: drizzle's begin and
// commit"). The statements sent are the same; a transaction with options (isolation level…) still
// goes through drizzle, which renders them.
import type { Db } from '../deps';

interface PoolClient {
  query(text: string): Promise<unknown>;
  /** With an error: the connection is closed instead of going back to the pool. */
  release(error?: Error): void;
}

interface Session {
  dialect: unknown;
  schema: unknown;
  options: unknown;
  transaction(work: (tx: unknown) => Promise<unknown>, config?: unknown): Promise<unknown>;
}

/** The driver's session and transaction classes (node-postgres', or Neon's), built as drizzle builds them. */
export interface DriverClasses {
  Session: new (client: PoolClient, dialect: unknown, schema: unknown, options: unknown) => unknown;
  Transaction: new (dialect: unknown, session: unknown, schema: unknown) => unknown;
}

export function usePlainTransactions(db: Db, pool: { connect(): Promise<PoolClient> }, driver: DriverClasses): void {
  const session = db._.session as unknown as Session;
  const rendered = session.transaction.bind(session);
  session.transaction = async (work, config) => {
    if (config && Object.keys(config).length) return rendered(work, config);
    const client = await pool.connect();
    const tx = new driver.Transaction(session.dialect, new driver.Session(client, session.dialect, session.schema, session.options), session.schema);
    try {
      // begin inside the try: drizzle's leaves the client checked out when begin itself fails.
      await client.query('begin');
      const result = await work(tx);
      await client.query('commit');
      client.release();
      return result;
    } catch (error) {
      // The work's error is the one to report; a connection that cannot even roll back is dropped.
      const broken = await client.query('rollback').then(
        () => undefined,
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      );
      client.release(broken);
      throw error;
    }
  };
}
