// What members write and read: threads, replies, relay messages, files, live events.
import { existsSync, renameSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { downloadEncryptedFile, openMediaMetadata, paginate, subscribe, uploadEncryptedFile, type OrbitEvent, type Reply } from '../client';
import { Ctx, UsageError } from './orbital-context';
import { readStdin } from './orbital-prompt';

const TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.mp4': 'video/mp4',
  '.mp3': 'audio/mpeg',
  '.zip': 'application/zip',
  '.json': 'application/json',
};

const when = (iso: string) => iso.replace('T', ' ').slice(0, 16);
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

export async function post(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const title = ctx.values.title ?? ctx.positionals.slice(1).join(' ');
  if (!title) throw new UsageError('missing --title');
  const body = ctx.values.body === '-' ? await readStdin() : (ctx.values.body ?? '');
  const thread = await secure.postThread(group.id, title, body);
  ctx.out(`Posted thread ${thread.id}.`, thread);
}

export async function threads(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const page = await secure.api.listThreads(group.id, { limit: ctx.int('limit', 20) });
  const items = await Promise.all(page.items.map(async (t) => ({ ...t, ...(await secure.readThread(t)) })));
  ctx.out(
    items.length
      ? items.map((t) => `${t.id}  ${t.title ?? '(cannot decrypt)'}  — ${t.author_username ?? 'deleted user'}, ${when(t.created_at)}, ${t.reply_count} repl${t.reply_count === 1 ? 'y' : 'ies'}`)
      : ['No threads yet.'],
    { items, next_cursor: page.next_cursor },
  );
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A thread id, or a prefix of one (at least 4 characters) among the threads of the caller's orbits. */
async function resolveThread(secure: ReturnType<Ctx['secure']>, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  if (!/^[0-9a-f-]{4,35}$/i.test(ref)) throw new UsageError(`"${ref}" is not a thread id or an id prefix of 4 or more characters`);
  const found = new Set<string>();
  for (const orbit of (await secure.api.listGroups()).items) {
    for await (const thread of paginate((cursor) => secure.api.listThreads(orbit.id, { cursor, limit: 100 }))) {
      if (thread.id.startsWith(ref.toLowerCase())) found.add(thread.id);
    }
  }
  if (found.size === 1) return [...found][0]!;
  throw new UsageError(found.size ? `"${ref}" starts ${found.size} thread ids; type more of it` : `no thread id starts with "${ref}" in your orbits`);
}

export async function replies(ctx: Ctx) {
  const secure = ctx.secure();
  const thread = await secure.api.getThread(await resolveThread(secure, ctx.arg(0, 'thread id')));
  const opened = await secure.readThread(thread);
  const limit = ctx.int('limit', 500)!;
  const items: (Reply & { text: string | null })[] = [];
  for await (const reply of paginate((cursor) => secure.api.listReplies(thread.id, { cursor, limit: 100 }))) {
    items.push({ ...reply, text: reply.deleted ? null : await secure.readReply(reply) });
    if (items.length >= limit) break;
  }
  ctx.out(
    [
      `# ${opened.title ?? '(cannot decrypt)'}  (${thread.author_username ?? 'deleted user'}, ${when(thread.created_at)})`,
      ...(opened.body ? [opened.body] : []),
      ...items.map((r) => `  ${r.author_username ?? 'deleted user'} (${when(r.created_at)}): ${r.deleted ? '[deleted]' : (r.text ?? '(cannot decrypt)')}`),
    ],
    { thread: { ...thread, ...opened }, items },
  );
}

export async function reply(ctx: Ctx) {
  const secure = ctx.secure();
  const text = ctx.values.body === '-' ? await readStdin() : ctx.positionals.slice(1).join(' ');
  if (!text) throw new UsageError('missing reply text');
  const created = await secure.reply(await resolveThread(secure, ctx.arg(0, 'thread id')), text, ctx.values.parent);
  ctx.out(`Replied (${created.id}).`, created);
}

export async function send(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const text = ctx.values.body === '-' ? await readStdin() : ctx.positionals.slice(1).join(' ');
  if (!text) throw new UsageError('missing message text');
  const sent = await secure.sendText(group.id, text);
  ctx.out(`Sent (seq ${sent.seq}).`, sent);
}

export async function messages(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const page = await secure.api.listMessages(group.id, { after_seq: ctx.int('after'), limit: ctx.int('limit') });
  const names = new Map((await secure.api.members(group.id)).items.map((m) => [m.user_id, m.username]));
  const items = await Promise.all(page.items.map(async (m) => ({ ...m, text: await secure.readMessage(group.id, m) })));
  const sender = (id: string | null) => (id ? (names.get(id) ?? id.slice(0, 8)) : 'deleted user');
  ctx.out(
    items.length ? items.map((m) => `[${m.seq}] ${when(m.server_timestamp)} ${sender(m.sender_id)}: ${m.text ?? '(cannot decrypt)'}`) : ['No messages.'],
    { items, next_after_seq: page.next_after_seq },
  );
}

export async function upload(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const path = ctx.arg(1, 'file');
  const cipher = await secure.currentCipher(group.id);
  const name = ctx.values.name ?? basename(path);
  let bar: ReturnType<Ctx['progress']>;
  let started = false;
  const result = await uploadEncryptedFile(secure.api, {
    cipher,
    path,
    name,
    type: ctx.values.type ?? TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
    threadId: ctx.values.thread,
    concurrency: ctx.int('concurrency', 4),
    journal: ctx.home.journal(group.id, path),
    onProgress: (p) => {
      if (!started && p.chunksDone > 0) ctx.note(`Resuming the upload of ${name}: ${p.chunksDone} of ${p.chunkCount} chunks (${mib(p.sentBytes)} of ${mib(p.totalBytes)}) are already on the server.`);
      started = true;
      bar ??= ctx.progress(`upload ${name}`, p.totalBytes);
      bar?.update(p.sentBytes);
    },
  });
  bar?.finish();
  ctx.out(`Uploaded ${name} as ${result.media.id}${result.resumed ? ' (resumed)' : ''}; kept until ${result.media.expires_at}.`, { ...result.media, name, resumed: result.resumed });
}

export async function files(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const page = await secure.api.listMedia(group.id, { limit: ctx.int('limit') });
  const items = await Promise.all(page.items.map(async (m) => ({ ...m, file: await secure.readMediaName(m) })));
  ctx.out(
    items.length ? items.map((m) => `${m.id}  ${m.file?.name ?? '(cannot decrypt)'}  ${m.file?.size ?? '?'} bytes, until ${when(m.expires_at)}`) : ['No files.'],
    { items, next_cursor: page.next_cursor },
  );
}

/** A name from someone else's metadata, made safe to create in the current folder. */
function safeName(name: string): string {
  const cleaned = basename(name.replace(/\\/g, '/')).replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return cleaned && cleaned !== '.' && cleaned !== '..' ? cleaned : 'download.bin';
}

export async function download(ctx: Ctx) {
  const secure = ctx.secure();
  const info = await secure.api.mediaInfo(ctx.arg(0, 'media id'));
  const metadata = await openMediaMetadata(info, await secure.cipher(info.group_id, info.key_epoch));
  // The folder the command was typed in (npm sets INIT_CWD when it runs us from elsewhere).
  const out = resolve(ctx.env.INIT_CWD || process.cwd(), ctx.values.out ?? safeName(metadata.name));
  if (existsSync(out) && !ctx.values.force) throw new UsageError(`${out} exists; pass --force to replace it or --out for another name`);
  const partial = `${out}.part`;
  let bar: ReturnType<Ctx['progress']>;
  await downloadEncryptedFile(secure.api, info, metadata, partial, {
    onProgress: (p) => {
      if (!bar && p.receivedBytes > 0) ctx.note(`Resuming the download from ${partial}: ${mib(p.receivedBytes)} of ${mib(metadata.size)} already here.`);
      bar ??= ctx.progress(`download ${basename(out)}`, p.totalBytes);
      bar?.update(p.receivedBytes);
    },
  });
  bar?.finish();
  renameSync(partial, out);
  ctx.out(`Saved ${out} (${metadata.size} bytes, ${metadata.type}).`, { path: out, name: metadata.name, type: metadata.type, size: metadata.size, media_id: info.id });
}

/** Membership events read as sentences: "alice removed bob", not "alice: member_left". */
function memberSentence(event: OrbitEvent, who: string, nameOf: (id: unknown) => string): string | undefined {
  const data = event.data as { user_id?: string; reason?: string; key_epoch?: number; key_epochs?: number[] };
  const member = nameOf(data.user_id);
  switch (event.type) {
    case 'member_joined':
      return `${member} joined`;
    case 'member_left':
      return data.reason === 'removed' ? `${who} removed ${member}` : data.reason === 'deleted' ? `${member} left (account deleted)` : `${member} left`;
    case 'member_key_delivered':
      return data.user_id === event.actor_id ? `${member} unlocked the orbit key` : `${who} delivered the orbit key to ${member}`;
    case 'member_key_reset':
      return `${member} has a new key pair; a member has to deliver the orbit key again`;
    case 'key_rotated':
      return `${who} rotated the orbit key${data.key_epoch ? ` (epoch ${data.key_epoch})` : ''}`;
    default:
      return undefined;
  }
}

export async function watch(ctx: Ctx) {
  const secure = ctx.secure();
  const group = await secure.resolveOrbit(ctx.arg(0, 'orbit'));
  const count = ctx.int('count');
  const names = new Map<string, string>();
  const refreshNames = async () => {
    for (const m of (await secure.api.members(group.id)).items) names.set(m.user_id, m.username);
  };
  await refreshNames();
  let seen = 0;
  const nameOf = (id: unknown) => (typeof id === 'string' ? (names.get(id) ?? id.slice(0, 8)) : 'someone');
  const line = (event: OrbitEvent & { text?: string | null }) => {
    const who = event.actor_id ? nameOf(event.actor_id) : 'server';
    const sentence = memberSentence(event, who, nameOf);
    if (sentence) return `[${event.seq}] ${sentence}`;
    const text = event.text === undefined ? '' : event.text === null ? ' (cannot decrypt)' : ` "${event.text}"`;
    return `[${event.seq}] ${who}: ${event.type}${text}`;
  };
  const sub = subscribe(secure.api, group.id, {
    afterSeq: ctx.int('after'),
    onReady: (seq) => (ctx.json ? ctx.out('', { type: 'ready', seq }) : ctx.note(`Watching (caught up at seq ${seq}); Ctrl-C to stop.`)),
    onResync: (seq) => (ctx.json ? ctx.out('', { type: 'resync_required', seq }) : ctx.note(`Missed too much to replay; reload with orbital threads. Continuing after seq ${seq}.`)),
    onStatus: (status, detail) => {
      if (status === 'reconnecting') ctx.note(`Connection lost${detail?.code ? ` (${detail.code})` : ''}; reconnecting in ${Math.round((detail?.retryInMs ?? 0) / 1000)} s…`);
    },
    onEvent: async (event) => {
      // Joins carry the name: kept, so a member removed since still has one in the replay.
      const who = event.data as { user_id?: unknown; username?: unknown };
      if (typeof who.user_id === 'string' && typeof who.username === 'string') names.set(who.user_id, who.username);
      else if (event.type === 'member_joined') await refreshNames();
      const described = await secure.describeEvent(event);
      ctx.out(line(described), described);
      if (count !== undefined && ++seen >= count) sub.close();
    },
  });
  const stop = () => sub.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const closed = await sub.closed;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (closed.code !== 1000) throw new Error(`live events ended: ${closed.reason}`);
}
