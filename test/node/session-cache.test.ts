// The session-liveness cache: the contract allows at most 30 s of staleness after a revocation.
import { describe, expect, it } from 'vitest';
import { MAX_SESSION_CACHE_MS, SessionCache } from '../../src/domain/session-cache';

describe('SessionCache', () => {
  it('forgets a live answer within 30 s', () => {
    const cache = new SessionCache();
    cache.set('s1', true, 1_000);
    expect(cache.get('s1', 1_000)).toBe(true);
    expect(cache.get('s1', 1_000 + MAX_SESSION_CACHE_MS)).toBeUndefined();
    expect(MAX_SESSION_CACHE_MS).toBeLessThanOrEqual(30_000);
  });

  it('refuses a lifetime over 30 s', () => {
    expect(() => new SessionCache(30_001)).toThrow(RangeError);
    expect(() => new SessionCache(30_000)).not.toThrow();
  });

  it('a revocation on this process applies at once and is not undone by a lookup that started before it', () => {
    const cache = new SessionCache();
    cache.set('s1', true, 0);
    cache.forget('s1');
    expect(cache.get('s1', 1)).toBe(false);
    cache.set('s1', true, 2); // the stale lookup lands
    expect(cache.get('s1', 3)).toBe(false);
    expect(cache.get('s1', 10 * 86_400_000)).toBe(false);
  });

  it('stays bounded', () => {
    const cache = new SessionCache(15_000, 3);
    for (const id of ['a', 'b', 'c', 'd']) cache.set(id, true, 0);
    expect(cache.get('a', 1)).toBeUndefined();
    expect(cache.get('d', 1)).toBe(true);
  });
});
