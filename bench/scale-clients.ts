// The socket side of bench/scale.bench.ts, in its own process: opens live sockets (after_seq=0, so
// each replays its orbit from seq 1), checks every event arrives once and in seq order, and
// measures each live event's delivery latency from its commit time (`at`) to its arrival.
import WebSocket from 'ws';

type Command =
  | { cmd: 'open'; sockets: Array<{ url: string; token: string; groupId: string }>; concurrency: number }
  | { cmd: 'check'; lastSeq: Record<string, number>; timeoutMs: number }
  | { cmd: 'close' };

interface Tracked {
  groupId: string;
  /** The next seq this socket should see. */
  next: number;
  ready: boolean;
  duplicates: number;
  gaps: number;
}

const tracked: Tracked[] = [];
const latencies: number[] = [];
const sockets: WebSocket[] = [];
let errors = 0;
/** Why sockets failed to open: HTTP status of a refused upgrade, close code, or error. */
const failures: Record<string, number> = {};
const fail = (why: string) => (failures[why] = (failures[why] ?? 0) + 1);
let unexpectedCloses = 0;
let closing = false;

function openOne(s: { url: string; token: string; groupId: string }): Promise<void> {
  return new Promise((resolve) => {
    const state: Tracked = { groupId: s.groupId, next: 1, ready: false, duplicates: 0, gaps: 0 };
    const ws = new WebSocket(s.url, { headers: { authorization: `Bearer ${s.token}` }, perMessageDeflate: false });
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      if (!ok) errors++;
      resolve();
    };
    ws.on('message', (data) => {
      const arrived = Date.now();
      const frame = JSON.parse(data.toString()) as { type: string; seq?: number; at?: string };
      if (frame.type === 'ready') {
        state.ready = true;
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
    ws.on('open', () => {
      sockets.push(ws);
      tracked.push(state);
    });
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
      if (!closing) unexpectedCloses++;
      if (!settled) fail(`closed ${code} before ready`);
      done(false);
    });
  });
}

async function open(c: Extract<Command, { cmd: 'open' }>) {
  let next = 0;
  const worker = async () => {
    while (next < c.sockets.length) await openOne(c.sockets[next++]!);
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return { opened: sockets.length, errors, failures };
}

/** Waits until every socket has its orbit's last seq (or the timeout), then reports. */
async function check(c: Extract<Command, { cmd: 'check' }>) {
  const deadline = Date.now() + c.timeoutMs;
  const behind = () => tracked.filter((t) => t.next <= (c.lastSeq[t.groupId] ?? 0));
  while (behind().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const lost = behind().reduce((sum, t) => sum + (c.lastSeq[t.groupId]! - t.next + 1), 0);
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
  };
}

process.on('message', async (c: Command) => {
  if (c.cmd === 'open') process.send!(await open(c));
  else if (c.cmd === 'check') process.send!(await check(c));
  else if (c.cmd === 'close') {
    closing = true;
    for (const ws of sockets) ws.terminate();
    process.send!({ closed: sockets.length });
    process.exit(0);
  }
});
process.send!({ started: true });
