// The wire types of API.md, written by hand so the client carries no server code. Ciphertext
// fields are base64 strings; timestamps are RFC 3339 strings.

export type Base64 = string;
export type Uuid = string;
export type Timestamp = string;

export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'UNAUTHENTICATED'
  | 'TOKEN_EXPIRED'
  | 'INVALID_CREDENTIALS'
  | 'FORBIDDEN'
  | 'KEY_PENDING'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'ALREADY_MEMBER'
  | 'UPLOAD_INCOMPLETE'
  | 'GONE'
  | 'PAYLOAD_TOO_LARGE'
  | 'QUOTA_EXCEEDED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'RANGE_NOT_SATISFIABLE'
  | 'RATE_LIMITED'
  | 'INTERNAL'
  | 'UNAVAILABLE';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string; details?: Record<string, unknown> };
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface ListQuery {
  limit?: number;
  cursor?: string;
}

export interface ServerConfig {
  registration: 'open' | 'invite' | 'closed';
  chunk_size: number;
  max_media_bytes: number;
  media_retention_days: number;
  message_retention_days: number;
  max_members: number;
  max_owned_groups: number;
  invite_code_length: number;
}

// ---------- accounts ----------

export type PublicJwk = Record<string, unknown> & { kty: string };

export interface User {
  id: Uuid;
  username: string;
  public_key: PublicJwk;
  key_version: number;
  created_at: Timestamp;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  /** Seconds until the access token expires. */
  expires_in: number;
}

export interface AuthResult extends Tokens {
  user: User;
}

export interface RegisterBody {
  username: string;
  password: string;
  public_key: PublicJwk;
  invite_code?: string;
}

export interface Session {
  id: Uuid;
  created_at: Timestamp;
  last_used_at: Timestamp;
  user_agent: string | null;
  current: boolean;
}

export interface StoredKeyBackup {
  backup: Base64;
  kdf: Record<string, unknown>;
}

export interface UserPublicKey {
  user_id: Uuid;
  username: string;
  public_key: PublicJwk;
  key_version: number;
}

// ---------- orbits ----------

export type Role = 'owner' | 'member';
export type KeyStatus = 'pending' | 'delivered';

export interface GroupItem {
  id: Uuid;
  encrypted_name: Base64;
  role: Role;
  owner_id: Uuid | null;
  member_count: number;
  key_epoch: number;
  key_status: KeyStatus;
  /** The caller's wrap for the current epoch, or null while pending. */
  encrypted_group_key: Base64 | null;
  last_seq: number;
  joined_at: Timestamp;
}

export interface Group extends GroupItem {
  created_at: Timestamp;
  created_by: Uuid | null;
  max_members: number;
  key_check: Base64 | null;
}

export interface CreateGroupBody {
  encrypted_name: Base64;
  encrypted_group_key: Base64;
  key_check?: Base64;
}

export interface Invite {
  code: string | null;
  expires_at: Timestamp;
  max_uses: number;
  uses: number;
  [extra: string]: unknown;
}

export interface CreateInviteBody {
  expires_in_seconds?: number;
  max_uses?: number;
}

export interface Member {
  user_id: Uuid;
  username: string;
  public_key: PublicJwk;
  key_version: number;
  role: Role;
  key_status: KeyStatus;
  key_delivered_by: Uuid | null;
  joined_at: Timestamp;
}

export interface KeyDelivery {
  key_epoch: number;
  encrypted_group_key: Base64;
}

export interface GroupKey {
  key_epoch: number;
  encrypted_group_key: Base64;
  delivered_by: Uuid | null;
}

export interface RotateKeysBody {
  key_epoch: number;
  keys: { user_id: Uuid; encrypted_group_key: Base64 }[];
  key_check?: Base64;
}

export interface Quota {
  bytes_used: number;
  bytes_reserved: number;
  bytes_limit: number;
  files_used: number;
  files_reserved: number;
  files_limit: number;
  warning: boolean;
}

