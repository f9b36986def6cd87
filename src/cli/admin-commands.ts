// The admin command's work, one function per command: each returns what it found or did as
// plain data (printed as JSON with --json, as lines otherwise).
import { base64url, randomBytes } from '../domain/bytes';
import { eraseAccount, setPassword } from '../domain/account';
import { runCleanup } from '../domain/cleanup';
import { AppError } from '../domain/errors';
import { listOrbits, listUsers, requireUserNamed, setQuotaLimits } from '../domain/operator';
import { quotaView } from '../domain/quota';
import { AUDIT_ACTIONS, OPERATOR, type AuditAction } from '../domain/audit/record';
import { listAudit } from '../domain/audit/read';
import { createRegistrationCode, listRegistrationCodes, revokeRegistrationCode } from '../domain/registration/codes';
import { storageTotals } from '../domain/storage-stats';
import { revokeOtherSessions } from '../domain/user-sessions';
import type { NodeDeps } from '../runtime/node-deps';

export interface Invocation {
  command: string[];
  yes: boolean;
  bytes?: number;
  files?: number;
  /** registration invite-code: accounts it admits, and its lifetime in seconds. */
  uses?: number;
  expiresSec?: number;
  /** audit: filters. */
  audit?: { user?: string; orbit?: string; action?: string; since?: Date; limit?: number };
  /** Asks before destroying anything; false: stop. */
  confirm(question: string): Promise<boolean>;
}

export type Outcome = { data: unknown; lines: string[] };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class Declined extends Error {}

async function ask(inv: Invocation, question: string): Promise<void> {
  if (!(await inv.confirm(question))) throw new Declined('Nothing changed.');
}

