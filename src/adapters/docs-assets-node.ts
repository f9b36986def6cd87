import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { DocsAssets } from '../deps';

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };

/** Serves the docs page's files from the installed swagger-ui-dist package. */
export function nodeDocsAssets(): DocsAssets {
  const root = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const cache = new Map<string, Uint8Array>();
  return async (file) => {
    let body = cache.get(file);
    if (!body) {
      try {
        body = await readFile(join(root, file));
      } catch {
        return null;
      }
      cache.set(file, body);
    }
    const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
    return new Response(body as Uint8Array<ArrayBuffer>, { headers: { 'content-type': type, 'cache-control': 'public, max-age=86400' } });
  };
}
