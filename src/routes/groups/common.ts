// OpenAPI shorthands shared by the orbit routes.

export { jsonBody, jsonResponse } from '../../http/route';
export const noContent = (description: string) => ({ 204: { description } });
export { pageQuery } from '../../http/schemas';
