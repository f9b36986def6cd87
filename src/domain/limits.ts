// Rate-limit budgets (windows are fixed; see rate-limit.ts). Password checks slow attackers,
// never lock accounts: a window ends and the budget returns.
import type { Config } from '../config';
import type { Window } from './rate-limit';

const MIN15 = 15 * 60;
const HOUR = 60 * 60;

export const limits = (config: Config) => ({
  passwordFailuresPerUsername: { limit: 10, windowSec: MIN15 } satisfies Window,
  passwordFailuresPerIp: { limit: 50, windowSec: MIN15 } satisfies Window,
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
