// The cost of one argon2id hash and one verification (m = 19 MiB, t = 2, p = 1) on Node and in
// workerd. Node: timed in-process. workerd: a tiny Worker (bench/hash-worker.ts) run by
// Miniflare, timed from Node so the number does not depend on workerd's clocks (deployed
// Workers advance them only on I/O): (a request doing BATCH operations − an empty request) / BATCH.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { loadHasher } from '../src/runtime/node-deps';
import { percentile, round, type Bench, type BenchResult } from './harness';

const SAMPLES = 15;
const BATCH = 5;
const PASSWORD = 'correct horse battery staple';

function summarize(runtime: string, operation: string, ms: number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  return { runtime, operation, 'median ms': round(percentile(sorted, 50)), 'p90 ms': round(percentile(sorted, 90)), 'min ms': round(sorted[0]!), samples: ms.length };
}

async function node() {
  const hasher = await loadHasher();
  const stored = await hasher.hash(PASSWORD);
  const time = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  const hashes: number[] = [];
  const verifies: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    hashes.push(await time(() => hasher.hash(PASSWORD)));
    verifies.push(await time(() => hasher.verify(stored, PASSWORD)));
  }
  return [summarize('node', 'hash', hashes), summarize('node', 'verify', verifies)];
}

async function workerd() {
  const bundle = await build({
    entryPoints: ['bench/hash-worker.ts'],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    write: false,
    plugins: [
      {
        name: 'wasm-module',
        setup(b) {
          b.onResolve({ filter: /\.wasm$/ }, () => ({ path: './argon2.wasm', external: true }));
        },
      },
    ],
  });
  const wasm = readFileSync(createRequire(import.meta.url).resolve('@phi-ag/argon2/argon2.wasm'));
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: [
        { type: 'ESModule', path: 'worker.mjs', contents: bundle.outputFiles[0]!.text },
        { type: 'CompiledWasm', path: 'argon2.wasm', contents: wasm },
      ],
      compatibilityDate: '2025-09-01',
      compatibilityFlags: ['nodejs_compat'],
    }),
  );
  try {
    const roundTrip = async (path: string) => {
      const started = performance.now();
      const res = await mf.dispatchFetch(`http://bench${path}`);
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      await res.text();
      return performance.now() - started;
    };
    await roundTrip('/hash?n=1'); // compile, first instance
    const hashes: number[] = [];
    const verifies: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const empty = await roundTrip('/noop');
      hashes.push(((await roundTrip(`/hash?n=${BATCH}`)) - empty) / BATCH);
      verifies.push(((await roundTrip(`/verify?n=${BATCH}`)) - empty) / BATCH);
    }
    return [summarize('workerd', 'hash', hashes), summarize('workerd', 'verify', verifies)];
  } finally {
    await mf.dispose();
  }
}

export default {
  name: 'hash',
  async run(): Promise<BenchResult> {
    const load = loadavg()[0]!.toFixed(1);
    const rows = [...(await node()), ...(await workerd())];
    return {
      title: 'Password hashing (argon2id, m = 19 MiB, t = 2, p = 1)',
      rows,
      notes:
        'One WASM build (@phi-ag/argon2) on both runtimes, so the PHC strings verify across them (test/node and test/workerd password-hash tests). ' +
        'Every login, registration, password change and account deletion pays one of these; an unknown username pays a verify too (dummy hash). ' +
        'The per-IP and per-username limits are checked before it, so failed guesses cannot buy CPU beyond their budget. ' +
        `workerd is timed from Node over ${BATCH}-operation requests minus an empty request (deployed Workers do not advance their clocks during computation). ` +
        'On Cloudflare, one hash is more CPU than the Workers Free plan allows per request (10 ms): deploy on a paid plan. ' +
        `Load average when the run started: ${load} (other work on the machine inflates every row alike).`,
    };
  },
} satisfies Bench;
