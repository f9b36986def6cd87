// The authorization matrix (test/support/authz-table.ts) against the running server: every route
// the app serves × {no token, tampered token, expired token, non-member, pending member, member,
// owner}. A route without a row fails here. Each cell also checks the headers every answer owes:
// nosniff everywhere, no-store on authenticated answers, errors in the contract's shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { createApp } from '../../src/app';
import type { Deps } from '../../src/deps';
import { json } from '../support/api';
import { AUTHZ_ROWS, buildWorld, columnAuth, freshUser, isTokenColumn, ROLES, type Outcome, type Role, type Row, type World } from '../support/authz-table';
import { SocketRefused, type Target } from '../support/types';

let t: Target;
let w: World;
beforeAll(async () => {
  t = await createTarget();
  w = await buildWorld(t);
});
afterAll(() => t?.close());

/** What the app serves: the OpenAPI document's operations and the plain routes beside them (docs). */
async function servedRoutes(): Promise<{ routes: string[]; documented: Set<string>; publicInDoc: string[] }> {
  const doc = await json(await t.fetch('/openapi.json'));
  const documented = Object.entries<Record<string, { security?: unknown[] }>>(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, open: (op.security ?? []).length === 0 })),
  );
  const registered = createApp({} as Deps)
    .routes.filter((r) => r.method !== 'ALL')
    .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
  return {
    routes: [...new Set([...documented.map((d) => d.route), ...registered])].sort(),
    documented: new Set(documented.map((d) => d.route)),
    publicInDoc: documented.filter((d) => d.open).map((d) => d.route).sort(),
  };
}

interface CellResult {
  outcome: Outcome | string;
  problems: string[];
}

/** The error code of an error answer, checking its shape on the way. */
function errorOutcome(status: number, text: string, requestId: string | null, problems: string[]): string {
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    problems.push(`${status} without a JSON body: ${text.slice(0, 80)}`);
    return String(status);
  }
  const e = body?.error;
  if (typeof e?.code !== 'string' || typeof e.message !== 'string') {
    problems.push(`${status} not in the error shape: ${text.slice(0, 120)}`);
    return String(status);
  }
  if (requestId !== null && e.request_id !== requestId) problems.push(`${status} request_id ${e.request_id} ≠ X-Request-Id ${requestId}`);
  return e.code;
}

async function runCell(row: Row, role: Role, fixture: unknown): Promise<CellResult> {
  const as = isTokenColumn(role) ? w.users.owner : w.users[role as Exclude<Role, 'none' | 'tampered' | 'expired'>];
  const fresh = () => (isTokenColumn(role) ? Promise.resolve(as) : freshUser(w, role as 'owner'));
  const call = await row.call({ w, role, as, fixture, fresh });
  const auth = await columnAuth(role, call.as ?? as, w.users.nonMember.id);
  const problems: string[] = [];

  if (call.socket) {
    try {
      const socket = await t.socket(call.path, auth);
      socket.close();
      return { outcome: 101, problems };
    } catch (err) {
      if (!(err instanceof SocketRefused)) throw err;
      return { outcome: errorOutcome(err.status, err.body, null, problems), problems };
    }
  }

  const headers: Record<string, string> = { ...auth, ...call.headers };
  let body: BodyInit | undefined;
  if (call.raw) {
    headers['content-type'] = call.raw.contentType;
    body = call.raw.body as Uint8Array<ArrayBuffer>;
  } else if (call.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(call.body);
  }
  const res = await t.fetch(call.path, { method: call.method ?? 'GET', headers, body });
  if (res.headers.get('x-content-type-options') !== 'nosniff') problems.push(`${res.status} without X-Content-Type-Options: nosniff`);
  if (!row.public && !isTokenColumn(role) && !/\bno-store\b/.test(res.headers.get('cache-control') ?? '')) {
    problems.push(`authenticated ${res.status} without Cache-Control: no-store`);
  }
  const text = await res.text();
  if (res.status < 400) return { outcome: res.status, problems };
  return { outcome: errorOutcome(res.status, text, res.headers.get('x-request-id'), problems), problems };
}

describe('authorization matrix', () => {
  it('has exactly one row per route the app serves, public exactly where the contract says', async () => {
    const served = await servedRoutes();
    const rows = AUTHZ_ROWS.map((r) => r.route);
    expect(rows.filter((r, i) => rows.indexOf(r) !== i), 'duplicate rows').toEqual([]);
    expect([...rows].sort(), 'a route without a row (add it to test/support/authz-table.ts), or a row without a route').toEqual(served.routes);
    const publicRows = AUTHZ_ROWS.filter((r) => r.public).map((r) => r.route);
    // The document declares no bearer requirement exactly on the public rows it lists.
    expect(served.publicInDoc).toEqual(publicRows.filter((r) => served.documented.has(r)).sort());
  });

  for (const row of AUTHZ_ROWS) {
    it(row.route, async () => {
      const shared = row.setup && !row.perColumn ? await row.setup(w) : undefined;
      const outcomes: Partial<Record<Role, Outcome | string>> = {};
      const problems: string[] = [];
      for (const role of ROLES) {
        const fixture = row.perColumn ? await row.setup!(w) : shared;
        const cell = await runCell(row, role, fixture);
        outcomes[role] = cell.outcome;
        problems.push(...cell.problems.map((p) => `${role}: ${p}`));
      }
      expect({ outcomes, problems }).toEqual({ outcomes: row.expect, problems: [] });
    });
  }
});
