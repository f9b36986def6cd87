// Rate-limit refusals by the limit's name (passwordUser, joinIp, writes …), never its key: keys
// carry usernames, user ids and addresses.
import { limitKey } from './limits';

const MARK = '\u0000';
// Each key builder's fixed prefix, longest first so 'join:all' is not taken for another.
const PREFIXES = Object.entries(limitKey)
  .map(([name, build]) => [(build as (id: string) => string)(MARK).split(MARK)[0]!, name] as const)
  .sort((a, b) => b[0].length - a[0].length);

export function limitName(key: string): string {
  return PREFIXES.find(([prefix]) => key.startsWith(prefix))?.[1] ?? 'other';
}

const refusedBy = new WeakMap<object, { limit: string; resetAt: Date }>();

/** Remembers which limit a RATE_LIMITED error stands for, and when its window ends. */
export function tagRefusal<E extends object>(error: E, key: string, resetAt: Date): E {
  refusedBy.set(error, { limit: limitName(key), resetAt });
  return error;
}

const refusal = (error: unknown) => (typeof error === 'object' && error !== null ? refusedBy.get(error) : undefined);

export function refusalLimit(error: unknown): string {
  return refusal(error)?.limit ?? 'other';
}

/** When the refusing limit's window ends (null for an untagged refusal). */
export function refusalResetAt(error: unknown): Date | null {
  return refusal(error)?.resetAt ?? null;
}
