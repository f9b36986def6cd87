// The signed-in caller and the address it called from: what the audit trail records of an action.
import type { Context } from 'hono';
import { byUser, type Witness } from '../domain/audit/record';
import type { AppEnv } from './env';

export const witness = (c: Context<AppEnv>): Witness => byUser(c.get('auth').userId, c.get('deps').clientIp(c));