// ---------- threads and replies ----------

export interface Thread {
  id: Uuid;
  group_id: Uuid;
  author_id: Uuid | null;
  author_username: string | null;
  key_epoch: number;
  encrypted_title: Base64;
  encrypted_body: Base64;
  reply_count: number;
  media_count: number;
  last_activity_at: Timestamp;
  last_activity_seq: number;
  last_read_seq: number;
  unread_count: number;
  created_at: Timestamp;
  seq: number;
}

export interface CreateThreadBody {
  group_id: Uuid;
  key_epoch: number;
  encrypted_title: Base64;
  encrypted_body: Base64;
}

export interface Reply {
  id: Uuid;
  thread_id: Uuid;
  group_id: Uuid;
  author_id: Uuid | null;
  author_username: string | null;
  key_epoch: number;
  parent_reply_id: Uuid | null;
  encrypted_body: Base64 | null;
  deleted: boolean;
  created_at: Timestamp;
  seq: number;
}

export interface CreateReplyBody {
  key_epoch: number;
  encrypted_body: Base64;
  parent_reply_id?: Uuid;
}

// ---------- media ----------

export interface StartUploadBody {
  group_id: Uuid;
  thread_id?: Uuid;
  reply_id?: Uuid;
  key_epoch: number;
  size_bytes: number;
  encrypted_metadata: Base64;
  encryption_iv: string;
}

export type UploadState = 'uploading' | 'complete' | 'aborted' | 'expired';

export interface UploadStarted {
  media_id: Uuid;
  chunk_size: number;
  chunk_count: number;
  status: 'uploading';
  upload_expires_at: Timestamp;
}

export interface ChunkReceipt {
  index: number;
  received: number;
  chunk_count: number;
}

export interface UploadStatus {
  media_id: Uuid;
  chunk_count: number;
  received: number[];
  missing: number[];
  status: UploadState;
  upload_expires_at: Timestamp;
}

export interface MediaInfo {
  id: Uuid;
  group_id: Uuid;
  thread_id: Uuid | null;
  reply_id: Uuid | null;
  author_id: Uuid | null;
  key_epoch: number;
  encrypted_metadata: Base64;
  encryption_iv: string;
  size_bytes: number;
  uploaded_at: Timestamp;
  expires_at: Timestamp;
  downloaded_by_me: boolean;
}

// ---------- relay messages ----------

export type SendMessageBody = { key_epoch?: number; envelope: Base64 } | { recipients: { user_id: Uuid; envelope: Base64 }[] };

export interface MessageSent {
  id: Uuid;
  seq: number;
  server_timestamp: Timestamp;
}

export interface RelayMessage {
  id: Uuid;
  sender_id: Uuid | null;
  /** The epoch the sender named, when it did (not in every server's answer). */
  key_epoch?: number | null;
  envelope: Base64 | null;
  seq: number;
  server_timestamp: Timestamp;
}

export interface MessagePage {
  items: RelayMessage[];
  next_after_seq: number | null;
}

// ---------- events ----------

export type EventType =
  | 'thread_created'
  | 'thread_deleted'
  | 'reply_created'
  | 'reply_deleted'
  | 'media_uploaded'
  | 'media_deleted'
  | 'media_expired'
  | 'member_joined'
  | 'member_left'
  | 'member_key_delivered'
  | 'member_key_reset'
  | 'key_rotated'
  | 'message_created'
  | 'group_updated';

export interface OrbitEvent<D = Record<string, any>> {
  type: EventType;
  group_id: Uuid;
  seq: number;
  at: Timestamp;
  actor_id: Uuid | null;
  data: D;
}

export interface EventPage {
  items: OrbitEvent[];
  next_after_seq: number | null;
  oldest_seq: number | null;
}

export interface LiveTicket {
  ticket: string;
  expires_in: number;
}
