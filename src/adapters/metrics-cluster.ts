// /metrics with WORKERS > 1: the workers share one port, so a scrape reaches any one of them. Each
// worker's scrape asks the primary, which collects every worker's registry (prom-client's
// AggregatorRegistry: counters and histograms summed, gauges by their aggregator) and answers.
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { PromMetrics } from './metrics-prom';

const ASK = 'orbital:metrics-ask';
const ANSWER = 'orbital:metrics-answer';
const TIMEOUT_MS = 5000;

interface Answer {
  type: typeof ANSWER;
  id: number;
  body?: string;
  error?: string;
}

/** In the primary: answers each worker's scrape with the whole cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== ASK) return;
    aggregator.clusterMetrics().then(
      (body) => worker.send({ type: ANSWER, id: message.id!, body } satisfies Answer),
      (err: Error) => worker.send({ type: ANSWER, id: message.id!, error: err.message } satisfies Answer),
    );
  });
}

/** In a worker: its registry joins the primary's collection, and its scrapes answer for the cluster. */
export function scrapeThroughPrimary(metrics: PromMetrics): void {
  new AggregatorRegistry(); // sets up this worker's answers to the primary's collection requests
  AggregatorRegistry.setRegistries([metrics.registry]);
  const waiting = new Map<number, (answer: Answer) => void>();
  let next = 0;
  process.on('message', (message: Answer) => {
    if (message?.type !== ANSWER) return;
    waiting.get(message.id)?.(message);
    waiting.delete(message.id);
  });
  metrics.collectWith(
    () =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('the cluster primary did not answer the metrics request'));
        }, TIMEOUT_MS);
        waiting.set(id, (answer) => {
          clearTimeout(timer);
          if (answer.error !== undefined) reject(new Error(answer.error));
          else resolve(answer.body ?? '');
        });
        process.send!({ type: ASK, id });
      }),
  );
}
