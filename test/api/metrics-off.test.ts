// GET /metrics is off unless METRICS=on (Node), and on Workers there is none: an ordinary 404.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTarget } from '#target';
import { expectError } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

it('GET /metrics is 404 NOT_FOUND by default, even from loopback', async () => {
  await expectError(await t.fetch('/metrics'), 404, 'NOT_FOUND');
});
