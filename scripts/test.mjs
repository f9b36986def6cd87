// `npm test`: the node and workerd projects as two vitest runs side by side. In one run vitest
// starts workerd's files only after every node file (a project whose files take turns gets a group
// of its own), and the workerd files wait on sockets more than they use a core: side by side, the
// whole suite takes the node project's time plus a little. The node run reports as it goes; the
// workerd run's report follows it. With arguments it is plain `vitest run <args>`.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const args = process.argv.slice(2);

function run(extra, stdio, { echo = false } = {}) {
  const child = spawn(process.execPath, [vitest, 'run', ...extra], { stdio });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
    if (echo) process.stdout.write(d);
  });
  child.stderr?.on('data', (d) => {
    output += d;
    if (echo) process.stderr.write(d);
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
  return { child, exited, output: () => output };
}

if (args.length) {
  process.exitCode = await run(args, 'inherit').exited;
} else {
  // Colours as on a terminal, though the report is kept until the node run ends.
  if (process.stdout.isTTY) process.env.FORCE_COLOR ??= '1';
  const workerd = run(['--project', 'workerd'], ['ignore', 'pipe', 'pipe']);
  const node = run(['--project', 'node'], ['inherit', 'pipe', 'pipe'], { echo: true });
  const stop = (signal) => {
    for (const r of [node, workerd]) r.child.kill(signal);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const nodeCode = await node.exited;
  if (workerd.child.exitCode === null) process.stdout.write('\n(the workerd project is still running; its report follows when it ends)\n');
  const workerdCode = await workerd.exited;
  process.stdout.write(`\n──── workerd project ────\n${workerd.output()}`);
  // A log often shows only its end: the node run's failures are repeated there.
  if (nodeCode !== 0) process.stdout.write(`\n──── node project's failures (again) ────\n${failures(node.output())}\n`);
  process.stdout.write(`\nnode project: ${nodeCode === 0 ? 'passed' : 'FAILED'} · workerd project: ${workerdCode === 0 ? 'passed' : 'FAILED'}\n`);
  process.exitCode = nodeCode || workerdCode;
}

/** Vitest's block of failed suites and tests, up to its summary (or the whole end of the output). */
function failures(output) {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const start = plain.search(/⎯+ Failed (Suites|Tests) \d+ ⎯+/);
  const end = plain.lastIndexOf(' Test Files ');
  if (start < 0) return plain.slice(-8000);
  const block = plain.slice(start, end > start ? end : undefined);
  return block.length > 20000 ? `${block.slice(0, 20000)}\n… (cut; the whole report is above)` : block;
}
