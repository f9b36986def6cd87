// A real S3-compatible server for the tests: Ceph's RADOS Gateway (Debian's radosgw) on a
// throw-away one-monitor, one-OSD cluster that keeps its objects in memory (memstore), all on
// loopback ports the OS picked, in a fresh folder. Or the server TEST_S3_ENDPOINT names (AWS, R2's
// S3 API, MinIO …) with TEST_S3_BUCKET, TEST_S3_REGION, TEST_S3_ACCESS_KEY_ID,
// TEST_S3_SECRET_ACCESS_KEY (the bucket must exist).
// When neither can be had, callers skip with the reason; ORBITAL_REQUIRE_S3=1 (CI) makes it a failure.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AwsClient } from 'aws4fetch';
import type { S3Options } from '../../src/adapters/blob-s3';

const run = promisify(execFile);

export interface TestS3 {
  options: S3Options;
  /** The server's settings as the environment variables `npm start` reads. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export type S3Availability = { server: TestS3; reason?: undefined } | { server: null; reason: string };

export function s3Env(o: S3Options): Record<string, string> {
  return {
    BLOB_STORE: 's3',
    S3_ENDPOINT: o.endpoint,
    S3_BUCKET: o.bucket,
    S3_REGION: o.region,
    S3_ACCESS_KEY_ID: o.accessKeyId,
    S3_SECRET_ACCESS_KEY: o.secretAccessKey,
    S3_FORCE_PATH_STYLE: o.forcePathStyle ? 'on' : 'off',
  };
}

const CEPH_TOOLS = ['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/radosgw', '/usr/bin/radosgw-admin', '/usr/bin/monmaptool', '/usr/bin/ceph'];

export async function startTestS3(): Promise<S3Availability> {
  const external = process.env.TEST_S3_ENDPOINT;
  if (external) {
    const options: S3Options = {
      endpoint: external,
      bucket: process.env.TEST_S3_BUCKET ?? 'orbital-test',
      region: process.env.TEST_S3_REGION ?? 'us-east-1',
      accessKeyId: process.env.TEST_S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: process.env.TEST_S3_SECRET_ACCESS_KEY ?? '',
      forcePathStyle: process.env.TEST_S3_FORCE_PATH_STYLE !== 'off',
    };
    return { server: { options, env: s3Env(options), close: async () => {} } };
  }
  const missing = CEPH_TOOLS.filter((tool) => !existsSync(tool));
  if (missing.length) return unavailable(`Ceph's radosgw is not installed (apt-get install radosgw ceph-mon ceph-osd; missing ${missing.join(', ')})`);
  // Two throw-away clusters at once on one machine do not come up (the second's gateway never
  // answers): test files that need one take turns.
  const release = await takeTurn();
  // A new cluster sometimes never serves (twice in CI while both test projects ran beside it, on
  // fresh ports each time): waiting longer did not help, a new cluster does.
  const failures: string[] = [];
  for (let attempt = 1; attempt <= GATEWAY_ATTEMPTS; attempt++) {
    try {
      const server = await startRadosGateway();
      return { server: { ...server, close: () => server.close().finally(release) } };
    } catch (err) {
      failures.push(`attempt ${attempt}: ${err instanceof Error ? err.message : String(err)}`);
      console.warn(`radosgw: a new cluster did not serve (${failures.at(-1)}); starting another`);
    }
  }
  release();
  return unavailable(`radosgw did not start: ${failures.join('; ')}`);
}

const GATEWAY_ATTEMPTS = 3;

const TURN = join(tmpdir(), 'orbital-radosgw.turn');

/** Waits until no other live process holds the radosgw turn, takes it, and answers its release. */
async function takeTurn(): Promise<() => void> {
  for (;;) {
    try {
      writeFileSync(TURN, String(process.pid), { flag: 'wx' });
      return () => rmSync(TURN, { force: true });
    } catch {
      const holder = Number(readFileSync(TURN, 'utf8') || 0);
      if (!holder || !alive(holder)) rmSync(TURN, { force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function unavailable(reason: string): S3Availability {
  if (process.env.ORBITAL_REQUIRE_S3 === '1') throw new Error(`S3 server required (ORBITAL_REQUIRE_S3=1) but unavailable: ${reason}`);
  return { server: null, reason };
}

/** A port the OS has just handed out (Ceph takes addresses from its configuration, not port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Tries `work` until it succeeds, for up to two minutes (alone, a whole cluster starts in under one). */
async function retrying<T>(what: string, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      return await work();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what} kept failing: ${err instanceof Error ? err.message : String(err)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function startRadosGateway(): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-ceph-'));
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    for (const sub of ['mon', 'osd', 'run', 'log', 'rgw']) mkdirSync(join(dir, sub));
    writeFileSync(
      conf,
      `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = ${dir}/run
log file = ${dir}/log/$name.log
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
keyring = ${dir}/keyring
rgw data = ${dir}/rgw
[mon.a]
mon data = ${dir}/mon
[osd.0]
osd data = ${dir}/osd
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
`,
    );
    const ceph = (cmd: string, args: string[]) => run(cmd, ['-c', conf, ...args], { timeout: 60_000 });
    const daemon = (cmd: string, args: string[]) => {
      const child = spawn(cmd, ['-c', conf, '-f', ...args], { stdio: 'ignore' });
      children.push(child);
    };
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
    await ceph('ceph-mon', ['-i', 'a', '--mkfs', '--monmap', join(dir, 'monmap')]);
    daemon('ceph-mon', ['-i', 'a']);
    await ceph('ceph', ['osd', 'create']);
    await ceph('ceph-osd', ['-i', '0', '--mkfs']);
    daemon('ceph-osd', ['-i', '0']);
    await ceph('ceph', ['osd', 'crush', 'add', 'osd.0', '1', 'root=default', 'host=localhost']);
    daemon('radosgw', ['-n', 'client.rgw']);
    const accessKeyId = 'orbital-test';
    const secretAccessKey = randomUUID();
    // Waits for the OSD to be up and the gateway's pools to exist; slow on a loaded machine.
    await retrying('radosgw-admin user create', () =>
      run('radosgw-admin', ['-c', conf, 'user', 'create', '--uid=orbital', '--display-name=orbital', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`], { timeout: 30_000 }),
    );
    const options: S3Options = {
      endpoint: `http://127.0.0.1:${rgwPort}`,
      bucket: 'orbital-test',
      region: 'us-east-1',
      accessKeyId,
      secretAccessKey,
      forcePathStyle: true,
    };
    // The gateway creates its pools first; until then it refuses connections or answers 5xx.
    const client = new AwsClient({ accessKeyId, secretAccessKey, service: 's3', region: options.region, retries: 0 });
    await retrying('bucket creation', async () => {
      const res = await client.fetch(`${options.endpoint}/${options.bucket}`, { method: 'PUT' });
      if (res.status !== 200) throw new Error(`answered ${res.status}: ${await res.text()}`);
    });
    return { options, env: s3Env(options), close: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
