// Session liveness answers cached for at most `ttlMs` (the contract allows 30 s of staleness),
// so most requests skip the session lookup. Bounded: the oldest entries go first.
export const MAX_SESSION_CACHE_MS = 30_000;
const FORGOTTEN = Number.MAX_SAFE_INTEGER;

export class SessionCache {
  private readonly entries = new Map<string, { live: boolean; until: number }>();
  constructor(
    private readonly ttlMs = 15_000,
    private readonly max = 50_000,
  ) {
    if (ttlMs > MAX_SESSION_CACHE_MS) throw new RangeError(`session cache lifetime ${ttlMs} ms exceeds the contract's ${MAX_SESSION_CACHE_MS} ms`);
  }

  get(sessionId: string, now: number): boolean | undefined {
    const hit = this.entries.get(sessionId);
    if (!hit) return undefined;
    if (hit.until <= now) {
      this.entries.delete(sessionId);
      return undefined;
    }
    return hit.live;
  }

  set(sessionId: string, live: boolean, now: number): void {
    // A lookup that started before this process revoked the session must not revive it.
    if (this.entries.get(sessionId)?.until === FORGOTTEN) return;
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(sessionId, { live, until: now + this.ttlMs });
  }

  /** Drops a session at once on this process (its own logout/revocation). */
  forget(sessionId: string): void {
    this.entries.set(sessionId, { live: false, until: FORGOTTEN });
  }
}
