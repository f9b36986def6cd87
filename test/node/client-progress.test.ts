// The CLI's progress bar: bytes, rate over the recent past, ETA, and the summary line at the end.
import { describe, expect, it } from 'vitest';
import { ProgressBar, formatBytes, formatDuration } from '../../src/cli/orbital-progress';

function fakeTerminal(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 200, write: (s: string) => (writes.push(s), true) } };
}

describe('progress bar', () => {
  it('shows bytes, rate and ETA, redrawn in place on a terminal', () => {
    let now = 0;
    const term = fakeTerminal(true);
    const bar = new ProgressBar({ label: 'upload a.bin', total: 20 * 1024 * 1024, stream: term.stream, now: () => now });
    bar.update(0);
    now = 1000;
    bar.update(5 * 1024 * 1024);
    expect(term.writes.at(-1)).toBe(`\rupload a.bin [######..................]  25%  5.0 MiB / 20.0 MiB  5.0 MiB/s  ETA 0:03\x1b[K`);
    now = 4000;
    bar.update(20 * 1024 * 1024);
    bar.finish();
    expect(term.writes.at(-2)).toMatch(/\rupload a\.bin \[#{24}\] 100%  20\.0 MiB \/ 20\.0 MiB  5\.0 MiB\/s  in 0:04/);
    expect(term.writes.at(-1)).toBe('\n');
  });

  it('counts only this run’s bytes in the rate when resuming', () => {
    let now = 0;
    const term = fakeTerminal(false);
    const bar = new ProgressBar({ label: 'upload', total: 10 * 1024 * 1024, stream: term.stream, now: () => now });
    bar.update(8 * 1024 * 1024); // already on the server
    now = 2000;
    bar.update(10 * 1024 * 1024);
    bar.finish();
    expect(term.writes.at(-1)).toMatch(/100%  10\.0 MiB \/ 10\.0 MiB  1\.0 MiB\/s  in 0:02\n$/);
  });

  it('draws at most every 2 s off a terminal, and always the last update', () => {
    let now = 0;
    const term = fakeTerminal(false);
    const bar = new ProgressBar({ label: 'x', total: 100, stream: term.stream, now: () => now });
    for (let i = 0; i <= 100; i++) {
      now = i * 50;
      bar.update(i);
    }
    expect(term.writes.length).toBeLessThanOrEqual(5);
    expect(term.writes.at(-1)).toMatch(/100%/);
  });

  it('fits a narrow terminal by shrinking the bar and cutting the label, never the numbers', () => {
    let now = 0;
    const term = fakeTerminal(true);
    Object.assign(term.stream, { columns: 70 });
    const bar = new ProgressBar({ label: 'upload a-very-long-file-name-indeed.tar.gz', total: 100 * 1024 * 1024, stream: term.stream, now: () => now });
    bar.update(0);
    now = 2000;
    bar.update(50 * 1024 * 1024);
    const shown = term.writes.at(-1)!.replace('\r', '').replace('\x1b[K', '');
    expect(shown.length).toBeLessThanOrEqual(69);
    expect(shown).toMatch(/^upload a\S* \[#{4}\.{4}\]  50%  50\.0 MiB \/ 100\.0 MiB  25\.0 MiB\/s  ETA 0:02$/);
  });

  it('formats sizes and durations', () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(3 * 1024 ** 3)]).toEqual(['512 B', '1.5 KiB', '3.0 GiB']);
    expect([formatDuration(5), formatDuration(65), formatDuration(3725), formatDuration(Infinity)]).toEqual(['0:05', '1:05', '1:02:05', '--:--']);
  });
});
