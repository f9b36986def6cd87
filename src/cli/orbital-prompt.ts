// Asking a person: passwords without echo, yes/no confirmations. Scripts pass --yes, ORBITAL_PASSWORD
// or --password-stdin instead; without a terminal nothing is ever assumed.
import { createInterface, type Interface } from 'node:readline';
import { Writable } from 'node:stream';

export class NeedsTerminal extends Error {}

/** One reader for the whole run, so lines typed (or pasted) ahead are kept for the next question. */
let reader: { rl: Interface; lines: AsyncIterator<string>; mute(on: boolean): void } | undefined;

function terminal() {
  if (!reader) {
    let muted = false;
    const output = new Writable({
      write(chunk, _enc, done) {
        if (!muted) process.stderr.write(chunk);
        done();
      },
    });
    const rl = createInterface({ input: process.stdin, output, terminal: true });
    reader = { rl, lines: rl[Symbol.asyncIterator](), mute: (on) => (muted = on) };
  }
  return reader;
}

async function question(text: string, hidden: boolean): Promise<string> {
  const { lines, mute } = terminal();
  process.stderr.write(text);
  mute(hidden);
  try {
    const next = await lines.next();
    if (next.done) throw new NeedsTerminal('input ended before an answer');
    return next.value;
  } finally {
    mute(false);
    if (hidden) process.stderr.write('\n');
  }
}

/** Lets the process exit: the reader holds stdin open. */
export function closePrompts(): void {
  reader?.rl.close();
  reader = undefined;
}

export async function askHidden(text: string): Promise<string> {
  if (!process.stdin.isTTY) throw new NeedsTerminal(`${text.replace(/:\s*$/, '')} needs a terminal (or ORBITAL_PASSWORD / --password-stdin)`);
  return question(text, true);
}

/** Yes only when a person says so; `--yes` stands in for scripts. */
export async function confirm(text: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new NeedsTerminal(`${text}\nNo terminal to ask: pass --yes to confirm from a script.`);
  return /^y(es)?$/i.test((await question(`${text} [y/N] `, false)).trim());
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
