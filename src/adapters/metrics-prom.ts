// The Metrics port on prom-client: one registry per server process, scraped at GET /metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics } from '../deps';

export type Reading = () => number | Promise<number>;

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'orbital_http_requests_total',
    help: 'Answered HTTP requests by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  private readonly durations = new Histogram({
    name: 'orbital_http_request_duration_seconds',
    help: 'Time to the response head, by method and route template.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: 'orbital_rate_limit_refusals_total',
    help: 'Requests refused by a rate limit, by the limit.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  private readonly cleanupRuns = new Counter({ name: 'orbital_cleanup_runs_total', help: 'Completed cleanup runs.', registers: [this.registry] });
  private readonly cleanupRemoved = new Counter({
    name: 'orbital_cleanup_removed_total',
    help: 'What cleanup runs removed, by kind (events, messages, blobs_deleted …).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly eventsFannedOut = new Counter({
    name: 'orbital_events_fanned_out_total',
    help: 'Committed events handed to this process’s live sockets.',
    registers: [this.registry],
  });
  private readonly fanoutLag = new Histogram({
    name: 'orbital_fanout_lag_seconds',
    help: 'From an event’s commit to its frame written to this process’s sockets (each event once per process).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly notices = new Counter({
    name: 'orbital_notify_total',
    help: 'Postgres NOTIFY notices between server processes, by direction (sent, received).',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.durations.observe({ method, route }, seconds);
  }

  /** Events written to live sockets at `now` (ms): their lag since commit. */
  fannedOut(events: Array<{ at: Date }>, now: number): void {
    for (const e of events) this.fanoutLag.observe(Math.max(0, now - e.at.getTime()) / 1000);
  }

  rateLimited(limit: string): void {
    this.refusals.inc({ limit });
  }

  cleanupRun(report: Record<string, number>): void {
    this.cleanupRuns.inc();
    for (const [kind, n] of Object.entries(report)) this.cleanupRemoved.inc({ kind }, n);
  }

  /** A gauge read when scraped (sockets open, pool connections, rows counted in the database). */
  /**
   * `perCluster`: the value is the whole server's (rows counted in the database), so with several
   * worker processes one worker's reading stands for all instead of their sum.
   */
  gauge(name: string, help: string, read: Reading, options: { perCluster?: boolean } = {}): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      aggregator: options.perCluster ? 'first' : 'sum',
      async collect() {
        this.set(await read());
      },
    });
  }

  private collect: () => Promise<string> = () => this.registry.metrics();

  /** Scrapes answer with what `collect` gives (the cluster's metrics, in a worker). */
  collectWith(collect: () => Promise<string>): void {
    this.collect = collect;
  }

  async scrape() {
    return { contentType: this.registry.contentType, body: await this.collect() };
  }
}
