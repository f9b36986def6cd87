// Orbits and their keys: create, list, show, members, invite, join, leave, remove, deliver, rotate.
import { keyFingerprint, type GroupItem, type Member } from '../client';
import { Ctx, UsageError } from './orbital-context';
import { confirm } from './orbital-prompt';

export async function orbitCreate(ctx: Ctx) {
  const name = ctx.positionals.join(' ').trim();
  if (!name) throw new UsageError('missing orbit name');
  const secure = ctx.secure();
  const { group, invite, named } = await secure.createOrbit(name);
  const lines = [`Created orbit "${name}" (${group.id}).`, `Invite code: ${invite.code} (expires ${invite.expires_at}, ${invite.max_uses} use).`];
  if (!named) lines.push('Note: this server cannot rename orbits yet, so the name is stored empty.');
  lines.push(`When someone joins, run: orbital keys deliver ${group.id}`);
  ctx.out(lines, { group, invite, name, named });
}

async function named(ctx: Ctx, groups: GroupItem[]) {
  const secure = ctx.secure();
  return Promise.all(groups.map(async (g) => ({ ...g, name: await secure.orbitName(g) })));
}

/** How an orbit shows when its name cannot be read: no key yet, or no name stored. */
const label = (g: GroupItem & { name: string | null }) => g.name ?? (g.key_status === 'pending' ? '(key pending)' : '(unnamed)');

export async function orbitList(ctx: Ctx) {
  const { items } = await ctx.secure().api.listGroups();
  const rows = await named(ctx, items);
  ctx.out(
    rows.length
      ? rows.map((g) => `${g.id}  ${label(g)}  ${g.role}, ${g.member_count} member${g.member_count === 1 ? '' : 's'}, epoch ${g.key_epoch}, key ${g.key_status}`)
      : ['No orbits yet: orbital orbit create <name>, or orbital join <code>.'],
    { items: rows },
  );
}

export async function orbitShow(ctx: Ctx) {
  const secure = ctx.secure();
  const ref = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const group = await secure.api.getGroup(ref.id);
  const name = await secure.orbitName(group);
  ctx.out(
    [
      `${label({ ...group, name })} — ${group.id}`,
      `role ${group.role}, ${group.member_count}/${group.max_members} members, key epoch ${group.key_epoch} (${group.key_status}), last seq ${group.last_seq}`,
    ],
    { ...group, name },
  );
}

function withFingerprints(members: Member[]) {
  return Promise.all(members.map(async (m) => ({ ...m, fingerprint: await keyFingerprint(m.public_key).catch(() => null) })));
}

export async function orbitMembers(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const members = await withFingerprints((await secure.api.members(group.id)).items);
  ctx.out(
    members.map((m) => `${m.username.padEnd(20)} ${m.role.padEnd(6)} key ${m.key_status.padEnd(9)} ${m.fingerprint ?? '(not an RSA key)'}`),
    { items: members },
  );
}

export async function invite(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const created = await secure.api.createInvite(group.id, {
    ...(ctx.values.uses !== undefined ? { max_uses: ctx.int('uses') } : {}),
    ...(ctx.values.expires !== undefined ? { expires_in_seconds: ctx.int('expires') } : {}),
  });
  ctx.out([`Invite code: ${created.code}`, `Expires ${created.expires_at}; ${created.max_uses} use${created.max_uses === 1 ? '' : 's'}.`], created);
}

export async function join(ctx: Ctx) {
  const secure = ctx.secure();
  const { group, key_status } = await secure.api.joinGroup(ctx.arg(0, 'invite code'));
  const fingerprint = await secure.fingerprint();
  ctx.out(
    [
      `Joined orbit ${group.id}; your key is pending.`,
      `A member now has to deliver the orbit key (orbital keys deliver). Tell them your key fingerprint so they can check it:`,
      `  ${fingerprint}`,
      `Meanwhile you can watch the orbit: orbital watch ${group.id}`,
    ],
    { group, key_status, fingerprint },
  );
}

export async function orbitLeave(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  if (!(await confirm(`Leave orbit ${(await secure.orbitName(group)) ?? group.id}?`, ctx.values.yes === true))) return ctx.out('Stayed.', { left: false });
  await secure.api.removeMember(group.id, secure.identity.userId);
  ctx.out('Left the orbit.', { left: true, group_id: group.id });
}

/** Removes a member, then rotates the orbit key so the removed member cannot read what follows. */
export async function orbitRemove(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const username = ctx.arg(1, 'username');
  const member = (await secure.api.members(group.id)).items.find((m) => m.username.toLowerCase() === username.toLowerCase());
  if (!member) throw new UsageError(`${username} is not a member of this orbit`);
  if (!(await confirm(`Remove ${member.username} from the orbit?`, ctx.values.yes === true))) return ctx.out('Kept.', { removed: false });
  await secure.api.removeMember(group.id, member.user_id);
  let rotation: { key_epoch: number; user_ids: string[] } | { error: string };
  try {
    rotation = await secure.rotate(group.id);
  } catch (err) {
    rotation = { error: err instanceof Error ? err.message : String(err) };
  }
  ctx.out(
    [
      `Removed ${member.username}.`,
      'key_epoch' in rotation ? `Orbit key rotated to epoch ${rotation.key_epoch} for ${rotation.user_ids.length} member(s).` : `Key rotation failed (${rotation.error}); run: orbital keys rotate ${group.id}`,
    ],
    { removed: true, user_id: member.user_id, rotation },
  );
}

/** Wraps the orbit key for pending members, each approved by a person (or --yes in scripts). */
export async function keysDeliver(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  let pending = await secure.pendingMembers(group.id);
  if (ctx.values.user) pending = pending.filter((m) => m.username.toLowerCase() === ctx.values.user!.toLowerCase());
  if (!pending.length) return ctx.out('Nobody is waiting for the key.', { delivered: [], skipped: [] });
  const delivered = [];
  const skipped = [];
  for (const member of pending) {
    const ok = await confirm(
      `${member.username}'s key fingerprint: ${member.fingerprint ?? '(not an RSA-OAEP key: cannot deliver)'}\nSame as ${member.username} sees with "orbital whoami"? Deliver the orbit key to ${member.username}?`,
      ctx.values.yes === true,
    );
    if (!ok || !member.fingerprint) {
      skipped.push({ user_id: member.user_id, username: member.username });
      continue;
    }
    delivered.push(await secure.deliver(group.id, member));
  }
  ctx.out(
    [
      ...delivered.map((d) => (d.already ? `${d.username} already had the key.` : `Delivered epoch${d.key_epochs.length > 1 ? 's' : ''} ${d.key_epochs.join(', ')} to ${d.username}.`)),
      ...skipped.map((s) => `Skipped ${s.username}.`),
    ],
    { delivered, skipped },
  );
}

export async function keysRotate(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const rotation = await secure.rotate(group.id);
  ctx.out(`Orbit key rotated to epoch ${rotation.key_epoch}, wrapped for ${rotation.user_ids.length} member(s).`, rotation);
}
