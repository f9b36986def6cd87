// Chunked uploads: parallel chunks with X-Chunk-SHA256, resumable from the server's own status
// (GET /api/media/upload/{id}) so a crash or a dropped link loses at most the chunks in flight.
import type { OrbitalClient } from './api';
import { toHex } from './base64';
import { ApiError } from './errors';
import type { MediaInfo } from './types';

/** Where the bytes of each chunk come from (ciphertext, exactly as the server stores it). */
export interface ChunkSource {
  chunkCount: number;
  /** Bytes of chunk `index` (every chunk but the last is the server's chunk_size). */
  chunkLength(index: number): number;
  read(index: number): Promise<Uint8Array>;
}

export interface UploadProgress {
  /** Bytes the server holds, chunks already there before a resume included. */
  sentBytes: number;
  totalBytes: number;
  chunksDone: number;
  chunkCount: number;
}

export interface SendChunksOptions {
  /** Chunks in flight at once (default 4). */
  concurrency?: number;
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}

/**
 * Sends the chunks the server is missing, then completes the upload. Safe to call again after any
 * failure: it asks the server what it has and sends only the rest.
 */
export async function sendChunks(client: OrbitalClient, mediaId: string, source: ChunkSource, options: SendChunksOptions = {}): Promise<MediaInfo> {
  const concurrency = Math.max(1, options.concurrency ?? 4);
  let totalBytes = 0;
  for (let i = 0; i < source.chunkCount; i++) totalBytes += source.chunkLength(i);

  for (let round = 0; ; round++) {
    options.signal?.throwIfAborted();
    const status = await client.uploadStatus(mediaId);
    if (status.status === 'complete') return client.completeUpload(mediaId);
    if (status.status !== 'uploading') throw new ApiError(410, 'GONE', `This upload was ${status.status}; start a new one.`, '');
    if (status.chunk_count !== source.chunkCount) throw new Error(`the server expects ${status.chunk_count} chunks, the file has ${source.chunkCount}`);

    const missing = [...status.missing].sort((a, b) => a - b);
    let sentBytes = totalBytes - missing.reduce((sum, i) => sum + source.chunkLength(i), 0);
    let chunksDone = source.chunkCount - missing.length;
    const report = () => options.onProgress?.({ sentBytes, totalBytes, chunksDone, chunkCount: source.chunkCount });
    report();

    const failure = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, failure.signal]) : failure.signal;
    let next = 0;
    const worker = async () => {
      while (next < missing.length && !signal.aborted) {
        const index = missing[next++]!;
        const bytes = await source.read(index);
        await client.putChunk(mediaId, index, bytes, await sha256Hex(bytes), signal);
        sentBytes += bytes.length;
        chunksDone++;
        report();
      }
    };
    const workers = Array.from({ length: Math.min(concurrency, missing.length) }, () =>
      worker().catch((err) => {
        failure.abort(err);
        throw err;
      }),
    );
    const results = await Promise.allSettled(workers);
    options.signal?.throwIfAborted();
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw failure.signal.reason ?? rejected.reason;

    try {
      return await client.completeUpload(mediaId);
    } catch (err) {
      // Another writer's chunk went missing (or the server lost one): ask again, at most twice.
      if (err instanceof ApiError && err.code === 'UPLOAD_INCOMPLETE' && round < 2) continue;
      throw err;
    }
  }
}
