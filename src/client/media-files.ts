// Encrypted files on disk (Node): upload with a journal so a crash at any point resumes the same
// upload (same file key, same media), and decrypting downloads that resume from the file's length.
import { randomUUID } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { OrbitalClient } from './api';
import { CHUNK_SIZE, DecryptError, FileCipher, PIECE_SIZE, encryptedSize, newMediaMetadata, pieceCount, pieceLength, type MediaMetadata, type OrbitCipher } from './crypto';
import { downloadDecrypted, type DownloadProgress } from './download';
import { ApiError } from './errors';
import type { MediaInfo, StartUploadBody } from './types';
import { sendChunks, type UploadProgress } from './upload';

/** What a resumed upload needs: the exact start request (for its Idempotency-Key) and the file key. Keep it private (0600). */
export interface UploadJournal {
  v: 1;
  path: string;
  size: number;
  mtime_ms: number;
  group_id: string;
  idempotency_key: string;
  start: StartUploadBody;
  metadata: MediaMetadata;
  media_id: string | null;
}

export interface JournalStore {
  load(): Promise<UploadJournal | null>;
  save(journal: UploadJournal): Promise<void>;
  clear(): Promise<void>;
}

export interface UploadFileOptions {
  /** Cipher of the orbit's current epoch. */
  cipher: OrbitCipher;
  path: string;
  name?: string;
  type?: string;
  threadId?: string;
  replyId?: string;
  concurrency?: number;
  journal?: JournalStore;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}

async function stillOpen(api: OrbitalClient, mediaId: string): Promise<boolean> {
  try {
    const status = await api.uploadStatus(mediaId);
    return status.status === 'uploading' || status.status === 'complete';
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 410)) return false;
    throw err;
  }
}

export async function uploadEncryptedFile(api: OrbitalClient, options: UploadFileOptions): Promise<{ media: MediaInfo; metadata: MediaMetadata; resumed: boolean }> {
  const path = resolve(options.path);
  const { cipher } = options;
  const st = await stat(path);
  if (!st.isFile()) throw new Error(`${options.path} is not a file`);
  const size = st.size;

  let journal = (await options.journal?.load()) ?? null;
  const matches = journal && journal.path === path && journal.size === size && journal.mtime_ms === st.mtimeMs && journal.group_id === cipher.groupId;
  if (journal && !matches) {
    // Another file (or the file changed): let its reservation go.
    if (journal.media_id) await api.abortUpload(journal.media_id).catch(() => undefined);
    journal = null;
  }
  if (journal?.media_id && !(await stillOpen(api, journal.media_id))) journal = null;
  const resumed = journal !== null;

  if (!journal) {
    const metadata = newMediaMetadata(options.name ?? basename(path), options.type ?? 'application/octet-stream', size);
    const start: StartUploadBody = {
      group_id: cipher.groupId,
      ...(options.threadId ? { thread_id: options.threadId } : {}),
      ...(options.replyId ? { reply_id: options.replyId } : {}),
      key_epoch: cipher.epoch,
      size_bytes: encryptedSize(size),
      encrypted_metadata: await cipher.sealMetadata(metadata),
      encryption_iv: metadata.nonce_prefix,
    };
    journal = { v: 1, path, size, mtime_ms: st.mtimeMs, group_id: cipher.groupId, idempotency_key: randomUUID(), start, metadata, media_id: null };
    // Saved before the request: a crash before the answer replays the same key and gets the same media.
    await options.journal?.save(journal);
  }
  if (!journal.media_id) {
    const started = await api.startUpload(journal.start, { idempotencyKey: journal.idempotency_key });
    journal = { ...journal, media_id: started.media_id };
    await options.journal?.save(journal);
  }

  const mediaId = journal.media_id!;
  const count = pieceCount(size);
  const fileCipher = await FileCipher.create(journal.metadata, mediaId, count);
  const handle = await open(path, 'r');
  try {
    const media = await sendChunks(
      api,
      mediaId,
      {
        chunkCount: count,
        chunkLength: (i) => (i < count - 1 ? CHUNK_SIZE : pieceLength(size, i) + (CHUNK_SIZE - PIECE_SIZE)),
        async read(i) {
          const piece = new Uint8Array(pieceLength(size, i));
          const { bytesRead } = await handle.read(piece, 0, piece.length, i * PIECE_SIZE);
          if (bytesRead !== piece.length) throw new Error(`${options.path} changed while uploading`);
          return fileCipher.encryptPiece(i, piece);
        },
      },
      { concurrency: options.concurrency, onProgress: options.onProgress, signal: options.signal },
    );
    await options.journal?.clear();
    return { media, metadata: journal.metadata, resumed };
  } finally {
    await handle.close();
  }
}

/** Reads the media's sealed metadata (file name, type, size, file key) with the orbit key of its epoch. */
export async function openMediaMetadata(info: MediaInfo, cipher: OrbitCipher): Promise<MediaMetadata> {
  const metadata = await cipher.openMetadata(info.encrypted_metadata);
  if (metadata.nonce_prefix !== info.encryption_iv || encryptedSize(metadata.size) !== info.size_bytes) {
    throw new DecryptError('the media does not match its metadata');
  }
  return metadata;
}

export async function downloadEncryptedFile(
  api: OrbitalClient,
  info: MediaInfo,
  metadata: MediaMetadata,
  outPath: string,
  options: { onProgress?: (progress: DownloadProgress) => void; signal?: AbortSignal } = {},
): Promise<{ bytes: number }> {
  const fileCipher = await FileCipher.create(metadata, info.id, pieceCount(metadata.size));
  return downloadDecrypted(api, info.id, outPath, fileCipher, { ...options, plainSize: metadata.size, totalBytes: info.size_bytes });
}
