// An S3-compatible object store as the blob store (Node): AWS S3, R2's S3 API, MinIO-style
// servers. The same multipart model as R2: one upload per media file, one part per 5 MiB chunk,
// parts in any order, completion with the part list. Requests are signed by aws4fetch (SigV4);
// part bodies stream through to the store (UNSIGNED-PAYLOAD, a known Content-Length).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AwsClient } from 'aws4fetch';
import type { Config } from '../config';
import { PartDigestError, PartSizeError, type BlobStore, type ByteSource } from '../deps';

/** The request itself on Node (see http/request-body.ts): S3's fetch takes a web stream. */
const webStream = (body: ByteSource): ReadableStream<Uint8Array> =>
  body instanceof ReadableStream ? body : (Readable.toWeb(Readable.from(body)) as ReadableStream<Uint8Array>);

export interface S3Options {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** endpoint/bucket/key instead of bucket.endpoint/key (MinIO-style servers, most self-hosted ones). */
  forcePathStyle: boolean;
}

/** The store's settings from a parsed configuration (parseConfig checked BLOB_STORE=s3 has them). */
export function s3Options(config: Config): S3Options {
  return {
    endpoint: config.S3_ENDPOINT!,
    bucket: config.S3_BUCKET!,
    region: config.S3_REGION,
    accessKeyId: config.S3_ACCESS_KEY_ID!,
    secretAccessKey: config.S3_SECRET_ACCESS_KEY!,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
  };
}

/** A request the store refused, with S3's error code (NoSuchUpload, InvalidPart, …). */
export class S3Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`S3 ${status} ${code}: ${message}`);
  }
}

/** DeleteObjects takes at most this many keys a call. */
const DELETE_BATCH = 1000;

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
const xmlText = (xml: string, tag: string) => xml.match(new RegExp(`<${tag}>([^<]*)</${tag}>`))?.[1];

async function failure(res: Response): Promise<S3Error> {
  const body = await res.text().catch(() => '');
  return new S3Error(res.status, xmlText(body, 'Code') ?? 'Unknown', xmlText(body, 'Message') ?? res.statusText);
}

/** Passes bytes [offset, offset + length) of a stream and cancels the rest. */
function slice(offset: number, length: number): TransformStream<Uint8Array, Uint8Array> {
  let at = 0;
  return new TransformStream({
    transform(chunk, controller) {
      const from = Math.max(0, offset - at);
      const to = Math.min(chunk.byteLength, offset + length - at);
      at += chunk.byteLength;
      if (to > from) controller.enqueue(chunk.subarray(from, to));
      if (at >= offset + length) controller.terminate();
    },
  });
}

