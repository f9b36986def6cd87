// End-to-end encryption on top of the typed client (Client profile v1): everything that leaves
// here is ciphertext, everything that comes back is opened with keys the server never sees.
import type { OrbitalClient } from './api';
import { DecryptError, OrbitCipher, generateUserKeys, importPrivateKey, keyCheck, keyFingerprint, newOrbitKey, unwrapOrbitKey, wrapOrbitKey, type UserKeys } from './crypto';
import { ApiError } from './errors';
import type { AuthResult, Group, GroupItem, Member, MediaInfo, OrbitEvent, PublicJwk, RelayMessage, Reply, Thread } from './types';

export interface Identity {
  userId: string;
  username: string;
  keys: UserKeys;
}

/** A member of the orbit holds no key for this epoch yet. */
export class KeyMissingError extends Error {
  override name = 'KeyMissingError';
  constructor(
    readonly groupId: string,
    readonly epoch: number,
  ) {
    super(`no orbit key for epoch ${epoch} yet: a member has to deliver it (orbital keys deliver)`);
  }
}

export interface DeliveryResult {
  user_id: string;
  username: string;
  key_epochs: number[];
  already: boolean;
}

export class SecureClient {
  private privateKey: Promise<CryptoKey> | undefined;
  private readonly ciphers = new Map<string, Promise<OrbitCipher>>();

  constructor(
    readonly api: OrbitalClient,
    readonly identity: Identity,
  ) {}

  /** A new account with a new key pair (RSA-OAEP 3072): the private half never leaves this process. */
  static async register(api: OrbitalClient, body: { username: string; password: string; invite_code?: string }): Promise<{ secure: SecureClient; auth: AuthResult }> {
    const keys = await generateUserKeys();
    const auth = await api.register({ ...body, public_key: keys.publicJwk as PublicJwk });
    return { secure: new SecureClient(api, { userId: auth.user.id, username: auth.user.username, keys }), auth };
  }

  fingerprint(): Promise<string> {
    return keyFingerprint(this.identity.keys.publicJwk);
  }

  private key(): Promise<CryptoKey> {
    this.privateKey ??= importPrivateKey(this.identity.keys.privateJwk);
    return this.privateKey;
  }

  // ---------- orbit keys ----------

  /** The orbit key of an epoch (default: the current one), checked against key_check when it is the current epoch. */
  async orbitKey(groupId: string, epoch?: number, group?: Group | GroupItem): Promise<{ raw: Uint8Array; epoch: number }> {
    group ??= await this.api.getGroup(groupId);
    const wanted = epoch ?? group.key_epoch;
    let wrapped = wanted === group.key_epoch ? group.encrypted_group_key : null;
    if (!wrapped) wrapped = (await this.api.myKeys(groupId)).items.find((k) => k.key_epoch === wanted)?.encrypted_group_key ?? null;
    if (!wrapped) throw new KeyMissingError(groupId, wanted);
    const raw = await unwrapOrbitKey(wrapped, await this.key());
    const check = 'key_check' in group ? group.key_check : null;
    if (wanted === group.key_epoch && check && (await keyCheck(raw)) !== check) throw new DecryptError('the orbit key does not match the orbit’s key_check');
    return { raw, epoch: wanted };
  }

  cipher(groupId: string, epoch?: number): Promise<OrbitCipher> {
    if (epoch === undefined) return this.currentCipher(groupId);
    const id = `${groupId}:${epoch}`;
    let found = this.ciphers.get(id);
    if (!found) {
      found = this.orbitKey(groupId, epoch).then(({ raw }) => OrbitCipher.create(groupId, epoch, raw));
      found.catch(() => this.ciphers.delete(id));
      this.ciphers.set(id, found);
    }
    return found;
  }

  /** The cipher of the orbit's current epoch (asks the server which epoch that is). */
  async currentCipher(groupId: string): Promise<OrbitCipher> {
    const group = await this.api.getGroup(groupId);
    const id = `${groupId}:${group.key_epoch}`;
    if (!this.ciphers.has(id)) {
      const made = this.orbitKey(groupId, group.key_epoch, group).then(({ raw }) => OrbitCipher.create(groupId, group.key_epoch, raw));
      made.catch(() => this.ciphers.delete(id));
      this.ciphers.set(id, made);
    }
    return this.ciphers.get(id)!;
  }

