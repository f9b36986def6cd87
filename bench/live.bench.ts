// Live sockets on the Node adapter: one event to 1,000 sockets (beside a bare `ws` broadcast loop
// with the same client harness), 10,000 idle sockets on one process, and a replay of 1,000 missed
// events. Server and clients run in separate processes (bench/live-server.ts, bench/live-clients.ts).
// LIVE_BENCH_IDLE=2000 shortens the idle part while developing.
import { child, type Child } from './child';
import { percentile, round, type Bench } from './harness';

const ROUNDS = 30;
const WARMUP = 5;
const FANOUT = 1000;
const IDLE = Number(process.env.LIVE_BENCH_IDLE ?? 10_000);
const PER_USER = 5;

const headersFor = (tokens: string[], n: number) => Array.from({ length: n }, (_, i) => ({ authorization: `Bearer ${tokens[Math.floor(i / PER_USER)]}` }));
const liveUrl = (base: string, groupId: string, query = '') => `${base.replace('http', 'ws')}/api/groups/${groupId}/live${query}`;

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50), 2), p99: round(percentile(sorted, 99), 2), max: round(sorted[sorted.length - 1]!, 2) };
}

async function fanout(server: Child) {
  const { groupId, tokens } = await server.ask<{ groupId: string; tokens: string[] }>({ cmd: 'seed', members: FANOUT / PER_USER - 1 });
  const clients = await child('./live-clients.ts');
  const hub = await clients.ask({ cmd: 'open', url: liveUrl(server.started.url, groupId), headers: headersFor(tokens, FANOUT), waitFor: 'ready', concurrency: 20 });
  const bare = await clients.ask({ cmd: 'open', url: server.started.bareUrl, headers: Array.from({ length: FANOUT }, () => ({})), waitFor: 'open', concurrency: 50 });
  if (hub.errors || bare.errors || bare.opened !== 2 * FANOUT) throw new Error(`sockets failed to open: ${JSON.stringify({ hub, bare })}`);

  const total = WARMUP + ROUNDS;
  const kinds = {
    bare: { samples: [] as number[], send: (r: number) => server.ask({ cmd: 'bare-send', round: r }) },
    hub: { samples: [] as number[], send: (r: number) => server.ask({ cmd: 'publish', groupId, round: r, fromWrite: false }) },
    write: { samples: [] as number[], send: (r: number) => server.ask({ cmd: 'publish', groupId, round: r, fromWrite: true }) },
  };
  const hubRounds = Array.from({ length: total }, (_, i) => 1000 + i);
  await server.ask({ cmd: 'prepare', groupId, rounds: hubRounds });
  let lost = 0;
  const measure = async (kind: keyof typeof kinds, roundId: number, counted: boolean) => {
    const { t0 } = await kinds[kind].send(roundId);
    const { arrivals } = await clients.ask<{ arrivals: number[] }>({ cmd: 'arrivals', round: roundId, expect: FANOUT, timeoutMs: 10_000 });
    lost += FANOUT - arrivals.length;
    if (counted) kinds[kind].samples.push(...arrivals.map((a) => a - t0));
    await new Promise((res) => setTimeout(res, 20));
  };
  // Bare and hub interleaved, so drift on a shared machine hits both alike; then write() rounds.
  for (let r = 0; r < total; r++) {
    await measure('bare', 5000 + r, r >= WARMUP);
    await measure('hub', hubRounds[r]!, r >= WARMUP);
  }
  for (let r = 0; r < total; r++) await measure('write', 9000 + r, r >= WARMUP);
  const closed = await clients.ask({ cmd: 'close' });
  return { kinds, lost, closed };
}

