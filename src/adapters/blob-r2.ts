// R2 as the blob store (Workers): one multipart upload per media file, one 5 MiB part per chunk.
import type { R2Bucket, ReadableStream as CfReadableStream } from '@cloudflare/workers-types';
import { bytesToHex } from '../domain/bytes';
import { PartDigestError, PartSizeError, type BlobStore } from '../deps';

declare const FixedLengthStream: new (length: number) => TransformStream<Uint8Array, Uint8Array>;
declare namespace crypto {
  class DigestStream extends WritableStream<Uint8Array> {
    constructor(algorithm: string);
    readonly digest: Promise<ArrayBuffer>;
  }
}

export function r2BlobStore(bucket: R2Bucket): BlobStore {
  return {
    async createUpload(key) {
      const upload = await bucket.createMultipartUpload(key);
      return upload.uploadId;
    },

    async putPart(key, handle, index, body, size, expected) {
      if (!handle) throw new Error('R2 parts need an upload id');
      // One pass over the body feeds both the part (a FixedLengthStream, so R2 knows the length
      // up front) and the digest; counted here so a wrong size is a clear PartSizeError. A manual
      // pump: workerd cannot pipeTo() from a JS-backed stream into its native ones.
      const fixed = new FixedLengthStream(size);
      const digest = expected ? new crypto.DigestStream('SHA-256') : null;
      const stored = bucket.resumeMultipartUpload(key, handle).uploadPart(index + 1, fixed.readable as unknown as CfReadableStream);
      const pumped = (async () => {
        // On Workers the route hands over the web body (http/request-body.ts).
        const reader = (body as ReadableStream<Uint8Array>).getReader();
        const out = fixed.writable.getWriter();
        const hash = digest?.getWriter();
        // Aborting errors these too; their rejections are the same error, handled below.
        for (const settled of [reader.closed, out.closed, hash?.closed, digest?.digest]) settled?.catch(() => {});
        try {
          let received = 0;
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            received += value.byteLength;
            if (received > size) throw new PartSizeError(`part is larger than ${size} bytes`);
            await hash?.write(value);
            await out.write(value);
          }
          if (received !== size) throw new PartSizeError(`part has ${received} bytes, expected ${size}`);
          await hash?.close();
          await out.close();
        } catch (err) {
          await Promise.allSettled([out.abort(err), hash?.abort(err), reader.cancel(err)]);
          throw err;
        }
      })();
      const [part, pump] = await Promise.allSettled([stored, pumped]);
      if (pump.status === 'rejected') throw pump.reason;
      if (part.status === 'rejected') throw part.reason;
      if (expected && digest && bytesToHex(new Uint8Array(await digest.digest)) !== expected.toLowerCase()) {
        throw new PartDigestError('part does not match its SHA-256');
      }
      return { etag: part.value.etag, size };
    },

    async completeUpload(key, handle, parts, partSizes) {
      if (!handle) throw new Error('R2 completion needs an upload id');
      try {
        await bucket.resumeMultipartUpload(key, handle).complete(parts.map((p) => ({ partNumber: p.index + 1, etag: p.etag })));
      } catch (err) {
        // A retry after a completion whose answer was lost: the object is already there.
        const head = await bucket.head(key);
        if (!head || head.size !== partSizes.reduce((a, b) => a + b, 0)) throw err;
      }
    },

    async abortUpload(key, handle) {
      if (!handle) return;
      try {
        await bucket.resumeMultipartUpload(key, handle).abort();
      } catch {
        // Already completed or aborted: nothing left to free.
      }
    },

    async get(key, range) {
      const object = await bucket.get(key, range ? { range: { offset: range.offset, length: range.length } } : undefined);
      if (!object || !('body' in object)) return null;
      return { body: object.body as unknown as ReadableStream<Uint8Array>, size: range ? range.length : object.size };
    },

    async delete(key, handle) {
      await bucket.delete(key);
      if (handle) await this.abortUpload(key, handle);
    },

    async deleteMany(blobs) {
      for (let i = 0; i < blobs.length; i += 1000) await bucket.delete(blobs.slice(i, i + 1000).map((b) => b.key));
      for (const b of blobs) if (b.handle) await this.abortUpload(b.key, b.handle);
    },

    async ping() {
      await bucket.head('.orbital-ping');
    },
  };
}
