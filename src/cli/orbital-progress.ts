// A progress bar for uploads and downloads: bytes, rate and ETA, redrawn in place on a terminal
// (at most 10 times a second), or a line every few seconds when forced onto a pipe.

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export interface ProgressBarOptions {
  label: string;
  total: number;
  stream: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean; columns?: number };
  now?: () => number;
}

export class ProgressBar {
  private readonly started: number;
  private readonly samples: { at: number; bytes: number }[] = [];
  private lastDraw = 0;
  private lastBytes = 0;
  private baseline: number | undefined;
  private done = false;
  private readonly now: () => number;

  constructor(private readonly options: ProgressBarOptions) {
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Bytes per second over the last 5 s (bytes an earlier run already sent do not count). */
  rate(): number {
    const last = this.samples[this.samples.length - 1];
    const first = this.samples[0];
    if (!last || !first || last.at === first.at) return 0;
    return ((last.bytes - first.bytes) / (last.at - first.at)) * 1000;
  }

  /** On a narrow terminal the bar shrinks (to 8 cells) and then the label is cut: the numbers always show. */
  line(bytes: number, columns = 200): string {
    const { total } = this.options;
    const fraction = total > 0 ? Math.min(1, bytes / total) : 1;
    const rate = this.rate();
    const eta = this.done ? (this.now() - this.started) / 1000 : rate > 0 ? (total - bytes) / rate : Infinity;
    const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
    const facts = ` ${pct}  ${formatBytes(bytes)} / ${formatBytes(total)}  ${formatBytes(rate)}/s  ${this.done ? 'in' : 'ETA'} ${formatDuration(eta)}`;
    const room = columns - 1 - facts.length; // for "label [bar]"
    let width = Math.min(24, room - this.options.label.length - 3);
    if (width < 8) width = Math.min(8, Math.max(0, room - 4));
    const label = this.options.label.slice(0, Math.max(0, room - (width ? width + 3 : 0)));
    const filled = Math.round(fraction * width);
    return width ? `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${facts}` : `${label}${facts}`;
  }

  update(bytes: number): void {
    const at = this.now();
    this.baseline ??= bytes;
    this.lastBytes = bytes;
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - this.samples[0]!.at > 5000) this.samples.shift();
    const tty = this.options.stream.isTTY;
    if (at - this.lastDraw < (tty ? 100 : 2000) && bytes < this.options.total) return;
    this.lastDraw = at;
    this.draw(bytes);
  }

  private draw(bytes: number) {
    const { stream } = this.options;
    if (stream.isTTY) stream.write(`\r${this.line(bytes, stream.columns || 80).slice(0, (stream.columns || 80) - 1)}\x1b[K`);
    else stream.write(this.line(bytes) + '\n');
  }

  finish(): void {
    if (this.done) return;
    const whole = this.samples.length ? this.samples[this.samples.length - 1]!.at - this.started : 0;
    // The final rate is over the whole run (this run's bytes only).
    if (whole > 0) this.samples.splice(0, this.samples.length, { at: this.started, bytes: this.baseline ?? 0 }, { at: this.started + whole, bytes: this.lastBytes });
    this.done = true;
    this.draw(this.lastBytes);
    if (this.options.stream.isTTY) this.options.stream.write('\n');
  }
}
