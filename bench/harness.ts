// What a benchmark module exports: bench/<name>.bench.ts → `export default { name, run }`.
// `npm run bench` runs them all (or those named: `npm run bench -- upload hash`) and writes
// BENCHMARKS.md with the machine and the date.
export interface BenchResult {
  title: string;
  /** One row per measured thing; the first row's keys are the table's columns. */
  rows: Array<Record<string, string | number>>;
  /** Goals and how the numbers compare with them, in a sentence or two. */
  notes?: string;
}

export interface Bench {
  name: string;
  run(): Promise<BenchResult>;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
