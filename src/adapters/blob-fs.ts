// The disk blob store (Node): the R2 multipart model on a folder. Each part is written to a
// temporary file while hashed and counted, then renamed into place under its index and digest
// (atomic, any order, repeats harmless, and a rejected copy never replaces an accepted one).
// A completed object is the parts its manifest names; reads stream across them.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PartDigestError, PartSizeError, type BlobStore } from '../deps';

const SAFE_KEY = /^[A-Za-z0-9_-][A-Za-z0-9/_-]{0,200}$/;
const partName = (index: number, etag: string) => `${String(index).padStart(6, '0')}.${etag}.part`;
const ETAG = /^(?:[0-9a-f]{32}|[0-9a-f]{64})$/;
const PART_FILE = /^[0-9]{6,10}\.(?:[0-9a-f]{32}|[0-9a-f]{64})\.part$/;
const WRITE_BATCH = 512 * 1024;

interface Manifest {
  parts: Array<{ file: string; size: number }>;
}

const isSafeKey = (key: string) => SAFE_KEY.test(key) && !key.includes('..');

/**
 * A manifest as completeUpload writes it, or null. Only part files of the object's own folder:
 * a manifest that arrived some other way (a restored archive) must not make a download read
 * `../../jwt-secret`.
 */
export function parseBlobManifest(text: string): Manifest | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const parts = (value as Manifest | null)?.parts;
  if (!Array.isArray(parts)) return null;
  const valid = parts.every((p) => typeof p?.file === 'string' && PART_FILE.test(p.file) && Number.isSafeInteger(p.size) && p.size >= 0);
  return valid ? { parts: parts.map((p) => ({ file: p.file, size: p.size })) } : null;
}

/** Whether `path` (relative to the store's objects folder) is a file this store writes and keeps. */
export function isBlobFile(path: string): boolean {
  const slash = path.lastIndexOf('/');
  const file = path.slice(slash + 1);
  return slash > 0 && isSafeKey(path.slice(0, slash)) && (file === 'manifest.json' || PART_FILE.test(file));
}

export function fsBlobStore(root: string): BlobStore {
  const dir = (key: string) => {
    if (!isSafeKey(key)) throw new Error('unsafe blob key');
    return join(root, 'objects', key);
  };
  const manifestPath = (key: string) => join(dir(key), 'manifest.json');
  const readManifest = async (key: string): Promise<Manifest | null> => {
    try {
      return parseBlobManifest(await readFile(manifestPath(key), 'utf8'));
    } catch {
      return null;
    }
  };

  return {
    async createUpload(key) {
      await mkdir(dir(key), { recursive: true });
      return null;
    },

    async putPart(key, _handle, index, body, size, expected) {
      // No mkdir: an upload whose folder is gone was aborted, and must not be brought back.
      const folder = dir(key);
      const temp = join(folder, `${String(index).padStart(6, '0')}.${randomUUID()}.tmp`);
      const hash = expected ? createHash('sha256') : null;
      const file = await open(temp, 'w');
      const pieces = body[Symbol.asyncIterator]();
      // Socket-sized pieces gathered into 512 KiB writes: far fewer calls into the file system.
      const batch = Buffer.allocUnsafe(Math.min(WRITE_BATCH, size));
      let filled = 0;
      let received = 0;
      try {
        for (;;) {
          const { done, value } = await pieces.next();
          if (done) break;
          received += value.byteLength;
          if (received > size) throw new PartSizeError(`part is larger than ${size} bytes`);
          hash?.update(value);
          if (filled + value.byteLength > batch.length) {
            await file.write(batch, 0, filled);
            filled = 0;
          }
          if (value.byteLength >= batch.length) {
            await file.write(value);
          } else {
            batch.set(value, filled);
            filled += value.byteLength;
          }
        }
        if (received !== size) throw new PartSizeError(`part has ${received} bytes, expected ${size}`);
        if (filled) await file.write(batch, 0, filled);
        await file.close();
      } catch (err) {
        // Stops reading (a web body is cancelled; Node's request is left for the answer to drain).
        await pieces.return?.().catch(() => {});
        await file.close().catch(() => {});
        await rm(temp, { force: true });
        throw err;
      }
      // Named by content when it was hashed, else by a fresh random name: either way a later copy
      // of the part never overwrites the file an earlier accepted copy names.
      const etag = hash ? hash.digest('hex') : randomUUID().replaceAll('-', '');
      if (expected && etag !== expected.toLowerCase()) {
        await rm(temp, { force: true });
        throw new PartDigestError('part does not match its SHA-256');
      }
      try {
        await rename(temp, join(folder, partName(index, etag)));
      } catch (err) {
        // The upload completed while this repeated copy arrived (completion clears stray files):
        // the object already holds the accepted copy of this part.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (await readManifest(key))) return { etag, size };
        throw err;
      }
      return { etag, size };
    },

    async completeUpload(key, _handle, parts, partSizes) {
      const manifest: Manifest = { parts: [] };
      for (const [i, part] of parts.entries()) {
        if (!ETAG.test(part.etag)) throw new Error('not a part of this store');
        const file = partName(part.index, part.etag);
        await stat(join(dir(key), file));
        manifest.parts.push({ file, size: partSizes[i]! });
      }
      const temp = `${manifestPath(key)}.${randomUUID()}.tmp`;
      await writeFile(temp, JSON.stringify(manifest));
      await rename(temp, manifestPath(key));
      // What a crash mid-chunk or a rejected copy left behind (temp files, parts the manifest does
      // not name) would otherwise stay on disk as long as the file.
      const keep = new Set([...manifest.parts.map((p) => p.file), 'manifest.json']);
      for (const file of await readdir(dir(key))) if (!keep.has(file)) await rm(join(dir(key), file), { force: true });
    },

    async abortUpload(key) {
      await rm(dir(key), { recursive: true, force: true });
    },

    async get(key, range) {
      const manifest = await readManifest(key);
      if (!manifest) return null;
      const parts = manifest.parts;
      const total = parts.reduce((a, p) => a + p.size, 0);
      const offset = range?.offset ?? 0;
      const length = range?.length ?? total - offset;
      const folder = dir(key);
      async function* chunks() {
        let partStart = 0;
        const end = offset + length;
        for (let i = 0; i < parts.length && partStart < end; i++) {
          const partEnd = partStart + parts[i]!.size;
          if (partEnd > offset) {
            const from = Math.max(offset, partStart) - partStart;
            const to = Math.min(end, partEnd) - partStart - 1;
            yield* createReadStream(join(folder, parts[i]!.file), { start: from, end: to, highWaterMark: 256 * 1024 });
          }
          partStart = partEnd;
        }
      }
      return { body: Readable.toWeb(Readable.from(chunks())) as ReadableStream<Uint8Array>, size: length };
    },

    async delete(key) {
      await rm(dir(key), { recursive: true, force: true });
    },

    async deleteMany(blobs) {
      // A few at a time: enough to overlap disk latency without flooding the thread pool.
      const queue = [...blobs];
      const worker = async () => {
        for (let b = queue.pop(); b; b = queue.pop()) await rm(dir(b.key), { recursive: true, force: true });
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    },

    async ping() {
      await mkdir(join(root, 'objects'), { recursive: true });
      await stat(join(root, 'objects'));
    },
  };
}
