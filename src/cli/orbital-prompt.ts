// Asking a person: passwords without echo, yes/no confirmations. Scripts pass --yes, ORBITAL_PASSWORD
// or --password-stdin instead; without a terminal nothing is ever assumed.
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

export class NeedsTerminal extends Error {}

const silent = () => new Writable({ write: (_chunk, _enc, done) => done() });

export async function askHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new NeedsTerminal(`${question.trim()} needs a terminal (or ORBITAL_PASSWORD / --password-stdin)`);
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin, output: silent(), terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

export async function ask(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new NeedsTerminal(`${question.trim()} needs a terminal`);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    rl.close();
  }
}

/** Yes only when a person says so; `--yes` stands in for scripts. */
export async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new NeedsTerminal(`${question} — no terminal to ask; pass --yes to confirm from a script`);
  return /^y(es)?$/i.test((await ask(`${question} [y/N] `)).trim());
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
