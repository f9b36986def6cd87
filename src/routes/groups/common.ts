// OpenAPI shorthands shared by the orbit routes.
import { z } from '@hono/zod-openapi';
import { cursorQuery, limitQuery } from '../../http/schemas';

export const jsonBody = <T>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });
export const jsonResponse = <T>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });
export const noContent = (description: string) => ({ 204: { description } });

/** ?limit= (default 50, max 100) and ?cursor= of the keyset-paginated lists. */
export const pageQuery = z.object({ limit: limitQuery(50), cursor: cursorQuery });
