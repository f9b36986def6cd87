// "A reader more than 4 MiB behind is closed 1013." Sends queue synchronously, so a burst (a
// replay of up to 8 MiB) is briefly over the limit even for a fast reader: the queue is measured
// again after a grace period, and only a reader that has not drained it by then is dropped.
import { CLOSE, LIVE } from './protocol';

export class BehindCheck {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** Bytes queued for the reader and not yet sent (ws / WebSocket bufferedAmount). */
    private readonly queued: () => number | undefined,
    private readonly close: (code: number, reason: string) => void,
    private readonly limit: number = LIVE.maxBehindBytes,
    private readonly graceMs = 1000,
  ) {}

  /** Call after each send. */
  sent(): void {
    if (this.timer || !this.over()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.over()) this.close(CLOSE.overloaded, 'reader too far behind; reconnect with after_seq');
    }, this.graceMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private over(): boolean {
    const n = this.queued();
    return typeof n === 'number' && n > this.limit;
  }
}