export async function runAdmin(deps: NodeDeps, inv: Invocation): Promise<Outcome> {
  const [group, action, target] = inv.command;
  const now = deps.clock.now();
  const key = `${group ?? ''} ${action ?? ''}`.trim();
  switch (key) {
    case 'users list': {
      const users = await listUsers(deps.db, now);
      return { data: { users }, lines: users.map((u) => `${u.username}\t${u.id}\tcreated ${u.created_at}\torbits ${u.orbits}\tlive sessions ${u.live_sessions}`) };
    }
    case 'users delete': {
      const user = await requireUserNamed(deps.db, need(target, 'a username'));
      await ask(inv, `Delete the account "${user.username}"? Its memberships end and its username is retired.`);
      await eraseAccount(deps, user, OPERATOR);
      return { data: { deleted: user.username, id: user.id }, lines: [`Deleted ${user.username}.`] };
    }
    case 'users reset-password': {
      const user = await requireUserNamed(deps.db, need(target, 'a username'));
      await ask(inv, `Give "${user.username}" a new random password and end all their sessions?`);
      const password = base64url(randomBytes(18));
      await setPassword(deps, user.id, password, OPERATOR);
      return { data: { username: user.username, password }, lines: [`New password for ${user.username}: ${password}`, 'Every session of this account has ended; hand the password over privately.'] };
    }
    case 'sessions revoke': {
      const user = await requireUserNamed(deps.db, need(target, 'a username'));
      await ask(inv, `End every session of "${user.username}"?`);
      const ended = await revokeOtherSessions(deps, user.id, undefined, OPERATOR);
      return { data: { username: user.username, revoked: ended.length }, lines: [`Ended ${ended.length} session(s) of ${user.username}; their sockets close within 30 s.`] };
    }
    case 'orbits list': {
      const orbits = await listOrbits(deps.db);
      return {
        data: { orbits },
        lines: orbits.map((o) => `${o.id}\towner ${o.owner ?? '-'}\tmembers ${o.members}\tbytes ${o.bytes_used}/${o.bytes_limit}\tfiles ${o.files_used}/${o.files_limit}`),
      };
    }
    case 'orbits quota': {
      const id = need(target, 'an orbit id');
      if (!UUID.test(id)) throw new AppError('VALIDATION_ERROR', `"${id}" is not an orbit id.`);
      if (inv.bytes === undefined && inv.files === undefined) throw new AppError('VALIDATION_ERROR', 'Give --bytes <n> and/or --files <n>.');
      const view = quotaView(await setQuotaLimits(deps.db, id, { bytes: inv.bytes, files: inv.files }, now, OPERATOR));
      return { data: { id, quota: view }, lines: [`Orbit ${id}: bytes ${view.bytes_used}/${view.bytes_limit}, files ${view.files_used}/${view.files_limit}.`] };
    }
    case 'storage': {
      const [totals, nextCleanup] = await Promise.all([storageTotals(deps.db), runCleanup({ ...deps, logger: { log: () => {} } }, { dryRun: true, now })]);
      return {
        data: { ...totals, next_cleanup: nextCleanup },
        lines: [
          `Stored: ${totals.bytes_stored} bytes in ${totals.files_stored} files; ${totals.uploads_in_progress} uploads in progress (${totals.bytes_reserved} bytes reserved).`,
          `The next cleanup would remove: ${Object.entries(nextCleanup).map(([k, n]) => `${k} ${n}`).join(', ')}.`,
        ],
      };
    }
    case 'registration invite-code': {
      const code = await createRegistrationCode(deps.db, deps.config.jwtSecret, { now, expiresInSec: inv.expiresSec, maxUses: inv.uses });
      const mode = deps.config.REGISTRATION;
      return {
        data: code,
        lines: [
          `Registration code: ${code.code}`,
          `It admits ${code.max_uses} account(s) until ${code.expires_at}, as invite_code at registration; it is shown only now.`,
          ...(mode === 'invite' ? [] : [`Note: REGISTRATION is "${mode}" on this server, so ${mode === 'open' ? 'anyone may register without a code' : 'nobody may register, code or not'}.`]),
        ],
      };
    }
    case 'registration list': {
      const codes = await listRegistrationCodes(deps.db, now);
      return { data: { codes }, lines: codes.map((c) => `${c.id}	${c.code_hint}…	uses ${c.uses}/${c.max_uses}	expires ${c.expires_at}`) };
    }
    case 'registration revoke': {
      const which = need(target, 'a registration code or its id');
      await ask(inv, `Revoke the registration code ${which}?`);
      const code = await revokeRegistrationCode(deps.db, deps.config.jwtSecret, which, now);
      return { data: { revoked: code.id }, lines: [`Revoked ${code.code_hint}… (${code.id}).`] };
    }
    case 'audit': {
      const f = inv.audit ?? {};
      if (f.action !== undefined && !(AUDIT_ACTIONS as readonly string[]).includes(f.action)) throw new UsageError(`--action is one of ${AUDIT_ACTIONS.join(', ')}.`);
      if (f.orbit !== undefined && !UUID.test(f.orbit)) throw new AppError('VALIDATION_ERROR', `"${f.orbit}" is not an orbit id.`);
      // A deleted account has no name any more: its id still finds its rows.
      const userId = f.user === undefined ? undefined : UUID.test(f.user) ? f.user : (await requireUserNamed(deps.db, f.user)).id;
      const rows = await listAudit(deps.db, { userId, groupId: f.orbit, action: f.action as AuditAction | undefined, since: f.since, limit: f.limit ?? 100 });
      return {
        data: { events: rows },
        lines: rows.map(
          (r) => `${r.at}\t${r.action}\tby ${r.via === 'admin' ? 'operator' : (r.actor_id ?? '-')}\ton ${r.target_id ?? '-'}\torbit ${r.group_id ?? '-'}\t${r.detail ?? ''}\t${r.address ?? ''}`,
        ),
      };
    }
    default:
      throw new UsageError(key ? `Unknown command "${inv.command.join(' ')}".` : 'Give a command.');
  }
}

export class UsageError extends Error {}

function need(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`Give ${what}.`);
  return value;
}
