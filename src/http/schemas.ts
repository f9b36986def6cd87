// Schema building blocks shared by every route.
import { z } from '@hono/zod-openapi';
import { base64DecodedLength, isBase64 } from '../domain/bytes';
import { isStorableText } from '../domain/json-input';

/** Marks a zod issue that must answer 413 instead of 400. */
export const TOO_LARGE = 'too_large';

/** Standard base64 ciphertext of at most `maxBytes` decoded bytes. */
export const ciphertext = (maxBytes: number, what = 'ciphertext') =>
  z
    .string()
    .superRefine((value, ctx) => {
      if (!isBase64(value)) {
        ctx.addIssue({ code: 'custom', message: `${what} must be standard base64 with padding` });
      } else if (base64DecodedLength(value) > maxBytes) {
        ctx.addIssue({ code: 'custom', message: `${what} is larger than ${maxBytes} bytes`, params: { reason: TOO_LARGE, limit: maxBytes } });
      }
    })
    .openapi({ type: 'string', format: 'byte', description: `base64, at most ${maxBytes} decoded bytes` });

/** Free text the server looks up or keeps as a text column: at most `max` characters, no NUL. */
export const storableText = (max: number) =>
  z.string().max(max).refine(isStorableText, 'must not contain NUL characters or unpaired surrogates');

/** An id as the database gives it back: in lower case (an upper-case copy names the same row, and must key the same room, limit or cache). */
export const uuid = z.uuid().toLowerCase();
export const idParam = <N extends string>(name: N) =>
  z.object({ [name]: uuid.openapi({ param: { name, in: 'path' } }) } as { [K in N]: z.ZodUUID });

export const keyEpoch = z.number().int().min(1).max(2_147_483_647);

export const limitQuery = (dflt: number) =>
  z.coerce.number().int().min(1).max(100).default(dflt).openapi({ param: { name: 'limit', in: 'query' } });

export const cursorQuery = z.string().max(200).optional().openapi({ param: { name: 'cursor', in: 'query' } });

/** ?limit= (default 50, max 100) and ?cursor= of the keyset-paginated lists. */
export const pageQuery = z.object({ limit: limitQuery(50), cursor: cursorQuery });

export const timestamp = z.string().openapi({ format: 'date-time' });

/** The error shape (with its code enum) lives beside the other OpenAPI declarations. */
export { ErrorSchema } from './openapi';

export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });

/** Length of `bytes` bytes in padded base64: for body caps that follow a route's ciphertext caps. */
export const base64Size = (bytes: number) => Math.ceil(bytes / 3) * 4;

/** Room for a JSON body's keys, ids and whitespace around its ciphertext. */
export const JSON_OVERHEAD = 4 * 1024;

export const seqQuery = (name: string) =>
  z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).openapi({ param: { name, in: 'query' } });
