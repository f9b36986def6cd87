// `npm run dev:worker [-- <wrangler dev flags>]`: the Worker under `wrangler dev` against a local
// Postgres. Reads .dev.vars, creates and migrates the database if missing, starts the
// WebSocket-to-TCP proxy the Neon driver needs, runs `wrangler dev --test-scheduled` with the
// proxy's address, and stops the proxy when wrangler stops.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseEnv } from 'node:util';
import { prepareDatabase, isLoopback } from './dev/database';
import { startWsTcpProxy } from './dev/ws-tcp-proxy';

const VARS_FILE = process.env.DEV_VARS_FILE ?? '.dev.vars';
/** Wrangler loads these from .dev.vars itself (wrangler.toml `[secrets] required`). */
const SECRETS = new Set(['DATABASE_URL', 'JWT_SECRET']);

function fail(message: string): never {
  console.error(`dev:worker: ${message}`);
  process.exit(1);
}

if (!existsSync(VARS_FILE)) fail(`${VARS_FILE} is missing. Create it with DATABASE_URL=postgres://… and JWT_SECRET=<32+ bytes> (see README, "Workers locally").`);
const vars = parseEnv(readFileSync(VARS_FILE, 'utf8')) as Record<string, string>;
for (const name of SECRETS) if (!vars[name]) fail(`${VARS_FILE} must set ${name}.`);

let databaseUrl: URL;
try {
  databaseUrl = new URL(vars.DATABASE_URL!);
} catch {
  fail('DATABASE_URL is not a URL (postgres://user@host:port/database).');
}

const args = ['dev', '--test-scheduled'];
// Settings other than the secrets (RATE_LIMIT, REGISTRATION, …) go to wrangler as variables:
// with `[secrets]` declared, wrangler reads only the secrets from .dev.vars. Another vars file
// (DEV_VARS_FILE, e.g. the end-to-end test's) is not one wrangler reads: its secrets go along too.
const passAll = VARS_FILE !== '.dev.vars';
for (const [key, value] of Object.entries(vars)) if (passAll || !SECRETS.has(key)) args.push('--var', `${key}:${value}`);

let stopProxy = async () => {};
if (isLoopback(databaseUrl.hostname)) {
  const created = await prepareDatabase(databaseUrl).catch((err: Error) => fail(`cannot prepare ${databaseUrl.pathname.slice(1)}: ${err.message}`));
  console.log(`dev:worker: database ${created.name} ${created.created ? 'created and ' : ''}migrated (${created.applied} migration(s) applied)`);
  const dbPort = Number(databaseUrl.port || 5432);
  const proxy = await startWsTcpProxy((host, port) => port === dbPort && isLoopback(host));
  args.push('--var', `DB_WS_PROXY:${proxy.address}`);
  stopProxy = proxy.close;
  console.log(`dev:worker: WebSocket-to-TCP proxy on ${proxy.address}`);
}

// Wrangler's launcher refuses Node 20; its CLI file runs on it (README, "Node versions").
const cli = createRequire(import.meta.url).resolve('wrangler');
const wrangler = spawn(process.execPath, [cli, ...args, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => wrangler.kill(signal));
}
wrangler.on('exit', async (code, signal) => {
  await stopProxy();
  console.log('dev:worker: stopped');
  process.exit(code ?? (signal ? 0 : 1));
});
