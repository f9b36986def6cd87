// PgBouncer in transaction mode in front of the test Postgres, as docs/CAPACITY.md advises past
// Postgres' connection limit (Debian's package: `apt-get install pgbouncer`). Null when it is not
// installed. It refuses to run as root, so as root it runs as the `postgres` user (setpriv).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './s3-server';

export interface PgBouncer {
  /** `postgresUrl` with its host and port replaced by PgBouncer's. */
  url: string;
  log(): string;
  stop(): Promise<void>;
}

function installed(): string | null {
  for (const candidate of ['pgbouncer', '/usr/sbin/pgbouncer']) {
    if (spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return null;
}

export async function startPgBouncer(postgresUrl: string): Promise<PgBouncer | null> {
  const bin = installed();
  if (!bin) return null;
  const upstream = new URL(postgresUrl);
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  // As another user, somewhere that user can reach (the suite's own temp folder is private).
  const dir = mkdtempSync(join(asRoot ? '/tmp' : tmpdir(), 'orbital-pgbouncer-'));
  chmodSync(dir, 0o777);
  const ini = join(dir, 'pgbouncer.ini');
  const logFile = join(dir, 'pgbouncer.log');
  writeFileSync(
    ini,
    [
      '[databases]',
      // auth_type = any logs every client in as this one user (the test server's trust auth).
      `* = host=${upstream.hostname} port=${upstream.port || 5432} user=${decodeURIComponent(upstream.username) || 'postgres'}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'auth_type = any',
      'pool_mode = transaction',
      'default_pool_size = 4',
      'max_client_conn = 500',
      'server_reset_query =',
      // The server asks for these at connect; PgBouncer refuses what it does not know (docs/CAPACITY.md).
      'ignore_startup_parameters = extra_float_digits,options,statement_timeout,idle_in_transaction_session_timeout',
      `logfile = ${logFile}`,
      'unix_socket_dir =',
      '',
    ].join('\n'),
  );
  chmodSync(ini, 0o644);
  const proc = asRoot
    ? spawn('setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', bin, ini], { stdio: 'ignore' })
    : spawn(bin, [ini], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`pgbouncer did not start:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = new URL(postgresUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    log,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
