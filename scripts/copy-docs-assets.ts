// Wrangler's build step (wrangler.toml `[build]`): copies the files the docs page serves out of
// swagger-ui-dist, so a deploy uploads those and not the whole package with its source maps.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DOCS_FILES } from '../src/routes/docs/index';

export function copyDocsAssets(target = 'build/docs-assets'): void {
  const root = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  mkdirSync(target, { recursive: true });
  for (const file of DOCS_FILES) copyFileSync(join(root, file), join(target, file));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) copyDocsAssets();
