// Upload throughput and server memory: a file in 5 MiB chunks, 4 in flight, against the Node
// server in a child process (its RSS read from /proc), beside a bare node:http server that
// streams the same PUTs to disk, in the same run. Goals: ≥ 0.85× the bare throughput; server
// RSS growth < 64 MB and flat from 200 MiB to 1 GiB.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { round, type Bench } from './harness';
import { cpuMs, startAsNpmStart } from './npm-start';
import { freshPostgres } from './postgres';

const MiB = 1024 * 1024;
const CHUNK = 5 * MiB;
const PARALLEL = 4;
/** Sent to each server before it is measured: a server that has been running (its code compiled), bare and orbital alike. */
const WARM_BYTES = 100 * MiB;
/** Where both servers write (BENCH_UPLOAD_DIR=/dev/shm takes the disk's writeback out of both sides). */
const UPLOAD_ROOT = process.env.BENCH_UPLOAD_DIR ?? tmpdir();

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const rssMb = (pid: number) => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
};

/** Samples a process's RSS every 20 ms until stopped; returns the peak. */
function sampleRss(pid: number) {
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      // process gone
    }
  }, 20);
  return () => {
    clearInterval(timer);
    return Math.max(peak, rssMb(pid));
  };
}

async function waitUntilUp(url: string, child: ChildProcess, log: () => string) {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`server exited: ${log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not start: ${log()}`);
}

