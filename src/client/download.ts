// Streaming downloads into a file (Node) that pick up where they stopped: the file's length says
// how far it got, a Range request fetches the rest, and a dropped stream resumes with If-Range.
import { open, stat, truncate } from 'node:fs/promises';
import type { OrbitalClient } from './api';
import { CHUNK_SIZE, PIECE_SIZE, encryptedSize, type FileCipher } from './crypto';
import { ApiError, NetworkError } from './errors';
import { sleep } from './http';

export interface DownloadProgress {
  /** Ciphertext bytes fetched so far (what an earlier run fetched included). */
  receivedBytes: number;
  totalBytes: number;
}

export interface DownloadOptions {
  /** Ciphertext size (size_bytes of the media info); read from the response when absent. */
  totalBytes?: number;
  onProgress?: (progress: DownloadProgress) => void;
  /** Attempts after a dropped connection (default 5). */
  retries?: number;
  signal?: AbortSignal;
}

/** Receives the ciphertext stream from `start` on. */
interface Sink {
  start: number;
  write(bytes: Uint8Array, total: number): Promise<void>;
  close(): Promise<void>;
}

async function fileLength(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

function totalFrom(res: Response, offset: number): number | undefined {
  const range = res.headers.get('content-range')?.match(/\/(\d+)$/);
  if (range) return Number(range[1]);
  const length = res.headers.get('content-length');
  return length === null ? undefined : offset + Number(length);
}

async function pump(client: OrbitalClient, mediaId: string, sink: Sink, options: DownloadOptions): Promise<number> {
  let offset = sink.start;
  let total = options.totalBytes;
  let etag: string | null = null;
  const retries = options.retries ?? 5;
  options.onProgress?.({ receivedBytes: offset, totalBytes: total ?? 0 });
  for (let attempt = 0; total === undefined || offset < total; ) {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    if (offset > 0 && etag) headers['if-range'] = etag;
    let res: Response;
    try {
      res = await client.download(mediaId, headers, options.signal);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'RANGE_NOT_SATISFIABLE' && total === undefined) throw new Error('the file on disk is longer than the media');
      throw err;
    }
    if (offset > 0 && res.status !== 206) {
      await res.body?.cancel();
      throw new Error('the server sent the whole media instead of the rest (did it change?); delete the partial file and retry');
    }
    etag = res.headers.get('etag') ?? etag;
    total = totalFrom(res, offset) ?? total;
    if (total === undefined) throw new Error('the download has no length');
    try {
      for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
        await sink.write(piece, total);
        offset += piece.length;
        options.onProgress?.({ receivedBytes: offset, totalBytes: total });
        attempt = 0;
      }
      if (offset < total) throw new NetworkError('the connection closed early');
    } catch (err) {
      if (options.signal?.aborted || err instanceof ApiError || attempt >= retries) throw err;
      if (!(err instanceof NetworkError) && !(err instanceof TypeError) && (err as { name?: string }).name !== 'AbortError') throw err;
      await sleep(client.http.backoff(attempt++), options.signal);
    }
  }
  await sink.close();
  return total;
}

/** Downloads the ciphertext as stored into `path`, continuing from the file's current length. */
export async function downloadRaw(client: OrbitalClient, mediaId: string, path: string, options: DownloadOptions = {}): Promise<{ bytes: number }> {
  const start = await fileLength(path);
  const handle = await open(path, 'a', 0o600);
  try {
    const bytes = await pump(
      client,
      mediaId,
      {
        start,
        write: async (bytes) => void (await handle.write(bytes)),
        close: async () => undefined,
      },
      options,
    );
    return { bytes };
  } finally {
    await handle.close();
  }
}

/**
 * Downloads and decrypts chunk by chunk into `path` (plaintext). Only whole pieces are written, so
 * after a crash the file's length tells which chunk to fetch next; a torn last piece is cut off.
 */
export async function downloadDecrypted(
  client: OrbitalClient,
  mediaId: string,
  path: string,
  cipher: FileCipher,
  options: DownloadOptions & { plainSize: number },
): Promise<{ bytes: number }> {
  const piecesDone = Math.min(Math.floor((await fileLength(path)) / PIECE_SIZE), cipher.chunkCount);
  const keep = Math.min(piecesDone * PIECE_SIZE, options.plainSize);
  if ((await fileLength(path)) !== keep) await truncate(path, keep);
  const handle = await open(path, 'a', 0o600);
  let index = piecesDone;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    const chunk = new Uint8Array(pendingBytes);
    let at = 0;
    for (const p of pending) {
      chunk.set(p, at);
      at += p.length;
    }
    pending = [];
    pendingBytes = 0;
    await handle.write(await cipher.decryptChunk(index++, chunk));
  };
  try {
    await pump(
      client,
      mediaId,
      {
        start: piecesDone * CHUNK_SIZE,
        async write(bytes, total) {
          let rest = bytes;
          while (rest.length) {
            const take = Math.min(rest.length, CHUNK_SIZE - pendingBytes);
            pending.push(rest.subarray(0, take));
            pendingBytes += take;
            rest = rest.subarray(take);
            const end = Math.min((index + 1) * CHUNK_SIZE, total);
            if (index * CHUNK_SIZE + pendingBytes === end) await flush();
          }
        },
        async close() {
          if (pendingBytes) await flush();
        },
      },
      { ...options, totalBytes: options.totalBytes ?? encryptedSize(options.plainSize) },
    );
  } finally {
    await handle.close();
  }
  const written = await fileLength(path);
  if (written !== options.plainSize) throw new Error(`decrypted ${written} bytes, the metadata says ${options.plainSize}`);
  return { bytes: written };
}
