// The disk blob store (Node): the R2 multipart model on a folder. Each part is written to a
// temporary file while hashed and counted, then renamed into place (atomic, any order, repeats
// harmless). A completed object is its parts plus a manifest; reads stream across parts.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { PartSizeError, type BlobStore } from '../deps';

const SAFE_KEY = /^[A-Za-z0-9_-][A-Za-z0-9/_-]{0,200}$/;
const partName = (index: number) => `${String(index).padStart(6, '0')}.part`;

export function fsBlobStore(root: string): BlobStore {
  const dir = (key: string) => {
    if (!SAFE_KEY.test(key) || key.includes('..')) throw new Error('unsafe blob key');
    return join(root, 'objects', key);
  };
  const manifestPath = (key: string) => join(dir(key), 'manifest.json');
  const readManifest = async (key: string): Promise<number[] | null> => {
    try {
      return (JSON.parse(await readFile(manifestPath(key), 'utf8')) as { sizes: number[] }).sizes;
    } catch {
      return null;
    }
  };

  return {
    async createUpload(key) {
      await mkdir(dir(key), { recursive: true });
      return null;
    },

    async putPart(key, _handle, index, body, size) {
      const folder = dir(key);
      await mkdir(folder, { recursive: true });
      const temp = join(folder, `${partName(index)}.${randomUUID()}.tmp`);
      const hash = createHash('sha256');
      let received = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          received += chunk.length;
          if (received > size) return done(new PartSizeError(`part is larger than ${size} bytes`));
          hash.update(chunk);
          done(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(body as NodeWebStream<Uint8Array>), counter, createWriteStream(temp));
        if (received !== size) throw new PartSizeError(`part has ${received} bytes, expected ${size}`);
        await rename(temp, join(folder, partName(index)));
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      const sha256 = hash.digest('hex');
      return { etag: sha256, sha256, size };
    },

    async completeUpload(key, _handle, parts, partSizes) {
      for (const part of parts) await stat(join(dir(key), partName(part.index)));
      const temp = `${manifestPath(key)}.${randomUUID()}.tmp`;
      await writeFile(temp, JSON.stringify({ sizes: partSizes }));
      await rename(temp, manifestPath(key));
    },

    async abortUpload(key) {
      await rm(dir(key), { recursive: true, force: true });
    },

    async get(key, range) {
      const sizes = await readManifest(key);
      if (!sizes) return null;
      const total = sizes.reduce((a, b) => a + b, 0);
      const offset = range?.offset ?? 0;
      const length = range?.length ?? total - offset;
      const folder = dir(key);
      async function* chunks() {
        let partStart = 0;
        const end = offset + length;
        for (let i = 0; i < sizes!.length && partStart < end; i++) {
          const partEnd = partStart + sizes![i]!;
          if (partEnd > offset) {
            const from = Math.max(offset, partStart) - partStart;
            const to = Math.min(end, partEnd) - partStart - 1;
            yield* createReadStream(join(folder, partName(i)), { start: from, end: to, highWaterMark: 256 * 1024 });
          }
          partStart = partEnd;
        }
      }
      return { body: Readable.toWeb(Readable.from(chunks())) as ReadableStream<Uint8Array>, size: length };
    },

    async delete(key) {
      await rm(dir(key), { recursive: true, force: true });
    },

    async ping() {
      await mkdir(join(root, 'objects'), { recursive: true });
      await stat(join(root, 'objects'));
    },
  };
}
