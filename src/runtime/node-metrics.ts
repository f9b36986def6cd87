// METRICS=on on Node: the gauges read at scrape time, and METRICS_PORT's own listener.
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type pg from 'pg';
import type { Deps } from '../deps';
import type { PromMetrics } from '../adapters/metrics-prom';
import { createMetricsApp } from '../http/metrics';
import { storageTotals, type StorageTotals } from '../domain/storage-stats';
import type { RunningServer } from './node-server';

export interface MetricsSources {
  running: RunningServer;
  /** node-postgres's pool (DATABASE_URL); PGlite has none. */
  pool?: pg.Pool;
}

export interface MetricsListener {
  url?: string;
  close(): Promise<void>;
}

export async function observeNode(deps: Deps, metrics: PromMetrics, sources: MetricsSources): Promise<MetricsListener> {
  metrics.gauge('orbital_live_sockets_open', 'Live sockets open on this process.', () => sources.running.wss.clients.size);
  const { pool } = sources;
  if (pool) {
    metrics.gauge('orbital_db_pool_in_use', 'Database connections checked out of the pool.', () => pool.totalCount - pool.idleCount);
    metrics.gauge('orbital_db_pool_waiting', 'Queries waiting for a pooled connection.', () => pool.waitingCount);
  }
  // The database totals are one query per scrape, shared by their three gauges.
  let totals: { at: number; value: Promise<StorageTotals> } | undefined;
  const total = (field: keyof StorageTotals) => async () => {
    if (!totals || Date.now() - totals.at > 1000) totals = { at: Date.now(), value: storageTotals(deps.db) };
    return (await totals.value)[field];
  };
  const whole = { perCluster: true };
  metrics.gauge('orbital_uploads_in_progress', 'Media uploads started and neither completed, aborted nor expired.', total('uploads_in_progress'), whole);
  metrics.gauge('orbital_media_bytes_stored', 'Bytes of completed media counted in orbit quotas.', total('bytes_stored'), whole);
  metrics.gauge('orbital_media_files_stored', 'Completed media files counted in orbit quotas.', total('files_stored'), whole);

  const port = deps.config.METRICS_PORT;
  if (port === undefined) return { close: async () => {} };
  const app = createMetricsApp(deps);
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: deps.config.HOST }, () => resolve(s));
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