async function idle() {
  const server = await child('./live-server.ts');
  const { groupId, tokens } = await server.ask<{ groupId: string; tokens: string[] }>({ cmd: 'seed', members: IDLE / PER_USER - 1 });
  const before = await server.ask({ cmd: 'stats' });
  const clients = await child('./live-clients.ts');
  const started = performance.now();
  const opened = await clients.ask({ cmd: 'open', url: liveUrl(server.started.url, groupId), headers: headersFor(tokens, IDLE), waitFor: 'ready', concurrency: 100 });
  const openSeconds = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 5000));
  const after = await server.ask({ cmd: 'stats' });
  const closed = await clients.ask({ cmd: 'close' });
  await server.ask({ cmd: 'stop' });
  return { opened, before, after, closed, openSeconds };
}

async function replay(server: Child) {
  const { groupId, tokens } = await server.ask<{ groupId: string; tokens: string[] }>({ cmd: 'seed', members: 0 });
  await server.ask({ cmd: 'events', groupId, count: 1000 });
  const clients = await child('./live-clients.ts');
  const { runs } = await clients.ask<{ runs: Array<{ ms: number; events: number }> }>({
    cmd: 'replay',
    url: liveUrl(server.started.url, groupId, '?after_seq=0'),
    headers: { authorization: `Bearer ${tokens[0]}` },
    runs: 12,
  });
  await clients.ask({ cmd: 'close' });
  if (runs.some((r) => r.events !== 1000)) throw new Error(`replay sent ${runs.map((r) => r.events)} events`);
  return runs.slice(2).map((r) => r.ms); // the first two warm up
}

const MiB = 1024 * 1024;

export default {
  name: 'live',
  async run() {
    const server = await child('./live-server.ts');
    const fan = await fanout(server);
    const replays = await replay(server);
    await server.ask({ cmd: 'stop' });
    const idleRun = await idle();

    const bare = summary(fan.kinds.bare.samples);
    const hub = summary(fan.kinds.hub.samples);
    const fromWrite = summary(fan.kinds.write.samples);
    const replaySorted = [...replays].sort((a, b) => a - b);
    const ratio = round(hub.p99 / bare.p99, 2);
    const rows = [
      { measure: `bare ws loop → ${FANOUT} sockets (ms)`, p50: bare.p50, p99: bare.p99, max: bare.max, note: `${ROUNDS} rounds` },
      { measure: `Node hub → ${FANOUT} sockets, from publish (ms)`, p50: hub.p50, p99: hub.p99, max: hub.max, note: `p99 ${ratio}× bare (goal ≤ 1.5×)` },
      { measure: `Node hub → ${FANOUT} sockets, from write() (ms)`, p50: fromWrite.p50, p99: fromWrite.p99, max: fromWrite.max, note: 'includes the PGlite transaction' },
      {
        measure: `replay of 1,000 events to ready (ms)`,
        p50: round(percentile(replaySorted, 50), 1),
        p99: round(percentile(replaySorted, 99), 1),
        max: round(replaySorted[replaySorted.length - 1]!, 1),
        note: `${replays.length} runs (goal < 200 ms)`,
      },
      {
        measure: `${IDLE} idle sockets: server RSS (MiB)`,
        p50: round(idleRun.after.rss / MiB, 0),
        p99: '',
        max: '',
        note: `${idleRun.after.sockets} open, ${idleRun.opened.errors} errors, ${idleRun.closed.unexpectedCloses} dropped; RSS before ${round(idleRun.before.rss / MiB, 0)} MiB; opened in ${round(idleRun.openSeconds, 1)} s using ${round(idleRun.after.cpuSeconds - idleRun.before.cpuSeconds, 1)} s of server CPU (goal < 1024 MiB)`,
      },
    ];
    return {
      title: 'Live sockets (Node adapter)',
      rows,
      notes:
        `Server and clients in separate processes on one machine; latency = client arrival − server send time (same clock). ` +
        `The bare loop serializes once and sends to every socket; the hub adds ordering, per-recipient views and backpressure. ` +
        `Events lost in the fan-out rounds: ${fan.lost}. Sockets per user per orbit are capped at 5, so ${FANOUT} sockets are ${FANOUT / PER_USER} members.`,
    };
  },
} satisfies Bench;
