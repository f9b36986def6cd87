// Small builders for the OpenAPI request and response entries of the media routes.
export const json = <T>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });
export const ok = <T>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });
