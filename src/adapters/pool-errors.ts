// A pg-style pool whose connections' errors never end the process. pg-pool listens for a
// connection's 'error' only while it is idle: a checked-out one that Postgres ends (a restart, a
// failover, pg_terminate_backend) emits it with nobody listening, and Node exits on an unhandled
// 'error'. Such an error can even come before the code that checked the connection out has run
// (Postgres' FATAL in the same read as the connection's ready message). The query in flight fails
// with it all the same, and the pool drops a connection that is no longer queryable when it is
// released, so the listener has nothing more to do.
interface ErrorSource {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export function keepPoolErrorsHandled(pool: { on(event: 'error', listener: (error: Error) => void): unknown; on(event: 'connect', listener: (client: ErrorSource) => void): unknown }): void {
  pool.on('error', ignore);
  pool.on('connect', (client) => client.on('error', ignore));
}

function ignore(): void {}
