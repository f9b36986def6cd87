// The gate of every write in an orbit. A removed member's write must not land after their
// `member_left`, and a member whose key is pending may not write: so the membership (and key)
// check is made under a lock on the orbit row that orders the write against every change that
// can take the right to write away. Those changes all go through lockGroup (FOR UPDATE, and it
// bumps groups.roster_version); a writer holds FOR KEY SHARE (or, taking a seq, the row's update
// lock), which makes such a change wait for the write's commit, or the write for the change's.
//
// One statement locks the row and reads the membership. In READ COMMITTED that read uses the
// statement's snapshot, which can predate a change the lock waited for: then the locked row's
// roster_version differs from the one the snapshot saw, the statement matches nothing, and the
// gate reads the membership again in a fresh statement while it holds the lock. Concurrent
// writes (which leave the roster alone) never take that second round trip.
import { sql, type Placeholder, type SQL } from 'drizzle-orm';
import { groupMembers, groups, memberKeys } from '../db/schema';
import type { Executor } from '../deps';
import { statement } from '../db/statement';
import { AppError, noSuchOrbit } from './errors';
import { requireMember, type Membership, type Role } from './groups';

export interface GateOptions {
  /** A member whose key is pending may pass (delivering its own key); default: 403 KEY_PENDING. */
  pending?: boolean;
}

/**
 * Whether `userId` is a member of the orbit `groupId` (an SQL expression) holding its current key:
 * for writes made in one statement whose own row locks order them against removal (a chunk).
 */
export function holdsCurrentKey(groupId: SQL, userId: string | Placeholder): SQL {
  return sql`exists (select 1 from ${groupMembers} hm
    join ${groups} hg on hg.id = hm.group_id
    join ${memberKeys} hk on hk.group_id = hm.group_id and hk.user_id = hm.user_id and hk.key_epoch = hg.key_epoch
    where hm.group_id = ${groupId} and hm.user_id = ${userId})`;
}

const user = sql.placeholder('user');
const group = sql.placeholder('group');

/** The caller's membership as seen from the orbit row `g`. */
const memberColumns = sql`
  g.key_epoch,
  (select m.role from ${groupMembers} m where m.group_id = g.id and m.user_id = ${user}) as role,
  (select (extract(epoch from m.joined_at) * 1000)::float8 from ${groupMembers} m where m.group_id = g.id and m.user_id = ${user}) as joined_ms,
  exists (select 1 from ${memberKeys} k where k.group_id = g.id and k.user_id = ${user} and k.key_epoch = g.key_epoch) as has_key`;

/** The roster version the statement's snapshot saw (a mismatch with the locked row: see above). */
const sameRoster = sql`g.roster_version = (select s.roster_version from ${groups} s where s.id = ${group})`;

interface GateRow {
  key_epoch: number;
  role: Role | null;
  joined_ms: number | null;
  has_key: boolean;
  seq?: number | string;
}

// Built once (src/db/statement.ts): every write in an orbit runs one of these.
const shareGate = statement<GateRow>(() => sql`select ${memberColumns} from ${groups} g where g.id = ${group} and ${sameRoster} for key share of g`);
const shareRow = statement<unknown>(() => sql`select 1 from ${groups} g where g.id = ${group} for key share`);
const appendGate = statement<GateRow>(
  () => sql`update ${groups} g set last_seq = g.last_seq + 1 where g.id = ${group} and ${sameRoster}
      returning g.last_seq as seq, ${memberColumns}`,
);
const takeSeq = statement<{ seq: number | string }>(() => sql`update ${groups} g set last_seq = g.last_seq + 1 where g.id = ${group} returning g.last_seq as seq`);

/** A write that appends no event (or appends one later): FOR KEY SHARE on the orbit row. */
export async function enterWrite(tx: Executor, groupId: string, userId: string, options: GateOptions = {}): Promise<Membership> {
  const [row] = await shareGate.run(tx, { group: groupId, user: userId });
  if (row) return admit(groupId, userId, row, options);
  const [locked] = await shareRow.run(tx, { group: groupId });
  if (!locked) throw noSuchOrbit();
  return admitMember(await requireMember(tx, groupId, userId), options);
}

/** A write that appends an event: takes the orbit's next seq (and its row lock) with the check. */
export async function enterAppend(tx: Executor, groupId: string, userId: string, options: GateOptions = {}): Promise<{ member: Membership; seq: number }> {
  const [row] = await appendGate.run(tx, { group: groupId, user: userId });
  if (row) return { member: admit(groupId, userId, row, options), seq: Number(row.seq) };
  const [taken] = await takeSeq.run(tx, { group: groupId });
  if (!taken) throw noSuchOrbit();
  // Any error below rolls the transaction back, and with it the seq: the log stays gap-free.
  return { member: admitMember(await requireMember(tx, groupId, userId), options), seq: Number(taken.seq) };
}

/** A catch handler: "no such orbit" told as "no such <what the caller asked for>" (one not in it). */
export const notFoundAs = (message: string) => (err: unknown): never => {
  throw err instanceof AppError && err.code === 'NOT_FOUND' ? new AppError('NOT_FOUND', message) : err;
};

function admit(groupId: string, userId: string, row: GateRow, options: GateOptions): Membership {
  if (!row.role || row.joined_ms === null) throw noSuchOrbit();
  const member: Membership = {
    groupId,
    userId,
    role: row.role,
    joinedAt: new Date(Number(row.joined_ms)),
    keyEpoch: Number(row.key_epoch),
    hasKey: Boolean(row.has_key),
  };
  return admitMember(member, options);
}

function admitMember(member: Membership, options: GateOptions): Membership {
  if (!options.pending) requireKey(member);
  return member;
}

/** 403 KEY_PENDING unless the member holds the current key (for checks made after a role check). */
export function requireKey(member: Membership): Membership {
  if (!member.hasKey) throw new AppError('KEY_PENDING');
  return member;
}
