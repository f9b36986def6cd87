// Rewrites the operation index of docs/API.md from the OpenAPI document (`npm run docs:api`), so
// the reference in the repository names every operation /openapi.json has. The prose around the
// markers is written by hand.
import { readFileSync, writeFileSync } from 'node:fs';
import { createApp } from '../src/app';
import { OPENAPI_DOCUMENT } from '../src/http/openapi';

type Operation = { operationId: string; summary?: string; tags?: string[]; responses: Record<string, any>; parameters?: { $ref?: string }[] };
const START = '<!-- operations:start (npm run docs:api) -->';
const END = '<!-- operations:end -->';
const file = new URL('../docs/API.md', import.meta.url);

const doc = createApp(() => {
  throw new Error('the document needs no dependencies');
}).getOpenAPI31Document(OPENAPI_DOCUMENT) as unknown as { paths: Record<string, Record<string, Operation>> };

const rows = new Map<string, string[]>();
for (const [path, item] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(item)) {
    const ok = Object.keys(op.responses).filter((s) => Number(s) < 400);
    const codes = Object.entries(op.responses)
      .filter(([s]) => Number(s) >= 400 && s !== '405' && s !== '500')
      .flatMap(([, r]) => r.content['application/json'].schema.allOf[1].properties.error.properties.code.enum as string[]);
    const idempotent = op.parameters?.some((p) => p.$ref?.endsWith('/IdempotencyKey')) ? ' Idempotency-Key.' : '';
    const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
    const tag = op.tags?.[0] ?? 'other';
    rows.set(tag, [
      ...(rows.get(tag) ?? []),
      `| \`${method.toUpperCase()} ${path}\` | \`${op.operationId}\` | ${cell(op.summary ?? '')}${idempotent} | ${ok.join(', ')} | ${codes.join(', ')} |`,
    ]);
  }
}

const index = [...rows]
  .map(([tag, lines]) => [`### ${tag}`, '', '| operation | operationId | what | answers | error codes |', '|---|---|---|---|---|', ...lines].join('\n'))
  .join('\n\n');
const text = readFileSync(file, 'utf8');
const before = text.slice(0, text.indexOf(START) + START.length);
const after = text.slice(text.indexOf(END));
if (!text.includes(START) || !text.includes(END)) throw new Error('docs/API.md lost its operation markers');
writeFileSync(file, `${before}\n\n${index}\n\n${after}`);