  /** Opens a field, or null when this member cannot (no key for that epoch, or not profile v1). */
  async tryOpen(groupId: string, epoch: number, kind: Parameters<OrbitCipher['open']>[0], field: string | null | undefined): Promise<string | null> {
    if (!field) return null;
    try {
      return await (await this.cipher(groupId, epoch)).open(kind, field);
    } catch (err) {
      if (err instanceof DecryptError || err instanceof KeyMissingError) return null;
      throw err;
    }
  }

  // ---------- orbits ----------

  /**
   * Creates an orbit named `name`. The name's associated data holds the orbit id, which only exists
   * once the server answers: the orbit is created with an empty sealed name, then renamed (PATCH).
   */
  async createOrbit(name: string): Promise<{ group: Group; invite: { code: string | null; expires_at: string; max_uses: number }; named: boolean }> {
    const orbitKey = newOrbitKey();
    const placeholder = await OrbitCipher.create('', 1, orbitKey);
    const { group, invite } = await this.api.createGroup({
      encrypted_name: await placeholder.seal('name', ''),
      encrypted_group_key: await wrapOrbitKey(orbitKey, this.identity.keys.publicJwk),
      key_check: await keyCheck(orbitKey),
    });
    const cipher = await OrbitCipher.create(group.id, group.key_epoch, orbitKey);
    this.ciphers.set(`${group.id}:${group.key_epoch}`, Promise.resolve(cipher));
    try {
      const renamed = await this.api.renameGroup(group.id, await cipher.seal('name', name));
      return { group: renamed, invite, named: true };
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return { group, invite, named: false };
      throw err;
    }
  }

  /**
   * The orbit's name. It is sealed under the epoch current when it was last set (the server does not
   * record which), so after a rotation older epochs are tried too.
   */
  async orbitName(group: Pick<GroupItem, 'id' | 'key_epoch' | 'encrypted_name'>): Promise<string | null> {
    for (let epoch = group.key_epoch; epoch >= 1; epoch--) {
      const name = await this.tryOpen(group.id, epoch, 'name', group.encrypted_name);
      if (name !== null) return name;
      if (epoch === group.key_epoch && !(await this.holdsEpoch(group.id, epoch - 1))) return null;
    }
    return null;
  }

  private async holdsEpoch(groupId: string, epoch: number): Promise<boolean> {
    if (epoch < 1) return false;
    try {
      await this.cipher(groupId, epoch);
      return true;
    } catch (err) {
      if (err instanceof KeyMissingError || err instanceof DecryptError || (err instanceof ApiError && err.status === 404)) return false;
      throw err;
    }
  }

  /** Finds an orbit by id, id prefix (4+ characters) or its decrypted name. */
  async resolveOrbit(ref: string): Promise<GroupItem> {
    const { items } = await this.api.listGroups();
    const exact = items.find((g) => g.id === ref);
    if (exact) return exact;
    const named: GroupItem[] = [];
    for (const g of items) if ((await this.orbitName(g))?.toLowerCase() === ref.toLowerCase()) named.push(g);
    const byPrefix = ref.length >= 4 ? items.filter((g) => g.id.startsWith(ref.toLowerCase())) : [];
    const found = named.length ? named : byPrefix;
    if (found.length === 1) return found[0]!;
    throw new Error(found.length ? `"${ref}" names ${found.length} orbits; use the id` : `no orbit "${ref}" among yours`);
  }

  // ---------- members and keys ----------

  async pendingMembers(groupId: string): Promise<(Member & { fingerprint: string | null })[]> {
    const { items } = await this.api.members(groupId);
    const pending = items.filter((m) => m.key_status === 'pending' && m.user_id !== this.identity.userId);
    return Promise.all(pending.map(async (m) => ({ ...m, fingerprint: await keyFingerprint(m.public_key).catch(() => null) })));
  }

