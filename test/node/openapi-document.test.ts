// The OpenAPI document as a generator or a linter sees it: Redocly's recommended rules pass, every
// operation has a unique operationId and the error codes it answers, and docs/API.md names every
// operation the document has (the reference in the repository stays in step with /openapi.json).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { ERROR_STATUS } from '../../src/domain/errors';
import { OPENAPI_DOCUMENT } from '../../src/http/openapi';

const root = join(import.meta.dirname, '../..');
type Operation = { operationId?: string; responses: Record<string, any>; parameters?: any[] };
const doc = createApp(() => {
  throw new Error('unused');
}).getOpenAPI31Document(OPENAPI_DOCUMENT) as unknown as { paths: Record<string, Record<string, Operation>>; components: any };
const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'orbital-openapi-'));
  writeFileSync(join(dir, 'openapi.json'), JSON.stringify(doc));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the OpenAPI document', () => {
  it('passes redocly lint with the recommended rules: no error, no warning', () => {
    const cli = join(root, 'node_modules/@redocly/cli/bin/cli.js');
    let out: string;
    try {
      out = execFileSync(process.execPath, [cli, 'lint', join(dir, 'openapi.json'), '--config', join(root, 'redocly.yaml'), '--format', 'json'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      });
    } catch (err) {
      out = String((err as { stdout?: string }).stdout);
    }
    const report = JSON.parse(out.slice(out.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
    expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  }, 60_000);

  it('names every operation once, `<resource>.<action>`', () => {
    const ids = operations.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z]+\.[a-zA-Z]+$/.test(id)), ids.join(' ')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('declares each error status with the codes of that status only, X-Request-Id, and Retry-After on 429; 408 and 431 from the Node parser on every operation', () => {
    for (const { path, method, op } of operations) {
      for (const [status, declared] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const response = declared.$ref ? doc.components.responses[declared.$ref.split('/').pop()] : declared;
        const codes: string[] = response.content['application/json'].schema.allOf[1].properties.error.properties.code.enum;
        expect(codes.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        // Node's parser refusals (408, 431) carry VALIDATION_ERROR, whose own status is 400.
        const statusOfCodes = status === '408' || status === '431' ? 400 : Number(status);
        for (const code of codes) expect(ERROR_STATUS[code as keyof typeof ERROR_STATUS], `${method} ${path} ${code}`).toBe(statusOfCodes);
        expect(response.headers['X-Request-Id'], `${method} ${path} ${status}`).toBeDefined();
        if (status === '429') expect(response.headers['Retry-After']).toBeDefined();
      }
      expect(op.responses['405'], `${method} ${path}`).toBeDefined();
      // What the Node server's parser answers before any route sees the request.
      expect([op.responses['408']?.$ref, op.responses['431']?.$ref], `${method} ${path}`).toEqual(['#/components/responses/RequestTimeout', '#/components/responses/HeadersTooLarge']);
    }
  });

  it('declares Idempotency-Key on the creating POSTs that honour it', () => {
    const withKey = operations.filter((o) => o.op.parameters?.some((p) => p.$ref === '#/components/parameters/IdempotencyKey')).map((o) => o.op.operationId);
    expect(withKey.sort()).toEqual(['invites.create', 'media.startUpload', 'messages.send', 'orbits.create', 'replies.create', 'threads.create']);
  });

  it('is in step with docs/API.md: every operation is named there by method and path', () => {
    const reference = readFileSync(join(root, 'docs/API.md'), 'utf8');
    const missing = operations.map((o) => `${o.method.toUpperCase()} ${o.path}`).filter((line) => !reference.includes(line));
    expect(missing).toEqual([]);
  });
});
