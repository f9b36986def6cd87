// The client side of bench/live.bench.ts, in its own process (its own CPU and file descriptors):
// opens many sockets, stamps every message's arrival, and reports back over IPC. The same harness
// serves the orbital hub and the bare `ws` loop, so their numbers compare.
import WebSocket from 'ws';

type Command =
  | { cmd: 'open'; url: string; headers: Array<Record<string, string>>; waitFor: 'open' | 'ready'; concurrency: number }
  | { cmd: 'arrivals'; round: number; expect: number; timeoutMs: number }
  | { cmd: 'replay'; url: string; headers: Record<string, string>; runs: number }
  | { cmd: 'stats' }
  | { cmd: 'close' };

const now = () => performance.timeOrigin + performance.now();
const sockets: WebSocket[] = [];
const arrivals = new Map<number, number[]>();
let errors = 0;
let unexpectedCloses = 0;
let messages = 0;
let closing = false;

function roundOf(text: string): number | undefined {
  // Cheap: the benchmark's messages carry "round":N; no need to parse 1,000 copies in full.
  const at = text.indexOf('"round":');
  if (at < 0) return undefined;
  return Number.parseInt(text.slice(at + 8), 10);
}

function openOne(url: string, headers: Record<string, string>, waitFor: 'open' | 'ready'): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      if (!ok) errors++;
      resolve();
    };
    ws.on('message', (data) => {
      const at = now();
      messages++;
      const text = data.toString();
      if (!settled && text.startsWith('{"type":"ready"')) return done(true);
      const round = roundOf(text);
      if (round !== undefined) {
        let list = arrivals.get(round);
        if (!list) arrivals.set(round, (list = []));
        list.push(at);
      }
    });
    ws.on('open', () => {
      sockets.push(ws);
      if (waitFor === 'open') done(true);
    });
    ws.on('error', () => done(false));
    ws.on('close', () => {
      if (!closing) unexpectedCloses++;
      done(false);
    });
  });
}

async function open(c: Extract<Command, { cmd: 'open' }>) {
  let next = 0;
  const worker = async () => {
    while (next < c.headers.length) await openOne(c.url, c.headers[next++]!, c.waitFor);
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return { opened: sockets.length, errors };
}

async function waitArrivals(c: Extract<Command, { cmd: 'arrivals' }>) {
  const deadline = Date.now() + c.timeoutMs;
  while ((arrivals.get(c.round)?.length ?? 0) < c.expect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  const list = arrivals.get(c.round) ?? [];
  arrivals.delete(c.round);
  return { arrivals: list };
}

/** Upgrade to `ready` with a replay: how long, and how many events came first. */
async function replay(c: Extract<Command, { cmd: 'replay' }>) {
  const runs: Array<{ ms: number; events: number }> = [];
  for (let i = 0; i < c.runs; i++) {
    runs.push(
      await new Promise((resolve, reject) => {
        const started = now();
        let events = 0;
        const ws = new WebSocket(c.url, { headers: c.headers, perMessageDeflate: false });
        ws.on('message', (data) => {
          const text = data.toString();
          if (text.startsWith('{"type":"ready"')) {
            resolve({ ms: now() - started, events });
            ws.terminate();
          } else events++;
        });
        ws.on('error', reject);
      }),
    );
  }
  return { runs };
}

process.on('message', async (c: Command) => {
  if (c.cmd === 'open') process.send!(await open(c));
  else if (c.cmd === 'arrivals') process.send!(await waitArrivals(c));
  else if (c.cmd === 'replay') process.send!(await replay(c));
  else if (c.cmd === 'stats') process.send!({ open: sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length, messages, errors, unexpectedCloses });
  else if (c.cmd === 'close') {
    closing = true;
    for (const ws of sockets) ws.terminate();
    process.send!({ closed: sockets.length, errors, unexpectedCloses });
    process.exit(0);
  }
});
process.send!({ started: true });
