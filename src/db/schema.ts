// The one source of truth for the database. drizzle-kit generates drizzle/*.sql from it;
// `npm run db:check` fails when the two disagree.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { base64ToBytes, bytesToBase64 } from '../domain/bytes';

/** Ciphertext: base64 in the app and on the wire, raw bytes (bytea) in Postgres. */
export const bytea = customType<{ data: string; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  toDriver: (value) => base64ToBytes(value),
  fromDriver: (value) => bytesToBase64(value as Uint8Array),
});

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const counter = (name: string) => bigint(name, { mode: 'number' });

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  username: text('username').notNull(),
  usernameLower: text('username_lower').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  publicKey: jsonb('public_key').$type<Record<string, unknown>>().notNull(),
  keyVersion: integer('key_version').notNull().default(1),
  keyBackup: bytea('key_backup'),
  keyBackupKdf: jsonb('key_backup_kdf').$type<Record<string, unknown>>(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

/** Usernames of deleted accounts: never handed out again. */
export const retiredUsernames = pgTable('retired_usernames', {
  usernameLower: text('username_lower').primaryKey(),
  retiredAt: ts('retired_at').notNull().defaultNow(),
});

/** A session is one refresh-token family (one device login). */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastUsedAt: ts('last_used_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    userAgent: text('user_agent'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt)],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    tokenHash: bytea('token_hash').primaryKey(),
    sessionId: uuid('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
    createdAt: ts('created_at').notNull().defaultNow(),
    rotatedAt: ts('rotated_at'),
  },
  (t) => [index('refresh_tokens_session_idx').on(t.sessionId)],
);

export const groups = pgTable('groups', {
  id: uuid('id').primaryKey().defaultRandom(),
  encryptedName: bytea('encrypted_name').notNull(),
  createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
  ownerId: uuid('owner_id').references(() => users.id, { onDelete: 'set null' }),
  keyEpoch: integer('key_epoch').notNull().default(1),
  keyCheck: bytea('key_check'),
  // The orbit's event counter: bumped in each writing transaction, so seq is gap-free.
  lastSeq: counter('last_seq').notNull().default(0),
  // Bumped by lockGroup, i.e. by every change to who may write here (members, roles, keys): a
  // writer whose snapshot saw another version knows its membership read may be stale (writer.ts).
  rosterVersion: integer('roster_version').notNull().default(0),
  memberCount: integer('member_count').notNull().default(0),
  maxMembers: integer('max_members').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const groupMembers = pgTable(
  'group_members',
  {
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    role: text('role', { enum: ['owner', 'member'] }).notNull(),
    joinedAt: ts('joined_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.groupId, t.userId] }),
    index('group_members_user_idx').on(t.userId, t.joinedAt),
    index('group_members_group_joined_idx').on(t.groupId, t.joinedAt, t.userId),
  ],
);

/** Last removal of a user from an orbit: invites older than it no longer let them in. */
export const memberRemovals = pgTable(
  'member_removals',
  {
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull(),
    removedAt: ts('removed_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId] })],
);

/** The orbit key of one epoch wrapped for one member; never overwritten. */
export const memberKeys = pgTable(
  'member_keys',
  {
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    keyEpoch: integer('key_epoch').notNull(),
    encryptedGroupKey: bytea('encrypted_group_key').notNull(),
    deliveredBy: uuid('delivered_by'),
    deliveredAt: ts('delivered_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId, t.keyEpoch] })],
);

export const invites = pgTable(
  'invites',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    codeHash: bytea('code_hash').notNull(),
    codeHint: text('code_hint').notNull(),
    createdBy: uuid('created_by'),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    maxUses: integer('max_uses').notNull(),
    uses: integer('uses').notNull().default(0),
    revokedAt: ts('revoked_at'),
  },
  (t) => [
    uniqueIndex('invites_code_hash_idx').on(t.codeHash),
    index('invites_group_idx').on(t.groupId, t.createdAt),
    index('invites_expires_idx').on(t.expiresAt),
    check('invites_uses_ck', sql`${t.uses} <= ${t.maxUses}`),
  ],
);

/**
 * Codes the operator issues (`npm run admin -- registration invite-code`) so that someone may
 * register under REGISTRATION=invite without an orbit to join: the first account of a new server.
 * Stored as keyed hashes, as orbit invites are.
 */
export const registrationCodes = pgTable(
  'registration_codes',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    codeHash: bytea('code_hash').notNull(),
    codeHint: text('code_hint').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    maxUses: integer('max_uses').notNull(),
    uses: integer('uses').notNull().default(0),
    revokedAt: ts('revoked_at'),
  },
  (t) => [
    uniqueIndex('registration_codes_code_hash_idx').on(t.codeHash),
    index('registration_codes_expires_idx').on(t.expiresAt),
    check('registration_codes_uses_ck', sql`${t.uses} <= ${t.maxUses}`),
  ],
);

export const threads = pgTable(
  'threads',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    authorId: uuid('author_id').references(() => users.id, { onDelete: 'set null' }),
    keyEpoch: integer('key_epoch').notNull(),
    encryptedTitle: bytea('encrypted_title').notNull(),
    encryptedBody: bytea('encrypted_body').notNull(),
    replyCount: integer('reply_count').notNull().default(0),
    mediaCount: integer('media_count').notNull().default(0),
    lastActivityAt: ts('last_activity_at').notNull().defaultNow(),
    lastActivitySeq: counter('last_activity_seq').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    seq: counter('seq').notNull(),
  },
  (t) => [
    uniqueIndex('threads_group_seq_idx').on(t.groupId, t.seq),
    index('threads_group_activity_idx').on(t.groupId, t.lastActivitySeq),
  ],
);

export const replies = pgTable(
  'replies',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    threadId: uuid('thread_id').notNull().references(() => threads.id, { onDelete: 'cascade' }),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    authorId: uuid('author_id').references(() => users.id, { onDelete: 'set null' }),
    keyEpoch: integer('key_epoch').notNull(),
    parentReplyId: uuid('parent_reply_id'),
    encryptedBody: bytea('encrypted_body'),
    deleted: boolean('deleted').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
    seq: counter('seq').notNull(),
  },
  (t) => [uniqueIndex('replies_thread_seq_idx').on(t.threadId, t.seq)],
);

export const readMarkers = pgTable(
  'read_markers',
  {
    threadId: uuid('thread_id').notNull().references(() => threads.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    lastReadSeq: counter('last_read_seq').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.threadId, t.userId] })],
);

export const mediaStatus = ['uploading', 'complete', 'aborted', 'expired'] as const;

/** One encrypted file: an upload session while `uploading`, media once `complete`. */
export const media = pgTable(
  'media',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    threadId: uuid('thread_id').references(() => threads.id, { onDelete: 'set null' }),
    replyId: uuid('reply_id').references(() => replies.id, { onDelete: 'set null' }),
    authorId: uuid('author_id').references(() => users.id, { onDelete: 'set null' }),
    keyEpoch: integer('key_epoch').notNull(),
    encryptedMetadata: bytea('encrypted_metadata').notNull(),
    encryptionIv: text('encryption_iv').notNull(),
    sizeBytes: counter('size_bytes').notNull(),
    chunkCount: integer('chunk_count').notNull(),
    status: text('status', { enum: mediaStatus }).notNull().default('uploading'),
    blobKey: text('blob_key').notNull(),
    // Multipart upload handle of the blob store (R2 uploadId; unused by the disk store).
    uploadHandle: text('upload_handle'),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastChunkAt: ts('last_chunk_at').notNull().defaultNow(),
    uploadExpiresAt: ts('upload_expires_at').notNull(),
    uploadedAt: ts('uploaded_at'),
    expiresAt: ts('expires_at'),
    seq: counter('seq'),
  },
  (t) => [
    index('media_group_seq_idx').on(t.groupId, t.seq).where(sql`${t.status} = 'complete'`),
    index('media_expiry_idx').on(t.expiresAt).where(sql`${t.status} = 'complete'`),
    index('media_upload_expiry_idx').on(t.uploadExpiresAt).where(sql`${t.status} = 'uploading'`),
    index('media_author_status_idx').on(t.authorId, t.status),
    index('media_thread_idx').on(t.threadId),
    index('media_reply_idx').on(t.replyId),
  ],
);

export const mediaChunks = pgTable(
  'media_chunks',
  {
    mediaId: uuid('media_id').notNull().references(() => media.id, { onDelete: 'cascade' }),
    index: integer('index').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    etag: text('etag').notNull(),
    receivedAt: ts('received_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.mediaId, t.index] })],
);

export const mediaDownloads = pgTable(
  'media_downloads',
  {
    mediaId: uuid('media_id').notNull().references(() => media.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    downloadedAt: ts('downloaded_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.mediaId, t.userId] }), index('media_downloads_user_idx').on(t.userId)],
);

export const groupQuotas = pgTable(
  'group_quotas',
  {
    groupId: uuid('group_id').primaryKey().references(() => groups.id, { onDelete: 'cascade' }),
    bytesUsed: counter('bytes_used').notNull().default(0),
    bytesReserved: counter('bytes_reserved').notNull().default(0),
    bytesLimit: counter('bytes_limit').notNull().default(10_737_418_240),
    filesUsed: integer('files_used').notNull().default(0),
    filesReserved: integer('files_reserved').notNull().default(0),
    filesLimit: integer('files_limit').notNull().default(100),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check('group_quotas_nonneg_ck', sql`${t.bytesUsed} >= 0 and ${t.bytesReserved} >= 0 and ${t.filesUsed} >= 0 and ${t.filesReserved} >= 0`),
  ],
);

/** Relay envelopes: `envelope` for everyone, or one row per chosen recipient. */
export const signalMessages = pgTable(
  'signal_messages',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    senderId: uuid('sender_id').references(() => users.id, { onDelete: 'set null' }),
    keyEpoch: integer('key_epoch'),
    envelope: bytea('envelope'),
    seq: counter('seq').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('signal_messages_group_seq_idx').on(t.groupId, t.seq), index('signal_messages_created_idx').on(t.createdAt)],
);

export const signalMessageRecipients = pgTable(
  'signal_message_recipients',
  {
    messageId: uuid('message_id').notNull().references(() => signalMessages.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull(),
    envelope: bytea('envelope').notNull(),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.userId] })],
);

export type EventPrivate = Record<string, unknown>;

/** The orbit event log: every change, by seq; the live socket and catch-up read it. */
export const orbitEvents = pgTable(
  'orbit_events',
  {
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    seq: counter('seq').notNull(),
    type: text('type').notNull(),
    actorId: uuid('actor_id'),
    at: ts('at').notNull().defaultNow(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    // Per-viewer parts of `data` (e.g. envelopes addressed to one member), keyed by user id.
    private: jsonb('private').$type<Record<string, Record<string, unknown>>>(),
    // What the event is about, so deletions can scrub it.
    subjectId: uuid('subject_id'),
    threadId: uuid('thread_id'),
  },
  (t) => [
    primaryKey({ columns: [t.groupId, t.seq] }),
    index('orbit_events_subject_idx').on(t.groupId, t.subjectId),
    index('orbit_events_thread_idx').on(t.groupId, t.threadId),
    // Account deletion scrubs the events the account wrote (names, keys) wherever they are.
    index('orbit_events_actor_idx').on(t.actorId),
    index('orbit_events_at_idx').on(t.at),
  ],
);

export const liveTickets = pgTable(
  'live_tickets',
  {
    ticketHash: bytea('ticket_hash').primaryKey(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    sessionId: uuid('session_id').notNull().references(() => sessions.id, { onDelete: 'cascade' }),
    groupId: uuid('group_id').notNull().references(() => groups.id, { onDelete: 'cascade' }),
    expiresAt: ts('expires_at').notNull(),
    usedAt: ts('used_at'),
  },
  (t) => [index('live_tickets_expires_idx').on(t.expiresAt)],
);

/**
 * One row per open live socket on Node, so the per-user cap holds across processes and nodes.
 * `holder` is the process; it pushes `expires_at` forward while it runs, so a crashed process's
 * rows stop counting on their own.
 */
export const liveSocketLeases = pgTable(
  'live_socket_leases',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // No foreign keys: a lease must not wait on the orbit row that removals lock; it lapses instead.
    groupId: uuid('group_id').notNull(),
    userId: uuid('user_id').notNull(),
    holder: uuid('holder').notNull(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [index('live_socket_leases_member_idx').on(t.groupId, t.userId), index('live_socket_leases_expires_idx').on(t.expiresAt)],
);

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    route: text('route').notNull(),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    state: text('state', { enum: ['running', 'done'] }).notNull(),
    status: integer('status'),
    resourceId: text('resource_id'),
    response: jsonb('response'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.route, t.key] }), index('idempotency_created_idx').on(t.createdAt)],
);

/** Durable queue of blobs to delete: rows go first, blobs follow, so a crash orphans nothing. */
export const blobDeletions = pgTable(
  'blob_deletions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    blobKey: text('blob_key').notNull(),
    uploadHandle: text('upload_handle'),
    createdAt: ts('created_at').notNull().defaultNow(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
  },
  (t) => [index('blob_deletions_next_idx').on(t.nextAttemptAt)],
);

/** Fixed-window counters shared by every process (rate limits). */
export const rateLimits = pgTable(
  'rate_limits',
  {
    key: text('key').primaryKey(),
    windowStart: ts('window_start').notNull(),
    windowEnd: ts('window_end').notNull(),
    hits: counter('hits').notNull(),
  },
  (t) => [index('rate_limits_end_idx').on(t.windowEnd)],
);

/**
 * The audit trail of sensitive actions (src/domain/audit/): ids, an action, a short detail and a
 * truncated address; no foreign keys, as rows outlive the accounts and orbits they name.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    // In insertion order: rows of one transaction share their time.
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull(),
    action: text('action').notNull(),
    /** `api` (a user's request) or `admin` (the operator's command). */
    via: text('via').notNull(),
    actorId: uuid('actor_id'),
    targetId: uuid('target_id'),
    groupId: uuid('group_id'),
    detail: text('detail'),
    address: text('address'),
  },
  (t) => [
    index('audit_events_at_idx').on(t.at),
    index('audit_events_actor_idx').on(t.actorId, t.at),
    index('audit_events_target_idx').on(t.targetId, t.at),
    index('audit_events_group_idx').on(t.groupId, t.at),
  ],
);