  /** The epochs this member can pass on: all it holds (so newcomers read the history), or at least the current one. */
  private async heldKeys(groupId: string): Promise<{ epoch: number; raw: Uint8Array }[]> {
    const group = await this.api.getGroup(groupId);
    let epochs = [group.key_epoch];
    try {
      epochs = (await this.api.myKeys(groupId)).items.map((k) => k.key_epoch);
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 405))) throw err;
    }
    const out = [];
    for (const epoch of epochs.sort((a, b) => a - b)) out.push({ epoch, raw: (await this.orbitKey(groupId, epoch, group)).raw });
    return out;
  }

  /**
   * Wraps the orbit keys for a pending member. Callers must have a person approve this first (compare
   * the member's key fingerprint): a key given to the wrong account opens everything.
   */
  async deliver(groupId: string, member: Pick<Member, 'user_id' | 'username' | 'public_key'>): Promise<DeliveryResult> {
    if (member.public_key.kty !== 'RSA') throw new Error(`${member.username} has no RSA-OAEP key (profile v1); cannot wrap for it`);
    const held = await this.heldKeys(groupId);
    const wrap = async (keys: typeof held) =>
      Promise.all(keys.map(async (k) => ({ key_epoch: k.epoch, encrypted_group_key: await wrapOrbitKey(k.raw, member.public_key as JsonWebKey) })));
    const attempts = held.length > 1 ? [held, held.slice(-1)] : [held];
    for (const keys of attempts) {
      try {
        await this.api.deliverKeys(groupId, member.user_id, await wrap(keys));
        return { user_id: member.user_id, username: member.username, key_epochs: keys.map((k) => k.epoch), already: false };
      } catch (err) {
        // Some epoch was delivered already (a key is never overwritten): try the current one alone.
        if (!(err instanceof ApiError && err.code === 'CONFLICT')) throw err;
      }
    }
    return { user_id: member.user_id, username: member.username, key_epochs: [], already: true };
  }

  /**
   * Rotation after a member left or was removed: a new orbit key for epoch + 1, wrapped for exactly
   * the members holding the current key. The server names the expected set when ours is stale.
   */
  async rotate(groupId: string): Promise<{ key_epoch: number; user_ids: string[] }> {
    const group = await this.api.getGroup(groupId);
    if (group.role !== 'owner') throw new ApiError(403, 'FORBIDDEN', 'Only the owner rotates the orbit key.', '');
    const orbitKey = newOrbitKey();
    const check = await keyCheck(orbitKey);
    const members = (await this.api.members(groupId)).items;
    let holders = members.filter((m) => m.key_status === 'delivered').map((m) => ({ user_id: m.user_id, public_key: m.public_key }));
    for (let attempt = 0; ; attempt++) {
      const keys = await Promise.all(holders.map(async (h) => ({ user_id: h.user_id, encrypted_group_key: await wrapOrbitKey(orbitKey, h.public_key as JsonWebKey) })));
      try {
        await this.api.rotateKeys(groupId, { key_epoch: group.key_epoch + 1, keys, key_check: check });
        break;
      } catch (err) {
        const expected = err instanceof ApiError && err.code === 'CONFLICT' ? (err.details.expected_user_ids as string[] | undefined) : undefined;
        if (!expected || attempt > 0) throw err;
        holders = await Promise.all(
          expected.map(async (id) => members.find((m) => m.user_id === id) ?? { user_id: id, public_key: (await this.api.userPublicKey(id)).public_key }),
        );
      }
    }
    const epoch = group.key_epoch + 1;
    const cipher = OrbitCipher.create(groupId, epoch, orbitKey);
    this.ciphers.set(`${groupId}:${epoch}`, cipher);
    // Re-seal the name under the new key, so members who only ever get the new epoch can read it.
    const name = await this.tryOpen(groupId, group.key_epoch, 'name', group.encrypted_name);
    if (name !== null) await this.api.renameGroup(groupId, await (await cipher).seal('name', name)).catch(() => undefined);
    return { key_epoch: epoch, user_ids: holders.map((h) => h.user_id) };
  }

  // ---------- threads, replies, messages ----------

  async postThread(groupId: string, title: string, body: string): Promise<Thread> {
    const cipher = await this.currentCipher(groupId);
    return this.api.createThread({ group_id: groupId, key_epoch: cipher.epoch, encrypted_title: await cipher.seal('title', title), encrypted_body: await cipher.seal('body', body) });
  }

  async readThread(thread: Pick<Thread, 'group_id' | 'key_epoch' | 'encrypted_title' | 'encrypted_body'>): Promise<{ title: string | null; body: string | null }> {
    return {
      title: await this.tryOpen(thread.group_id, thread.key_epoch, 'title', thread.encrypted_title),
      body: await this.tryOpen(thread.group_id, thread.key_epoch, 'body', thread.encrypted_body),
    };
  }

  async reply(threadId: string, text: string, parentReplyId?: string): Promise<Reply> {
    const thread = await this.api.getThread(threadId);
    const cipher = await this.currentCipher(thread.group_id);
    return this.api.createReply(threadId, { key_epoch: cipher.epoch, encrypted_body: await cipher.seal('reply', text), ...(parentReplyId ? { parent_reply_id: parentReplyId } : {}) });
  }

  readReply(reply: Pick<Reply, 'group_id' | 'key_epoch' | 'encrypted_body'>): Promise<string | null> {
    return this.tryOpen(reply.group_id, reply.key_epoch, 'reply', reply.encrypted_body);
  }

  /** A relay message for every member of the orbit. */
  async sendText(groupId: string, text: string) {
    const cipher = await this.currentCipher(groupId);
    return this.api.sendMessage(groupId, { key_epoch: cipher.epoch, envelope: await cipher.seal('envelope', text) });
  }

  /** Relay messages carry no epoch in lists: try the given one, then the current epoch and the older ones. */
  async readMessage(groupId: string, message: Pick<RelayMessage, 'envelope' | 'key_epoch'>): Promise<string | null> {
    if (!message.envelope) return null;
    const group = await this.api.getGroup(groupId);
    const epochs = [message.key_epoch, ...Array.from({ length: group.key_epoch }, (_, i) => group.key_epoch - i)].filter((e): e is number => typeof e === 'number');
    for (const epoch of new Set(epochs)) {
      const text = await this.tryOpen(groupId, epoch, 'envelope', message.envelope);
      if (text !== null) return text;
    }
    return null;
  }

  async readMediaName(info: Pick<MediaInfo, 'group_id' | 'key_epoch' | 'encrypted_metadata'>): Promise<{ name: string; type: string; size: number } | null> {
    try {
      const meta = await (await this.cipher(info.group_id, info.key_epoch)).openMetadata(info.encrypted_metadata);
      return { name: meta.name, type: meta.type, size: meta.size };
    } catch (err) {
      if (err instanceof DecryptError || err instanceof KeyMissingError || err instanceof SyntaxError) return null;
      throw err;
    }
  }

  // ---------- events ----------

  /** An event with what this member can decrypt of it: the thread title, a reply, a message, a file name. */
  async describeEvent(event: OrbitEvent): Promise<OrbitEvent & { text?: string | null }> {
    const data = event.data ?? {};
    const object = (data.thread ?? data.reply ?? data.message ?? data.media ?? data) as Record<string, any>;
    const epoch = typeof object.key_epoch === 'number' ? object.key_epoch : undefined;
    let text: string | null | undefined;
    switch (event.type) {
      case 'thread_created':
        text = epoch === undefined ? null : await this.tryOpen(event.group_id, epoch, 'title', object.encrypted_title);
        break;
      case 'reply_created':
        text = epoch === undefined ? null : await this.tryOpen(event.group_id, epoch, 'reply', object.encrypted_body);
        break;
      case 'message_created':
        text = await this.readMessage(event.group_id, { envelope: object.envelope ?? null, key_epoch: epoch });
        break;
      case 'media_uploaded':
        text = epoch === undefined || !object.encrypted_metadata ? null : ((await this.readMediaName({ group_id: event.group_id, key_epoch: epoch, encrypted_metadata: object.encrypted_metadata }))?.name ?? null);
        break;
      case 'group_updated':
        if (object.encrypted_name) text = await this.orbitName({ id: event.group_id, key_epoch: epoch ?? (await this.api.getGroup(event.group_id)).key_epoch, encrypted_name: object.encrypted_name });
        break;
      default:
        break;
    }
    return text === undefined ? event : { ...event, text };
  }
}
