// Named statements: on a pool that allows them (the Node server's own, marked by its adapter), a
// statement built once (./statement.ts) is also parsed and planned once per connection, then only
// bound and run. Postgres otherwise plans the statement again on every run: on a create that was
// most of Postgres' own CPU, and the orbit's counter row stayed locked through it (BENCHMARKS.md,
// "Named statements").
//
// The name is a hash of the text, so one name means one statement in every process and version:
// behind a pooler that hands a session's statements to other backends, a name can never run
// another statement's text. A pooler that does not carry prepared statements (transaction mode
// without support for them) refuses a name its backend has not seen (26000) or one it already has
// (42P05). A column whose type a migration changed under a running server (a rolling deploy)
// refuses the cached plan (0A000) or the parameter types inferred when the name was prepared
// (42804, 42883: unnamed, they would be inferred anew). Nothing runs then. The first refusal turns
// names off for the whole pool: a statement on the pool itself is sent again unnamed, one inside
// a transaction fails that transaction (503, retry). Class 42 is never an answer to a statement
// that ran before, so nothing routine turns names off.

/** On a pg pool and on each of its connections: whether their statements may be named. */
const NAMED_STATEMENTS = Symbol.for('orbital.namedStatements');

interface NamedStatements {
  on: boolean;
  /** Told once, when a refusal turns them off. */
  refused(err: unknown): void;
}

interface Marked {
  [NAMED_STATEMENTS]?: NamedStatements;
}

interface PgPool {
  on(event: 'connect', listener: (client: object) => void): unknown;
}

/** Marks a pool (and every connection it opens) as one whose statements may be named. */
export function allowNamedStatements(pool: PgPool, refused: (err: unknown) => void): void {
  const state: NamedStatements = { on: true, refused };
  (pool as Marked)[NAMED_STATEMENTS] = state;
  pool.on('connect', (client) => ((client as Marked)[NAMED_STATEMENTS] = state));
}

/** A transaction's statement refused for its name: the transaction failed, and a retry runs unnamed. */
export class NamedStatementRefused extends Error {
  constructor(cause: unknown) {
    super('The database refused a named statement; statements are sent unnamed from now on.', { cause });
  }
}

/** 26000 no such name, 0A000 a cached plan whose result changed, class 42 (42P05 the name exists, 42804 and 42883 stale parameter types…). */
const refused = (code: unknown) => typeof code === 'string' && (code === '26000' || code === '0A000' || code.startsWith('42'));

interface PgClient extends Marked {
  query(config: object, values: unknown[]): Promise<{ rows: unknown[] }>;
  /** Only on a connection checked out of the pool: inside a transaction. */
  release?: unknown;
}

/** Runs `config` on a pg pool or connection, as `name` where its pool allows it. */
export async function queryNamedIfAllowed(client: PgClient, config: object, name: string, values: unknown[]): Promise<{ rows: unknown[] }> {
  const named = client[NAMED_STATEMENTS];
  if (named?.on) {
    try {
      return await client.query({ ...config, name }, values);
    } catch (err) {
      if (!refused((err as { code?: unknown }).code)) throw err;
      if (named.on) {
        named.on = false;
        named.refused(err);
      }
      if (typeof client.release === 'function') throw new NamedStatementRefused(err);
    }
  }
  // A copy per run: the pg inside Neon's driver (older than 8.12) writes the values and the
  // pool's callback onto the config it is given, which a shared one would carry to the next run.
  return await client.query({ ...config }, values);
}

/** A statement's name: "o" and 14 hex digits of a 53-bit hash of its text (cyrb53). */
export function statementName(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return `o${(4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0')}`;
}