function start(command: string[], env: Record<string, string>) {
  // The previous run's dirty pages must not be flushed on this run's time.
  spawnSync('sync');
  const child = spawn(process.execPath, command, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + d).slice(-4000)));
  child.stderr!.on('data', (d) => (output = (output + d).slice(-4000)));
  return { child, log: () => output };
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Sends `size` bytes as 5 MiB PUTs, PARALLEL at a time (with X-Chunk-SHA256 if asked); returns seconds taken. */
async function sendChunks(size: number, url: (index: number) => string, headers: Record<string, string>, withDigest = false) {
  const count = Math.ceil(size / CHUNK);
  const bytes = randomBytes(CHUNK);
  const digest = (length: number) => createHash('sha256').update(bytes.subarray(0, length)).digest('hex');
  const full = withDigest ? digest(CHUNK) : '';
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let i = next++; i < count; i = next++) {
        const length = i < count - 1 ? CHUNK : size - CHUNK * (count - 1);
        const sum: Record<string, string> = withDigest ? { 'x-chunk-sha256': length === CHUNK ? full : digest(length) } : {};
        const res = await fetch(url(i), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...headers, ...sum }, body: bytes.subarray(0, length) });
        if (!res.ok) throw new Error(`chunk ${i}: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return (performance.now() - began) / 1000;
}

async function bareRun(size: number) {
  const dir = mkdtempSync(join(UPLOAD_ROOT, 'orbital-bench-bare-'));
  const port = await freePort();
  const { child, log } = start(['bench/bare-put-server.mjs', String(port), dir], {});
  try {
    await waitUntilUp(`http://127.0.0.1:${port}/`, child, log);
    await sendChunks(WARM_BYTES, (i) => `http://127.0.0.1:${port}/warm/${i}`, {});
    const before = rssMb(child.pid!);
    const cpuBefore = cpuMs(child.pid!);
    const peak = sampleRss(child.pid!);
    const seconds = await sendChunks(size, (i) => `http://127.0.0.1:${port}/chunk/${i}`, {});
    return { seconds, before, peak: peak(), cpu: cpuMs(child.pid!) - cpuBefore };
  } finally {
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One upload against the server started as `npm start` starts it (default log level, log to a file). */
async function orbitalRun(size: number, databaseUrl: string | undefined, withDigest = false, cwd?: string) {
  const dataDir = mkdtempSync(join(UPLOAD_ROOT, 'orbital-bench-server-'));
  spawnSync('sync'); // the previous run's dirty pages must not be flushed on this run's time
  const server = await startAsNpmStart({
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl ?? '',
    RATE_LIMIT: 'off',
    MAX_MEDIA_BYTES: String(2 * 1024 * MiB),
    JWT_SECRET: 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
  }, { cwd });
  const base = server.url;
  const child = server.child;
  try {
    const json = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    const user = await json('/api/auth/register', {
      username: `bench_${randomBytes(4).toString('hex')}`,
      password: 'a long enough benchmark password',
      public_key: { kty: 'OKP', crv: 'X25519', x: randomBytes(32).toString('base64url') },
    });
    const auth = { authorization: `Bearer ${user.access_token}` };
    const orbit = await json('/api/groups', { encrypted_name: randomBytes(24).toString('base64'), encrypted_group_key: randomBytes(256).toString('base64') }, auth);
    // A server that has been running: its chunk path compiled, as the bare server's is (and first-request
    // compilation is not counted as upload memory).
    const warm = await json('/api/media/upload', { group_id: orbit.group.id, key_epoch: 1, size_bytes: WARM_BYTES, encrypted_metadata: 'AAAA', encryption_iv: 'iv' }, auth);
    await sendChunks(WARM_BYTES, (i) => `${base}/api/media/upload/${warm.media_id}/chunks/${i}`, auth);
    const before = rssMb(child.pid!);
    const cpuBefore = cpuMs(child.pid!);
    const peak = sampleRss(child.pid!);
    const began = performance.now();
    const upload = await json('/api/media/upload', { group_id: orbit.group.id, key_epoch: 1, size_bytes: size, encrypted_metadata: 'AAAA', encryption_iv: 'iv' }, auth);
    await sendChunks(size, (i) => `${base}/api/media/upload/${upload.media_id}/chunks/${i}`, auth, withDigest);
    await json('/api/media/upload/complete', { media_id: upload.media_id }, auth);
    const seconds = (performance.now() - began) / 1000;
    return { seconds, before, peak: peak(), cpu: cpuMs(child.pid!) - cpuBefore };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const bench: Bench = {
  name: 'upload',
  async run() {
    const sizes = (process.env.BENCH_UPLOAD_MIB ?? '200,1024').split(',').map((s) => Number(s) * MiB);
    const postgres = await freshPostgres();
    const db = postgres ? 'Postgres' : 'PGlite';
    const rows: Array<Record<string, string | number>> = [];
    const pairs: string[] = []; // each orbital run against the bare run just before it
    type Run = { seconds: number; before: number; peak: number; cpu: number };
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    // The machine is shared: each configuration runs several times, interleaved, and the median
    // time counts; RSS is the worst peak seen.
    const summary = (runs: Run[]): Run => ({
      seconds: median(runs.map((r) => r.seconds)),
      before: Math.min(...runs.map((r) => r.before)),
      peak: Math.max(...runs.map((r) => r.peak)),
      cpu: median(runs.map((r) => r.cpu)),
    });
    // Each run is timed right after its bare run: their ratio cancels the machine's drift between
    // runs, and the median of those ratios is the figure (a single run is set against the bare median).
    const paired = (runs: Run[], bare: Run[]) => runs.map((r, i) => bare[i]!.seconds / r.seconds);
    const versusBare = (runs: Run[], bare: Run[]) =>
      runs.length === bare.length ? median(paired(runs, bare)) : summary(bare).seconds / summary(runs).seconds;
    const row = (server: string, size: number, runs: Run[], bare: Run[]) => {
      const r = summary(runs);
      rows.push({
        server,
        file: `${size / MiB} MiB`,
        runs: runs.length,
        'MiB/s (median)': round(size / MiB / r.seconds),
        'vs bare (median of paired runs)': versusBare(runs, bare).toFixed(2),
        'server CPU ms per MiB (median)': round(r.cpu / (size / MiB), 1),
        'RSS before (MB)': round(r.before),
        'peak RSS (MB)': round(r.peak),
        'growth (MB)': round(r.peak - r.before),
      });
    };
    try {
      for (const [i, size] of sizes.entries()) {
        // A 200 MiB upload takes under a second here, so one run swings with whatever else the machine does: seven of them.
        const reps = Number(process.env.BENCH_UPLOAD_REPS ?? (size <= 256 * MiB ? 7 : 3));
        const bare: Run[] = [];
        const orbital: Run[] = [];
        const before: Run[] = [];
        for (let rep = 0; rep < reps; rep++) {
          bare.push(await bareRun(size));
          orbital.push(await orbitalRun(size, postgres?.url));
          // Another checkout (an older commit), interleaved: before/after figures for a change.
          if (process.env.BENCH_BEFORE_DIR) before.push(await orbitalRun(size, postgres?.url, false, process.env.BENCH_BEFORE_DIR));
        }
        pairs.push(`${size / MiB} MiB: ${paired(orbital, bare).map((x) => x.toFixed(2)).join(', ')}`);
        row('bare node:http PUT → disk', size, bare, bare);
        row(`orbital, \`npm start\` (Node, ${db})`, size, orbital, bare);
        if (before.length) row(`orbital, \`npm start\`, before (${process.env.BENCH_BEFORE_LABEL ?? process.env.BENCH_BEFORE_DIR})`, size, before, bare);
        if (i === 0) {
          row(`orbital, \`npm start\`, client sends X-Chunk-SHA256 (Node, ${db})`, size, [await orbitalRun(size, postgres?.url, true)], bare);
        }
      }
    } finally {
      await postgres?.drop();
    }
    return {
      title: 'Upload: 5 MiB chunks, 4 in flight (Node server)',
      rows,
      notes:
        'Goals: throughput ≥ 0.85× the bare server; server RSS growth while uploading < 64 MB and flat as the file grows. Client and servers share the machine; ' +
        'the orbital time includes start and complete (quota reservation, per chunk an access query and one recording statement; ' +
        'SHA-256 verification only where the client sends X-Chunk-SHA256). ' +
        `Each server (bare and orbital alike) first takes ${WARM_BYTES / MiB} MiB of chunks, as a server that has been running has: a fresh process's first large upload ran 20 % slower (JIT warm-up). ` +
        'RSS is sampled every 20 ms from /proc during the upload; growth is the peak minus the RSS after the warm-up. ' +
        'The server runs as `npm start` runs it (`node dist/server.js`, no V8 flags, default log level, output to a file). ' +
        `Orbital vs bare, run by run: ${pairs.join('; ')}. ` +
        `Both servers write under ${UPLOAD_ROOT}${UPLOAD_ROOT.startsWith('/dev/shm') ? ' (memory: no disk writeback on either side)' : ''}.`,
    };
  },
};

export default bench;
