// R2 as the blob store (Workers): one multipart upload per media file, one 5 MiB part per chunk.
import type { R2Bucket, ReadableStream as CfReadableStream } from '@cloudflare/workers-types';
import { bytesToHex } from '../domain/bytes';
import { PartSizeError, type BlobStore } from '../deps';

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

    async putPart(key, handle, index, body, size) {
      if (!handle) throw new Error('R2 parts need an upload id');
      const [toStore, toHash] = body.tee();
      const digest = new crypto.DigestStream('SHA-256');
      const hashed = toHash.pipeTo(digest);
      // FixedLengthStream fails the upload when the body is not exactly `size` bytes.
      const sized = toStore.pipeThrough(new FixedLengthStream(size));
      let part;
      try {
        part = await bucket.resumeMultipartUpload(key, handle).uploadPart(index + 1, sized as unknown as CfReadableStream);
        await hashed;
      } catch (err) {
        await hashed.catch(() => {});
        if (err instanceof Error && /length|size|bytes/i.test(err.message)) throw new PartSizeError(err.message);
        throw err;
      }
      return { etag: part.etag, sha256: bytesToHex(new Uint8Array(await digest.digest)), size };
    },

    async completeUpload(key, handle, parts) {
      if (!handle) throw new Error('R2 completion needs an upload id');
      await bucket.resumeMultipartUpload(key, handle).complete(parts.map((p) => ({ partNumber: p.index + 1, etag: p.etag })));
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

    async ping() {
      await bucket.head('.orbital-ping');
    },
  };
}
