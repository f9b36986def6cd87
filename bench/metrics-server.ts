// One server of the metrics-cost benchmark: `tsx bench/metrics-server.ts on|off` with
// BENCH_DATABASE_URL set; the Node app as deployed, with METRICS on or off. Prints `listening <port>`.
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { PromMetrics } from '../src/adapters/metrics-prom';
import { parseConfig } from '../src/config';
import { buildNodeDeps } from '../src/runtime/node-deps';
import { observeNode } from '../src/runtime/node-metrics';
import { startServer } from '../src/runtime/node-server';
import { BENCH_SECRET } from './threads-fixture';

const on = process.argv[2] === 'on';
const url = process.env.BENCH_DATABASE_URL!;
const config = parseConfig({ DATABASE_URL: url, JWT_SECRET: BENCH_SECRET, RATE_LIMIT: 'off', LOG_LEVEL: 'silent', METRICS: on ? 'on' : 'off' });
const { db, pool } = openNodePostgres(url, 10);
const metrics = on ? new PromMetrics() : undefined;
const deps = await buildNodeDeps({ config, db, blobRoot: '/tmp/orbital-bench-blobs', metrics });
const running = await startServer(deps, 0, '127.0.0.1');
if (metrics) await observeNode(deps, metrics, { running, pool });
console.log(`listening ${new URL(running.url).port}`);
