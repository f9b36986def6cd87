// The socket side of bench/scale.bench.ts and bench/storm.bench.ts, in its own process: opens live
// sockets (after_seq=0, so each replays its orbit from seq 1), checks every event arrives once and
// in seq order, and measures each live event's delivery latency from its commit time (`at`) to its
// arrival. With `reconnect`, a socket the server closes comes back as the desktop client does:
// after a random delay, with `after_seq` = the last seq it saw, backing off while refused.
import WebSocket from 'ws';

interface Target {
  url: string;
  token: string;
  groupId: string;
}

type Command =
  | { cmd: 'open'; sockets: Target[]; concurrency: number; reconnect?: { firstDelayMs: number; maxDelayMs: number } }
  | { cmd: 'check'; lastSeq: Record<string, number>; timeoutMs: number }
  | { cmd: 'ready'; timeoutMs: number }
  | { cmd: 'close' };

interface Tracked {
  target: Target;
  /** The next seq this socket should see. */
  next: number;
  ready: boolean;
  duplicates: number;
  gaps: number;
  /** Epoch ms of the last `ready`. */
  readyAt: number;
}

const tracked: Tracked[] = [];
const latencies: number[] = [];
const sockets = new Set<WebSocket>();
let errors = 0;
/** Why sockets failed to open: HTTP status of a refused upgrade, close code, or error. */
const failures: Record<string, number> = {};
const fail = (why: string) => (failures[why] = (failures[why] ?? 0) + 1);
let unexpectedCloses = 0;
let reconnects = 0;
let closing = false;
let policy: Extract<Command, { cmd: 'open' }>['reconnect'];

/** One connection of `state`'s socket; resolves at its `ready`, or when it fails before that. */
function connect(state: Tracked, onSettled: (ok: boolean) => void): void {
  const url = new URL(state.target.url);
  if (state.next > 1) url.searchParams.set('after_seq', String(state.next - 1));
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${state.target.token}` }, perMessageDeflate: false });
  let settled = false;
  const done = (ok: boolean) => {
    if (settled) return;
    settled = true;
    onSettled(ok);
  };
  ws.on('message', (data) => {
    const arrived = Date.now();
    const frame = JSON.parse(data.toString()) as { type: string; seq?: number; at?: string };
    if (frame.type === 'ready') {
      state.ready = true;
      state.readyAt = arrived;
      return done(true);
    }
    if (typeof frame.seq !== 'number') return;
    if (frame.seq < state.next) state.duplicates++;
    else {
      if (frame.seq > state.next) state.gaps++;
      state.next = frame.seq + 1;
      // Replayed events are catch-up, not delivery: only those after `ready` are timed.
      if (state.ready && frame.at) latencies.push(arrived - Date.parse(frame.at));
    }
  });
  ws.on('open', () => sockets.add(ws));
  ws.on('unexpected-response', (_req, res) => {
    fail(`HTTP ${res.statusCode}`);
    res.resume();
    ws.terminate();
  });
  ws.on('error', (err) => {
    if (!settled) fail(`error ${(err as NodeJS.ErrnoException).code ?? err.message}`);
    done(false);
  });
  ws.on('close', (code) => {
    sockets.delete(ws);
    const wasReady = state.ready;
    state.ready = false;
    if (!settled) fail(`closed ${code} before ready`);
    done(false);
    if (closing || !wasReady) return;
    unexpectedCloses++;
    if (policy) comeBack(state, policy.firstDelayMs);
  });
}

/** Reconnects after a random part of `delayMs`, doubling the delay while refused. */
function comeBack(state: Tracked, delayMs: number): void {
  setTimeout(() => {
    if (closing) return;
    reconnects++;
    connect(state, (ok) => {
      if (!ok) comeBack(state, Math.min(delayMs * 2, policy!.maxDelayMs));
    });
  }, Math.random() * delayMs);
}

function openOne(target: Target): Promise<void> {
  const state: Tracked = { target, next: 1, ready: false, duplicates: 0, gaps: 0, readyAt: 0 };
  tracked.push(state);
  return new Promise((resolve) =>
    connect(state, (ok) => {
      if (!ok) errors++;
      resolve();
    }),
  );
}

async function open(c: Extract<Command, { cmd: 'open' }>) {
  policy = c.reconnect;
  let next = 0;
  const worker = async () => {
    while (next < c.sockets.length) await openOne(c.sockets[next++]!);
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return { opened: sockets.size, errors, failures };
}

/** Waits until every socket has its orbit's last seq (or the timeout), then reports. */
async function check(c: Extract<Command, { cmd: 'check' }>) {
  const deadline = Date.now() + c.timeoutMs;
  const behind = () => tracked.filter((t) => t.next <= (c.lastSeq[t.target.groupId] ?? 0));
  while (behind().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const lost = behind().reduce((sum, t) => sum + (c.lastSeq[t.target.groupId]! - t.next + 1), 0);
  const sample = latencies.splice(0);
  return {
    sockets: tracked.length,
    lost,
    gaps: tracked.reduce((a, t) => a + t.gaps, 0),
    duplicates: tracked.reduce((a, t) => a + t.duplicates, 0),
    delivered: sample.length,
    latencies: sample,
    errors,
    unexpectedCloses,
    reconnects,
  };
}

/** Waits until every socket is `ready` again (or the timeout): how many are, and when the last became so. */
async function ready(c: Extract<Command, { cmd: 'ready' }>) {
  const deadline = Date.now() + c.timeoutMs;
  while (tracked.some((t) => !t.ready) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { ready: tracked.filter((t) => t.ready).length, of: tracked.length, lastReadyAt: Math.max(...tracked.map((t) => t.readyAt)), reconnects, failures };
}

process.on('message', async (c: Command) => {
  if (c.cmd === 'open') process.send!(await open(c));
  else if (c.cmd === 'check') process.send!(await check(c));
  else if (c.cmd === 'ready') process.send!(await ready(c));
  else if (c.cmd === 'close') {
    closing = true;
    for (const ws of sockets) ws.terminate();
    process.send!({ closed: sockets.size });
    process.exit(0);
  }
});
process.send!({ started: true });
