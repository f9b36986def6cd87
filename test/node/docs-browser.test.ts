// /docs as a person sees it: Debian's Chromium (driven by playwright-core) renders the interactive
// reference from this server alone — every request stays on the server's own address. Without a
// system Chromium the test is skipped with one line saying so, unless REQUIRE_BROWSER=1.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '../support/node-target';
import { serverUrl } from '../support/offered';
import { BROWSER_SKIPPED, browserRequired, findChromium } from '../support/system-browser';

const CHROMIUM = findChromium();
if (!CHROMIUM && !browserRequired()) console.warn(BROWSER_SKIPPED);
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe.skipIf(!CHROMIUM && !browserRequired())('/docs in a real browser', () => {
  let t: Awaited<ReturnType<typeof createTarget>>;
  let context: BrowserContext | undefined;
  let profile: string | undefined;

  beforeAll(async () => {
    if (!CHROMIUM) throw new Error(`REQUIRE_BROWSER=1 but ${BROWSER_SKIPPED.replace('docs-browser test skipped: ', '')}`);
    t = await createTarget();
    // A fresh profile per run: no cached pages, no extensions, no sign-in.
    profile = mkdtempSync(join(tmpdir(), 'orbital-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 60_000 });
  });

  afterAll(async () => {
    await context?.close();
    await t?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('lists the endpoints from /openapi.json, with every request going to this server only', async () => {
    const requested: string[] = [];
    context!.on('request', (req) => requested.push(req.url()));
    const server = new URL(await serverUrl(t));

    const page = await context!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const res = await page.goto(`${server.origin}/docs`, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);

    await page.getByText('/api/auth/register', { exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.getByText('/api/groups', { exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
    await expect(page.title()).resolves.toBe('Orbital relay API');

    // Every operation of the OpenAPI document is on the page, by method and path.
    const doc = (await (await t.fetch('/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const shown = await page.locator('.opblock-summary').evaluateAll((blocks) =>
      blocks.map((b) => `${b.querySelector('.opblock-summary-method')?.textContent?.trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`),
    );
    expect(documented.length).toBeGreaterThan(10);
    expect(shown.sort()).toEqual(documented.sort());

    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: join('test-results', 'docs.png'), fullPage: true });

    expect(errors).toEqual([]);
    expect(requested).toContain(`${server.origin}/openapi.json`);
    const elsewhere = requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== server.origin);
    expect(elsewhere).toEqual([]);
    await page.close();
  });
});
