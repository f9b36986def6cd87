// Rate-limit budgets (windows are fixed; see rate-limit.ts). Password checks slow attackers,
// never lock accounts: a window ends and the budget returns, and what strangers can spend from
// their own addresses never refuses the owner (README "Security model").
import type { Config } from '../config';
import type { Window } from './rate-limit';

const MIN15 = 15 * 60;
const HOUR = 60 * 60;

export const limits = (config: Config) => ({
  // Refused beyond: one username from one address, one address, one account's own sessions.
  passwordFailuresPerUsernameIp: { limit: 10, windowSec: MIN15 } satisfies Window,
  passwordFailuresPerIp: { limit: 50, windowSec: MIN15 } satisfies Window,
  passwordFailuresPerAccount: { limit: 10, windowSec: MIN15 } satisfies Window,
  // Slowed beyond, never refused: from everywhere at once, so strangers cannot lock the owner out.
  passwordFailuresPerUsername: { limit: 10, windowSec: MIN15 } satisfies Window,
  registrationsPerIp: { limit: 30, windowSec: HOUR } satisfies Window,
  registrationsPerUsername: { limit: 10, windowSec: HOUR } satisfies Window,
  refreshesPerIp: { limit: 600, windowSec: MIN15 } satisfies Window,
  failedJoinsPerUser: { limit: 20, windowSec: HOUR } satisfies Window,
  failedJoinsPerIp: { limit: 100, windowSec: HOUR } satisfies Window,
  failedJoinsGlobal: { limit: 5000, windowSec: HOUR } satisfies Window,
  writesPerUser: { limit: 1200, windowSec: 60 } satisfies Window,
  // Enough for two full-size uploads an hour on top of everything else.
  writeBytesPerUser: { limit: 2 * config.MAX_MEDIA_BYTES + 256 * 1024 * 1024, windowSec: HOUR } satisfies Window,
});

export const limitKey = {
  passwordUser: (username: string) => `pw:u:${username.toLowerCase()}`,
  passwordUserIp: (username: string, ip: string) => `pw:ui:${username.toLowerCase()}:${ip}`,
  passwordAccount: (userId: string) => `pw:a:${userId}`,
  passwordIp: (ip: string) => `pw:ip:${ip}`,
  registerIp: (ip: string) => `reg:ip:${ip}`,
  registerUser: (username: string) => `reg:u:${username.toLowerCase()}`,
  refreshIp: (ip: string) => `ref:ip:${ip}`,
  joinUser: (userId: string) => `join:u:${userId}`,
  joinIp: (ip: string) => `join:ip:${ip}`,
  joinGlobal: () => 'join:all',
  writes: (userId: string) => `w:n:${userId}`,
  writeBytes: (userId: string) => `w:b:${userId}`,
};

/** Password checks of a username failing from everywhere beyond its ceiling wait this much more per failure, up to the cap. */
export const PASSWORD_SLOWDOWN = { stepMs: 100, maxMs: 3000 };
