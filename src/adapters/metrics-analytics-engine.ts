// The Metrics port on Workers Analytics Engine, when the Worker has an `ANALYTICS` dataset binding:
// each count Node keeps in prom-client becomes a data point, queried later with the SQL API
// (docs/OPERATIONS.md). Every point: index1 and blob1 = its kind, double1 = how many; a request adds
// blob2-4 (method, route template, status) and double2 (seconds). No user or orbit ids, ever.
// Writes do not block and need no waitUntil.
import type { AnalyticsEngineDataset } from '@cloudflare/workers-types';
import type { Metrics } from '../deps';

export type MetricKind = 'request' | 'rate_limited' | 'cleanup_run' | 'cleanup_removed' | 'socket_opened' | 'socket_closed' | 'events_fanned_out';

export class AnalyticsEngineMetrics implements Metrics {
  constructor(private readonly dataset: AnalyticsEngineDataset) {}

  private point(kind: MetricKind, count: number, blobs: string[] = [], doubles: number[] = []): void {
    this.dataset.writeDataPoint({ indexes: [kind], blobs: [kind, ...blobs], doubles: [count, ...doubles] });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.point('request', 1, [method, route, String(status)], [seconds]);
  }

  rateLimited(limit: string): void {
    this.point('rate_limited', 1, [limit]);
  }

  /** One point for the run and one per kind it removed something of (a Worker invocation may write 250). */
  cleanupRun(report: Record<string, number>): void {
    this.point('cleanup_run', 1);
    for (const [kind, n] of Object.entries(report)) if (n > 0) this.point('cleanup_removed', n, [kind]);
  }

  socketOpened(): void {
    this.point('socket_opened', 1);
  }

  socketClosed(): void {
    this.point('socket_closed', 1);
  }

  eventsFannedOut(n: number): void {
    this.point('events_fanned_out', n);
  }
}

/** The adapter when the binding is there; without it nothing is measured. */
export function analyticsEngineMetrics(env: { ANALYTICS?: AnalyticsEngineDataset }): AnalyticsEngineMetrics | undefined {
  return env.ANALYTICS ? new AnalyticsEngineMetrics(env.ANALYTICS) : undefined;
}
