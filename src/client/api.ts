// The typed client: one method per call of API.md, in the contract's order. Ciphertext in and out
// (see crypto.ts for Client profile v1); helpers for uploads, downloads and live events build on it.
import { Transport, type TokenPair, type TransportOptions } from './http';
import type {
  AuthResult,
  ChunkReceipt,
  CreateGroupBody,
  CreateInviteBody,
  CreateReplyBody,
  CreateThreadBody,
  EventPage,
  Group,
  GroupItem,
  GroupKey,
  Invite,
  KeyDelivery,
  ListQuery,
  LiveTicket,
  MediaInfo,
  Member,
  MessagePage,
  MessageSent,
  Page,
  PublicJwk,
  Quota,
  RegisterBody,
  Reply,
  RotateKeysBody,
  SendMessageBody,
  ServerConfig,
  Session,
  StartUploadBody,
  StoredKeyBackup,
  Thread,
  UploadStarted,
  UploadStatus,
  User,
  UserPublicKey,
} from './types';

const seg = encodeURIComponent;

/** Options of a creating POST: the Idempotency-Key to reuse (e.g. persisted across a crash). */
export interface CreateOptions {
  idempotencyKey?: string;
}

export class OrbitalClient {
  readonly http: Transport;

  constructor(options: TransportOptions) {
    this.http = new Transport(options);
  }

  get server(): string {
    return this.http.server;
  }

  get tokens(): TokenPair | null {
    return this.http.tokens;
  }

  // ---------- service ----------

  health(): Promise<{ status: string }> {
    return this.http.json({ method: 'GET', path: '/health', auth: false });
  }

  config(): Promise<ServerConfig> {
    return this.http.json({ method: 'GET', path: '/api/config', auth: false });
  }

  // ---------- accounts and sessions ----------

  async register(body: RegisterBody): Promise<AuthResult> {
    // Not retried: a lost answer would turn the retry into 409 (the username is now taken); log in instead.
    const out = await this.http.json<AuthResult>({ method: 'POST', path: '/api/auth/register', json: body, auth: false, retry: false });
    await this.http.setTokens(out);
    return out;
  }

  async login(username: string, password: string): Promise<AuthResult> {
    const out = await this.http.json<AuthResult>({ method: 'POST', path: '/api/auth/login', json: { username, password }, auth: false, retry: true });
    await this.http.setTokens(out);
    return out;
  }

  /** Rotates the token pair now (it also happens by itself on TOKEN_EXPIRED). */
  refresh(): Promise<void> {
    return this.http.refresh();
  }

  async logout(): Promise<void> {
    const refreshToken = this.http.tokens?.refresh_token;
    if (refreshToken) await this.http.empty({ method: 'POST', path: '/api/auth/logout', json: { refresh_token: refreshToken }, auth: false, retry: true });
    await this.http.setTokens(null);
  }

  me(): Promise<User> {
    return this.http.json({ method: 'GET', path: '/api/users/me' });
  }

  changePassword(currentPassword: string, newPassword: string): Promise<void> {
    return this.http.empty({ method: 'PUT', path: '/api/users/me/password', json: { current_password: currentPassword, new_password: newPassword } });
  }

  sessions(): Promise<{ items: Session[] }> {
    return this.http.json({ method: 'GET', path: '/api/users/me/sessions' });
  }