export function s3BlobStore(options: S3Options): BlobStore {
  const client = new AwsClient({
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    region: options.region,
    service: 's3',
    retries: 2,
  });
  const endpoint = new URL(options.endpoint);
  const bucketUrl = (() => {
    const u = new URL(endpoint);
    if (options.forcePathStyle) u.pathname = `${u.pathname.replace(/\/$/, '')}/${encodeURIComponent(options.bucket)}`;
    else u.hostname = `${options.bucket}.${u.hostname}`;
    return u.toString().replace(/\/$/, '');
  })();
  // Keys are ours (media/<uuid>…): '/' stays a separator, the rest is percent-encoded.
  const objectUrl = (key: string, query = '') => `${bucketUrl}/${key.split('/').map(encodeURIComponent).join('/')}${query}`;

  const send = async (url: string, init: RequestInit, ok: (status: number) => boolean = (s) => s >= 200 && s < 300) => {
    const res = await client.fetch(url, init);
    if (!ok(res.status)) throw await failure(res);
    return res;
  };

  const abort = async (key: string, handle: string) => {
    const res = await send(objectUrl(key, `?uploadId=${encodeURIComponent(handle)}`), { method: 'DELETE' }, (s) => s < 300 || s === 404);
    await res.body?.cancel();
  };

  const objectSize = async (key: string): Promise<number | null> => {
    const res = await send(objectUrl(key), { method: 'HEAD' }, (s) => s < 300 || s === 404);
    return res.status === 404 ? null : Number(res.headers.get('content-length'));
  };

  return {
    async createUpload(key) {
      const xml = await (await send(objectUrl(key, '?uploads'), { method: 'POST' })).text();
      const id = xmlText(xml, 'UploadId');
      if (!id) throw new S3Error(200, 'NoUploadId', 'CreateMultipartUpload answered without an UploadId');
      return id;
    },

    async putPart(key, handle, index, body, size, expected) {
      if (!handle) throw new Error('S3 parts need an upload id');
      // Counted and hashed on the way through. The digest is checked before the last bytes go
      // out, so a wrong size or digest always leaves the request short of its Content-Length: the
      // store drops it and never keeps a rejected copy of the part.
      const hash = expected ? createHash('sha256') : null;
      let received = 0;
      let refused: Error | undefined;
      const verify = () => {
        if (hash && hash.digest('hex') !== expected!.toLowerCase()) throw (refused = new PartDigestError('part does not match its SHA-256'));
      };
      const checked = webStream(body).pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            received += chunk.byteLength;
            if (received > size) throw (refused = new PartSizeError(`part is larger than ${size} bytes`));
            hash?.update(chunk);
            if (received === size) verify();
            controller.enqueue(chunk);
          },
          flush() {
            if (received !== size) throw (refused = new PartSizeError(`part has ${received} bytes, expected ${size}`));
            if (size === 0) verify();
          },
        }),
      );
      const url = objectUrl(key, `?partNumber=${index + 1}&uploadId=${encodeURIComponent(handle)}`);
      // Signed once and sent once: a streamed body cannot be replayed by a retry.
      const request = await client.sign(url, {
        method: 'PUT',
        body: checked,
        headers: { 'content-length': String(size) },
        duplex: 'half',
      } as RequestInit);
      let res: Response;
      try {
        res = await fetch(request);
      } catch (err) {
        throw refused ?? err;
      }
      if (refused) throw refused;
      if (!res.ok) throw await failure(res);
      await res.body?.cancel();
      const etag = res.headers.get('etag');
      if (!etag) throw new S3Error(res.status, 'NoETag', 'UploadPart answered without an ETag');
      return { etag, size };
    },

    async completeUpload(key, handle, parts, partSizes) {
      if (!handle) throw new Error('S3 completion needs an upload id');
      const sorted = [...parts].sort((a, b) => a.index - b.index);
      const xml =
        '<CompleteMultipartUpload>' +
        sorted.map((p) => `<Part><PartNumber>${p.index + 1}</PartNumber><ETag>${xmlEscape(p.etag)}</ETag></Part>`).join('') +
        '</CompleteMultipartUpload>';
      try {
        const res = await send(objectUrl(key, `?uploadId=${encodeURIComponent(handle)}`), {
          method: 'POST',
          body: xml,
          headers: { 'content-type': 'application/xml' },
        });
        // S3 may answer 200 and report the failure in the body.
        const answer = await res.text();
        if (answer.includes('<Error>')) throw new S3Error(200, xmlText(answer, 'Code') ?? 'Unknown', xmlText(answer, 'Message') ?? 'completion failed');
      } catch (err) {
        // A retry after a completion whose answer was lost: the object is already there.
        const size = await objectSize(key);
        if (size === null || size !== partSizes.reduce((a, b) => a + b, 0)) throw err;
      }
    },

    async abortUpload(key, handle) {
      if (handle) await abort(key, handle);
    },

    async get(key, range) {
      const headers: Record<string, string> = range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
      const res = await send(objectUrl(key), { headers }, (s) => s < 300 || s === 404);
      if (res.status === 404 || !res.body) {
        await res.body?.cancel();
        return null;
      }
      if (!range) return { body: res.body, size: Number(res.headers.get('content-length')) };
      // HTTP lets a server ignore Range (200, the whole object): then cut the range out here.
      return { body: res.status === 206 ? res.body : res.body.pipeThrough(slice(range.offset, range.length)), size: range.length };
    },

    async delete(key, handle) {
      const res = await send(objectUrl(key), { method: 'DELETE' }, (s) => s < 300 || s === 404);
      await res.body?.cancel();
      if (handle) await abort(key, handle);
    },

    async deleteMany(blobs) {
      for (let i = 0; i < blobs.length; i += DELETE_BATCH) {
        const batch = blobs.slice(i, i + DELETE_BATCH);
        const xml =
          '<Delete><Quiet>true</Quiet>' + batch.map((b) => `<Object><Key>${xmlEscape(b.key)}</Key></Object>`).join('') + '</Delete>';
        // DeleteObjects requires an integrity header; Content-MD5 is the one every server knows.
        const md5 = createHash('md5').update(xml).digest('base64');
        const res = await send(`${bucketUrl}/?delete`, { method: 'POST', body: xml, headers: { 'content-type': 'application/xml', 'content-md5': md5 } });
        const answer = await res.text();
        if (answer.includes('<Error>')) throw new S3Error(200, xmlText(answer, 'Code') ?? 'Unknown', xmlText(answer, 'Message') ?? 'batch delete failed');
      }
      for (const b of blobs) if (b.handle) await abort(b.key, b.handle);
    },

    async ping() {
      const res = await send(`${bucketUrl}/`, { method: 'HEAD' });
      await res.body?.cancel();
    },
  };
}
