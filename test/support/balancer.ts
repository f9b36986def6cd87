// HAProxy (Debian's haproxy) in front of test nodes, with the committed deploy/haproxy.cfg as is:
// the addresses go in through the environment variables that file reads.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './s3-server';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));

export interface Balancer {
  url: string;
  output(): string;
  close(): Promise<void>;
}

/** Starts HAProxy on a free loopback port in front of `nodes` (base URLs); resolves once it answers /ready. */
export async function startBalancer(nodes: string[]): Promise<Balancer> {
  if (!HAPROXY) throw new Error('HAProxy is not installed (apt-get install haproxy)');
  const port = await freePort();
  const env: Record<string, string> = { ORBITAL_BIND: `127.0.0.1:${port}` };
  nodes.forEach((url, i) => (env[`ORBITAL_NODE${i + 1}`] = new URL(url).host));
  const proc = spawn(HAPROXY, ['-db', '-f', 'deploy/haproxy.cfg'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`haproxy exited with ${proc.exitCode}:\n${out}`);
    const status = await fetch(`${url}/ready`).then((r) => r.status, () => 0);
    if (status === 200) break;
    if (Date.now() > deadline) throw new Error(`haproxy did not answer:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => out,
    async close() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
