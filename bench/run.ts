// Runs the benchmarks and writes BENCHMARKS.md (machine, date, one table per benchmark).
// Results of benchmarks not run this time are kept from the previous file.
import { cpus, totalmem } from 'node:os';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Bench, BenchResult } from './harness';

const wanted = process.argv.slice(2);
const OUT = 'BENCHMARKS.md';
const START = (name: string) => `<!-- bench:${name} -->`;
const END = (name: string) => `<!-- /bench:${name} -->`;

function table(result: BenchResult): string {
  const cols = Object.keys(result.rows[0] ?? {});
  const lines = [`| ${cols.join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`, ...result.rows.map((r) => `| ${cols.map((c) => String(r[c] ?? '')).join(' | ')} |`)];
  return lines.join('\n');
}

const machine = `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
const files = readdirSync('bench').filter((f) => f.endsWith('.bench.ts')).sort();
let doc = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench`; each section keeps the machine and date of its last run.\n';

for (const file of files) {
  const bench = (await import(`./${file}`)).default as Bench;
  if (wanted.length && !wanted.includes(bench.name)) continue;
  console.log(`== ${bench.name}`);
  const result = await bench.run();
  console.log(table(result));
  if (result.notes) console.log(result.notes);
  const section = [
    START(bench.name),
    `## ${result.title}`,
    '',
    `Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine}.`,
    '',
    table(result),
    '',
    result.notes ?? '',
    END(bench.name),
  ].join('\n');
  const at = doc.indexOf(START(bench.name));
  doc = at >= 0 ? doc.slice(0, at) + section + doc.slice(doc.indexOf(END(bench.name)) + END(bench.name).length) : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(OUT, doc);
}
process.exit(0);