  revokeSession(sessionId: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/users/me/sessions/${seg(sessionId)}` });
  }

  revokeOtherSessions(): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: '/api/users/me/sessions' });
  }

  /** Replaces the key pair (lost device, no backup): every membership returns to pending. */
  setPublicKey(publicKey: PublicJwk): Promise<void> {
    return this.http.empty({ method: 'PUT', path: '/api/users/me/public-key', json: { public_key: publicKey } });
  }

  putKeyBackup(backup: StoredKeyBackup): Promise<void> {
    return this.http.empty({ method: 'PUT', path: '/api/users/me/key-backup', json: backup });
  }

  getKeyBackup(): Promise<StoredKeyBackup> {
    return this.http.json({ method: 'GET', path: '/api/users/me/key-backup' });
  }

  async deleteAccount(password: string): Promise<void> {
    await this.http.empty({ method: 'DELETE', path: '/api/users/me', json: { password } });
    await this.http.setTokens(null);
  }

  userPublicKey(userId: string): Promise<UserPublicKey> {
    return this.http.json({ method: 'GET', path: `/api/users/${seg(userId)}/public-key` });
  }

  // ---------- orbits, members, keys, invites, quota ----------

  createGroup(body: CreateGroupBody, options: CreateOptions = {}): Promise<{ group: Group; invite: Invite }> {
    return this.http.json({ method: 'POST', path: '/api/groups', json: body, idempotencyKey: options.idempotencyKey ?? true });
  }

  listGroups(): Promise<{ items: GroupItem[] }> {
    return this.http.json({ method: 'GET', path: '/api/groups' });
  }

  getGroup(groupId: string): Promise<Group> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}` });
  }

  renameGroup(groupId: string, encryptedName: string): Promise<Group> {
    return this.http.json({ method: 'PATCH', path: `/api/groups/${seg(groupId)}`, json: { encrypted_name: encryptedName } });
  }

  transferOwnership(groupId: string, userId: string): Promise<void> {
    return this.http.empty({ method: 'PUT', path: `/api/groups/${seg(groupId)}/owner`, json: { user_id: userId } });
  }

  joinGroup(inviteCode: string): Promise<{ group: Group; key_status: 'pending' }> {
    // A lost answer makes the retry 409 ALREADY_MEMBER, which callers can treat as success.
    return this.http.json({ method: 'POST', path: '/api/groups/join', json: { invite_code: inviteCode }, retry: false });
  }

  members(groupId: string): Promise<{ items: Member[] }> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/members` });
  }

  deliverKeys(groupId: string, userId: string, keys: KeyDelivery[]): Promise<void> {
    return this.http.empty({ method: 'PUT', path: `/api/groups/${seg(groupId)}/members/${seg(userId)}/keys`, json: { keys } });
  }

  myKeys(groupId: string): Promise<{ items: GroupKey[] }> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/keys` });
  }

  rotateKeys(groupId: string, body: RotateKeysBody): Promise<unknown> {
    // Not repeated blindly: a lost answer makes the retry a 409 (the epoch moved on), which the caller checks.
    return this.http.json({ method: 'POST', path: `/api/groups/${seg(groupId)}/keys`, json: body, retry: false });
  }

  /** Leave (own id) or remove a member (owner). */
  removeMember(groupId: string, userId: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/groups/${seg(groupId)}/members/${seg(userId)}` });
  }

  createInvite(groupId: string, body: CreateInviteBody = {}, options: CreateOptions = {}): Promise<Invite> {
    return this.http.json({ method: 'POST', path: `/api/groups/${seg(groupId)}/invites`, json: body, idempotencyKey: options.idempotencyKey ?? true });
  }

  listInvites(groupId: string): Promise<{ items: Invite[] }> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/invites` });
  }

  revokeInvite(groupId: string, code: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/groups/${seg(groupId)}/invites/${seg(code)}` });
  }

  quota(groupId: string): Promise<Quota> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/quota` });
  }

  // ---------- threads and replies ----------

  createThread(body: CreateThreadBody, options: CreateOptions = {}): Promise<Thread> {
    return this.http.json({ method: 'POST', path: '/api/threads', json: body, idempotencyKey: options.idempotencyKey ?? true });
  }

  listThreads(groupId: string, query: ListQuery & { sort?: 'activity' } = {}): Promise<Page<Thread>> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/threads`, query: { ...query } });
  }

  getThread(threadId: string): Promise<Thread> {
    return this.http.json({ method: 'GET', path: `/api/threads/${seg(threadId)}` });
  }

  markRead(threadId: string, seq: number): Promise<void> {
    return this.http.empty({ method: 'PUT', path: `/api/threads/${seg(threadId)}/read`, json: { seq } });
  }

  deleteThread(threadId: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/threads/${seg(threadId)}` });
  }

  listReplies(threadId: string, query: ListQuery & { order?: 'asc' | 'desc' } = {}): Promise<Page<Reply>> {
    return this.http.json({ method: 'GET', path: `/api/threads/${seg(threadId)}/replies`, query: { ...query } });
  }

  createReply(threadId: string, body: CreateReplyBody, options: CreateOptions = {}): Promise<Reply> {
    return this.http.json({ method: 'POST', path: `/api/threads/${seg(threadId)}/replies`, json: body, idempotencyKey: options.idempotencyKey ?? true });
  }

  deleteReply(replyId: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/replies/${seg(replyId)}` });
  }

  // ---------- media ----------

  startUpload(body: StartUploadBody, options: CreateOptions = {}): Promise<UploadStarted> {
    return this.http.json({ method: 'POST', path: '/api/media/upload', json: body, idempotencyKey: options.idempotencyKey ?? true });
  }

  putChunk(mediaId: string, index: number, bytes: Uint8Array, sha256Hex?: string, signal?: AbortSignal): Promise<ChunkReceipt> {
    return this.http.json({
      method: 'PUT',
      path: `/api/media/upload/${seg(mediaId)}/chunks/${index}`,
      body: bytes,
      headers: { 'content-type': 'application/octet-stream', ...(sha256Hex ? { 'x-chunk-sha256': sha256Hex } : {}) },
      signal,
    });
  }

  uploadStatus(mediaId: string): Promise<UploadStatus> {
    return this.http.json({ method: 'GET', path: `/api/media/upload/${seg(mediaId)}` });
  }

  openUploads(): Promise<{ items: UploadStatus[] }> {
    return this.http.json({ method: 'GET', path: '/api/media/uploads' });
  }

  completeUpload(mediaId: string): Promise<MediaInfo> {
    // A repeat answers 200 with the same media: safe to resend.
    return this.http.json({ method: 'POST', path: '/api/media/upload/complete', json: { media_id: mediaId }, retry: true });
  }

  abortUpload(mediaId: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/media/upload/${seg(mediaId)}` });
  }

  attachMedia(mediaId: string, target: { thread_id?: string; reply_id?: string }): Promise<MediaInfo> {
    return this.http.json({ method: 'PATCH', path: `/api/media/${seg(mediaId)}`, json: target });
  }

  /** The raw download response (206 for a Range); see download.ts for resumable, decrypting downloads. */
  download(mediaId: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    return this.http.request({ method: 'GET', path: `/api/media/${seg(mediaId)}/download`, headers, signal });
  }

  mediaInfo(mediaId: string): Promise<MediaInfo> {
    return this.http.json({ method: 'GET', path: `/api/media/${seg(mediaId)}/info` });
  }

  listMedia(groupId: string, query: ListQuery = {}): Promise<Page<MediaInfo>> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/media`, query: { ...query } });
  }

  deleteMedia(mediaId: string): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/api/media/${seg(mediaId)}` });
  }

  // ---------- relay messages ----------

  sendMessage(groupId: string, body: SendMessageBody, options: CreateOptions = {}): Promise<MessageSent> {
    return this.http.json({ method: 'POST', path: `/api/groups/${seg(groupId)}/messages`, json: body, idempotencyKey: options.idempotencyKey ?? true });
  }

  listMessages(groupId: string, query: { after_seq?: number; limit?: number } = {}): Promise<MessagePage> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/messages`, query: { ...query } });
  }

  // ---------- events and the live socket ----------

  events(groupId: string, query: { after_seq?: number; limit?: number } = {}): Promise<EventPage> {
    return this.http.json({ method: 'GET', path: `/api/groups/${seg(groupId)}/events`, query: { ...query } });
  }

  liveTicket(groupId: string): Promise<LiveTicket> {
    return this.http.json({ method: 'POST', path: `/api/groups/${seg(groupId)}/live/ticket`, retry: true });
  }

  /** ws(s):// URL of the live socket, authorized by a single-use ticket. */
  liveUrl(groupId: string, ticket: string, afterSeq?: number): string {
    return this.http.url(`/api/groups/${seg(groupId)}/live`, { ticket, after_seq: afterSeq }).replace(/^http/, 'ws');
  }
}

/** Every item of a cursor-paginated list, page by page. */
export async function* paginate<T>(fetchPage: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* page.items;
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
}
