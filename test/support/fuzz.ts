// Hostile requests for every route, generated from the OpenAPI document with fast-check: path
// params, query, headers and bodies drawn from the schema (so requests get deep into handlers)
// mixed with hostile values (huge and unicode strings, NUL bytes, wrong types, extreme numbers,
// non-UUIDs, deep JSON, prototype-pollution keys, invalid base64, bad cursors, bad Range headers,
// bad Idempotency-Keys, garbage tokens). test/api/fuzz.test.ts sends them and checks the answers.
import fc from 'fast-check';
import { DOCS_FILES } from '../../src/routes/docs';
import { ERROR_STATUS, type ErrorCode } from '../../src/domain/errors';
import { bearer } from './api';
import type { UserRole, World } from './authz-table';

// ---------- JSON with raw parts (deep nesting a JS value could not even be serialized from) ----------

const RAW = Symbol('raw JSON text');
type RawJson = { [RAW]: string };
const raw = (text: string): RawJson => ({ [RAW]: text });

/** JSON text of a generated value: raw parts verbatim, own `__proto__` keys kept. */
export function jsonText(value: unknown): string {
  if (value && typeof value === 'object' && RAW in value) return (value as RawJson)[RAW];
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.keys(value).map((k) => `${JSON.stringify(k)}:${jsonText((value as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** An object literal whose keys may include `__proto__` as an own property (as JSON.parse makes it). */
function objectOf(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

// ---------- hostile values ----------

const NASTY_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', 'null', 'undefined', 'NaN', 'Infinity', '-1', '1e309', '0x10', 'true', '[]', '{}',
  '%00', '%', '%zz', '../../../etc/passwd', "' or 1=1 --", "'); drop table users; --", '<script>alert(1)</script>',
  '\u202e\u0301\u200b', '𝕆𝕣𝕓𝕚𝕥 🚀', '\uFFFF', '\uD800', 'me', '__proto__', 'constructor', '$where',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-0000-0000-000000000000', 'ABCDEF01-2345-4678-89AB-CDEF01234567',
  '2020-02-30T00:00:00Z', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z',
];

const HUGE_STRINGS = ['a'.repeat(70_000), '€'.repeat(30_000), '\u0000'.repeat(10_000), 'A'.repeat(5_000)];

const shortString = fc.oneof(
  fc.constantFrom(...NASTY_STRINGS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.uuid(),
);
export const hostileString = fc.oneof({ weight: 6, arbitrary: shortString }, { weight: 1, arbitrary: fc.constantFrom(...HUGE_STRINGS) });

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.constantFrom(-1, 0, -0, 0.5, 1.5, 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const invalidBase64 = fc.constantFrom('a', 'ab=', '====', 'YQ', 'Y Q==', 'YQ==\n', '!!!!', 'YWJj\u0000', 'YWJjZA', '-_-_', 'YWJj====', 'é+/=');
const oversizedBase64 = fc.constantFrom(Buffer.alloc(70_000, 1).toString('base64'), Buffer.alloc(300_000, 2).toString('base64'));

const deepJson = fc.oneof(
  fc.integer({ min: 500, max: 12_000 }).map((d) => raw('['.repeat(d) + ']'.repeat(d))),
  fc.integer({ min: 500, max: 6_000 }).map((d) => raw('{"a":'.repeat(d) + '1' + '}'.repeat(d))),
);
const pollution = fc.constantFrom(
  raw('{"__proto__":{"polluted":true,"d":"x","kty":"RSA"}}'),
  raw('{"constructor":{"prototype":{"polluted":true}}}'),
  raw('{"__proto__":null}'),
  raw('{"toString":1,"valueOf":{},"hasOwnProperty":"x"}'),
);

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null, [], {}, [null], [[]]) },
  { weight: 1, arbitrary: invalidBase64 },
  { weight: 1, arbitrary: oversizedBase64 },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: pollution },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

// ---------- values from the schema (so requests reach the handlers) ----------

type Schema = Record<string, any>;
export interface OpenApiDoc {
  paths: Record<string, Record<string, Schema>>;
  components: { schemas: Record<string, Schema> };
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const b64url = (text: string) => Buffer.from(text).toString('base64url');

function resolve(doc: OpenApiDoc, schema: Schema): Schema {
  return schema.$ref ? resolve(doc, doc.components.schemas[schema.$ref.split('/').pop()!]!) : schema;
}

const validJwk = fc.constantFrom(
  { kty: 'OKP', crv: 'X25519', x: b64url('k'.repeat(32)) },
  { kty: 'EC', crv: 'P-256', x: b64url('x'.repeat(32)), y: b64url('y'.repeat(32)) },
  { kty: 'RSA', n: b64url('n'.repeat(384)), e: 'AQAB', alg: 'RSA-OAEP-256' },
);
const hostileJwk = fc.oneof(
  fc.record({ kty: fc.constantFrom('RSA', 'EC', 'OKP', 'oct', ''), crv: hostileValue, x: hostileValue, n: hostileValue, e: hostileValue, d: fc.option(hostileValue) }),
  fc.constant({ kty: 'RSA', n: 'A'.repeat(2048), e: 'AQAB', extra: 'x'.repeat(7000) }),
  fc.tuple(deepJson).map(([deep]) => ({ kty: 'OKP', crv: 'X25519', x: 'abc', deep })),
  pollution,
);

/** How values are drawn: `hostile` mixes hostile values and extra keys into the schema's fields. */
interface Gen {
  doc: OpenApiDoc;
  ids: Ids;
  hostile: boolean;
}

/** A value the schema accepts (from the world's real ids where it names one), or with `hostile` mostly so. */
function schemaValue(g: Gen, schema: Schema, name: string, depth: number): fc.Arbitrary<unknown> {
  const s = resolve(g.doc, schema);
  const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
  if (types.includes('null') && types.length > 1) {
    return fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: schemaValue(g, { ...s, type: types.find((t) => t !== 'null') }, name, depth) });
  }
  if (s.enum) return fc.constantFrom(...s.enum);
  switch (types[0]) {
    case 'object':
      if (s.properties) return objectFor(g, s, depth + 1);
      if (name === 'public_key') return g.hostile ? fc.oneof(validJwk, hostileJwk) : validJwk;
      return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
    case 'array':
      return fc.array(fieldValue(g, s.items ?? {}, name, depth + 1), { minLength: Math.min(s.minItems ?? 0, 2), maxLength: Math.min(s.maxItems ?? 3, 3) });
    case 'integer':
      return fc.integer({ min: Math.max(s.minimum ?? 0, -10), max: Math.min(s.maximum ?? 1000, name === 'key_epoch' ? 3 : 2000) });
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'string':
      if (s.format === 'uuid') return fc.oneof({ weight: 4, arbitrary: idFor(g.ids, name) }, { weight: 1, arbitrary: fc.uuid() });
      if (s.format === 'byte') return fc.uint8Array({ minLength: 1, maxLength: 96 }).map(b64);
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
      if (name.includes('password')) return fc.string({ minLength: 12, maxLength: 40 });
      if (name === 'invite_code' || name === 'code') return fc.oneof(fc.constant(g.ids.inviteCode), fc.string({ minLength: 8, maxLength: 8 }));
      if (name === 'refresh_token') return fc.oneof(fc.constant(g.ids.refreshToken), fc.string({ minLength: 1, maxLength: 60 }));
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 80) });
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A field: from the schema, and with `hostile` sometimes a hostile value instead. */
function fieldValue(g: Gen, schema: Schema, name: string, depth: number): fc.Arbitrary<unknown> {
  if (!g.hostile) return schemaValue(g, schema, name, depth);
  if (depth > 4) return hostileValue;
  return fc.oneof({ weight: 5, arbitrary: schemaValue(g, schema, name, depth) }, { weight: 2, arbitrary: hostileValue });
}

const ABSENT = Symbol('absent');
function objectFor(g: Gen, schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const props = Object.entries<Schema>(schema.properties ?? {});
  const required = new Set<string>(schema.required ?? []);
  const fields = props.map(([name, s]) => {
    const value = fieldValue(g, s, name, depth);
    if (required.has(name) && !g.hostile) return value;
    return fc.oneof({ weight: required.has(name) ? 12 : 2, arbitrary: value }, { weight: 1, arbitrary: fc.constant(ABSENT) });
  });
  const extra = g.hostile
    ? fc.option(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'extra', ''), hostileValue), { freq: 4 })
    : fc.constant(null);
  return fc.tuple(fc.tuple(...fields), extra).map(([values, more]) => {
    const entries: Array<[string, unknown]> = props.map(([name], i) => [name, values[i]] as [string, unknown]).filter(([, v]) => v !== ABSENT);
    if (more) entries.push(more);
    return objectOf(entries);
  });
}

// ---------- requests ----------

/** Real ids of the fuzz world, by what a parameter names. */
export interface Ids {
  groupIds: string[];
  threadIds: string[];
  replyIds: string[];
  mediaIds: string[];
  userIds: string[];
  sessionIds: string[];
  inviteCode: string;
  refreshToken: string;
}

function idFor(ids: Ids, name: string): fc.Arbitrary<string> {
  const key = name.replace(/_id$/, '').replace(/Id$/, '').toLowerCase();
  const pools: Record<string, string[]> = {
    group: ids.groupIds,
    thread: ids.threadIds,
    reply: ids.replyIds,
    parent_reply: ids.replyIds,
    media: ids.mediaIds,
    user: ids.userIds,
    session: ids.sessionIds,
  };
  const pool = pools[key] ?? [...ids.groupIds, ...ids.threadIds, ...ids.mediaIds, ...ids.userIds];
  return fc.constantFrom(...pool);
}

/** A path segment: mostly encoded, sometimes raw (broken percent-encoding, dot segments). */
const encode = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80'; // a lone surrogate, as the invalid UTF-8 a client would send
  }
};
const rawSegments = fc.constantFrom('%', '%zz', '%c0%af', '%ED%A0%80', '%00', '..', '.', '%2e%2e', '%2F', 'a%20b', ';x=1', '~');
const limitText = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);

function validPathParam(name: string, ids: Ids): fc.Arbitrary<string> {
  if (name === 'index') return fc.constantFrom('0', '1');
  if (name === 'file') return fc.constantFrom(...DOCS_FILES);
  if (name === 'code') return fc.constant(ids.inviteCode);
  if (name === 'userId') return fc.oneof(idFor(ids, name), fc.constant('me'));
  return idFor(ids, name);
}

const hostilePathParam = fc.oneof(
  { weight: 3, arbitrary: hostileString.map((s) => limitText(encode(s), 3000)) },
  { weight: 1, arbitrary: rawSegments },
  { weight: 1, arbitrary: fc.constantFrom('-1', '1e3', '999999999999', '0x1', '00', '+1', '%201', '1.0') },
);

const numberText = fc.oneof(
  fc.constantFrom('-1', '0', '1', '50', '100', '101', '1e2', '1.5', '9007199254740993', '99999999999999999999', ' 5', '5 ', '0x10', '', 'Infinity', 'NaN', '-0', '+5', '1_000'),
  fc.integer().map(String),
);

const cursorText = fc.oneof(
  shortString.map((s) => limitText(s, 300)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => b64url(JSON.stringify(v))),
  fc.constantFrom<unknown[]>(
    ['0000-01-01T00:00:00Z', '00000000-0000-4000-8000-000000000000'],
    ['2020-02-30T00:00:00Z', '00000000-0000-4000-8000-000000000000'],
    ['9999-12-31T23:59:59.999999Z', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
    ['+275760-09-13T00:00:00.000Z', '00000000-0000-4000-8000-000000000000'],
    ['activity', 1e300],
    ['activity', -1],
    [1e300],
    [-1],
    [2 ** 53],
    [2 ** 31],
    ['1'],
    [null],
  ).map((v) => b64url(JSON.stringify(v))),
);

function hostileQueryValue(name: string, schema: Schema): fc.Arbitrary<string> {
  if (name === 'cursor') return cursorText;
  if (name === 'ticket') return fc.oneof(shortString.map((s) => limitText(s, 200)), fc.constant('x'.repeat(129)));
  const hostile = shortString.map((s) => limitText(s, 2000));
  if (schema.enum) return fc.oneof(fc.constantFrom(...schema.enum.map(String)), hostile);
  if (schema.type === 'integer') return fc.oneof(numberText, hostile);
  return hostile;
}

/** A query value the route accepts; null leaves the parameter out. */
function validQueryValue(name: string, schema: Schema): fc.Arbitrary<string | null> {
  if (schema.enum) return fc.constantFrom(...schema.enum.map(String));
  if (name === 'limit') return fc.integer({ min: 1, max: 100 }).map(String);
  if (schema.type === 'integer') return fc.integer({ min: 0, max: 30 }).map(String);
  return fc.constant(null);
}

// Header values: visible ASCII, tab and space (Node also gets Latin-1 bytes, which its parser takes
// as they are; workerd's fetch warns on each of them, as a browser would refuse them).
const ASCII = [...Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i)), '\t'];
const LATIN1 = [...ASCII, 'é', 'ÿ', '\u0080', '\u00a0'];
let headerChars = LATIN1;
/** Keep header values to ASCII (for targets whose fetch warns about other bytes). */
export function asciiHeadersOnly() {
  headerChars = ASCII;
}
const headerText = fc.oneof(
  fc.constant(null).chain(() => fc.string({ unit: fc.constantFrom(...headerChars), maxLength: 100 })),
  fc.constantFrom('', 'x'.repeat(65), 'x'.repeat(4000), '"', '*', 'W/"x"', 'null', ',,,', 'bytes'),
);
const rangeText = fc.oneof(
  fc.constantFrom(
    'bytes=', 'bytes=-', 'bytes=-0', 'bytes=0-', 'bytes=0-0', 'bytes=5-1', 'bytes=0-0,1-1', 'bytes=99999999999999999999-',
    'bytes=-99999999999999999999', 'bytes=1e3-2e3', 'bytes= 0 - 5', 'items=0-1', 'bytes=0x10-0x20', 'bytes=-9007199254740993',
    'bytes=9007199254740993-9007199254740995', 'bytes=1000-', 'bytes=999-999', 'bytes=0-18446744073709551616', 'bytes=--1', 'bytes=1--2',
  ),
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `bytes=${a}-${b}`),
  fc.nat().map((n) => `bytes=-${n}`),
  headerText,
);
const AUTH_GARBAGE = [
  'Bearer', 'Bearer ', 'bearer abc', 'Basic dXNlcjpwYXNz', 'Bearer a.b.c', 'Bearer ....', 'Bearer ' + 'x'.repeat(4000),
  // Shaped like ours, never valid: alg none, a crit header, a payload that is not JSON.
  `Bearer ${b64url('{"alg":"none","typ":"JWT"}')}.${b64url('{"sub":"x","sid":"y","typ":"access","exp":9999999999}')}.`,
  `Bearer ${b64url('{"alg":"HS256","crit":["b64"],"b64":false}')}.${b64url('{}')}.AAAA`,
  `Bearer ${b64url('{"alg":"HS256"}')}.${b64url('not json')}.AAAA`,
];

export type Who = UserRole | 'anonymous' | 'garbage';
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  who: Who;
}

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'APPLICATION/JSON', 'application/octet-stream'];
const GARBAGE_BODIES = ['', '{', '{"a":', 'null', '[]', '"x"', '1', '\u0000', '{"a":1}{"b":2}', '\ufeff{}', '{"a":1,"a":2}', '\u00ff\u00fe{'];

/** Turns one value of a valid body bad: a hostile value instead, or its string broken (NUL, unpaired surrogate, huge). */
const spoiler: fc.Arbitrary<(value: unknown) => unknown> = fc.oneof(
  hostileValue.map((bad) => () => bad),
  fc.constantFrom<(s: string) => string>(
    (s) => `${s}\u0000`,
    (s) => `\u0000${s}`,
    (s) => `${s}\uD800`,
    (s) => `\uDC00${s}`,
    (s) => `${s}\u202e\u0301`,
    (s) => s.repeat(2000).slice(0, 100_000) || 'x'.repeat(100_000),
    (s) => ` ${s} `,
    (s) => s.toUpperCase(),
    (s) => s.slice(0, -1),
  ).map((f) => (value: unknown) => f(typeof value === 'string' ? value : JSON.stringify(value) ?? '')),
);

/** The body with the value at one of its paths (the n-th, cyclically) replaced by spoil(value). */
function spoilOne(body: unknown, n: number, spoil: (value: unknown) => unknown): unknown {
  const slots: Array<{ holder: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((child, i) => (slots.push({ holder: v, key: i }), walk(child)));
    else if (v && typeof v === 'object') for (const k of Object.keys(v)) slots.push({ holder: v as Record<string, unknown>, key: k }), walk((v as Record<string, unknown>)[k]);
  };
  const copy = structuredClone(body);
  walk(copy);
  if (!slots.length) return spoil(copy);
  const { holder, key } = slots[n % slots.length]!;
  (holder as Record<string | number, unknown>)[key] = spoil((holder as Record<string | number, unknown>)[key]);
  return copy;
}

/** The parts of a request the fuzzer spoils: each request spoils at most two, the rest stay valid. */
const PARTS = ['auth', 'path', 'query', 'headers', 'body', 'contentType'] as const;
type Part = (typeof PARTS)[number];

/**
 * Every way to call one operation. A request starts valid (a real user, the world's ids, a body
 * from the schema) and has up to two of its parts made hostile, so most requests get past the
 * early checks and the hostile part meets the code behind them.
 */
export function requestFor(doc: OpenApiDoc, w: World, ids: Ids, method: string, template: string): fc.Arbitrary<FuzzRequest> {
  const op = doc.paths[template]?.[method] ?? {};
  const params: Schema[] = op.parameters ?? [];
  const pathNames = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const queryParams = params.filter((p) => p.in === 'query').map((p) => ({ name: p.name as string, schema: resolve(doc, p.schema ?? {}) }));
  const content = op.requestBody?.content ?? {};
  const jsonSchema = content['application/json']?.schema;
  const octets = 'application/octet-stream' in content;
  const hasRange = params.some((p) => p.in === 'header' && p.name === 'range');
  const pick = <T>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<T>) => ({ valid, hostile });

  const who = pick(fc.constantFrom<Who>('owner', 'owner', 'owner', 'member', 'pending', 'nonMember'), fc.constantFrom<Who>('anonymous', 'garbage'));
  const pathOf = (spoil: boolean) =>
    fc.tuple(...pathNames.map((n) => (spoil ? fc.oneof(validPathParam(n, ids), hostilePathParam) : validPathParam(n, ids)))).map((values) => {
      let out = template;
      pathNames.forEach((n, i) => (out = out.replace(`{${n}}`, values[i]!)));
      return out;
    });
  const queryOf = (spoil: boolean) =>
    fc
      .tuple(
        fc.tuple(...queryParams.map((p) => fc.option(spoil ? hostileQueryValue(p.name, p.schema) : validQueryValue(p.name, p.schema), { freq: 2 }))),
        spoil ? fc.option(fc.tuple(fc.constantFrom('__proto__', 'access_token', 'token', 'limit[]', 'cursor', 'after_seq', 'x'), shortString.map((s) => limitText(s, 500)))) : fc.constant(null),
      )
      .map(([values, extra]) => {
        const parts = queryParams.flatMap((p, i) => (values[i] == null ? [] : [`${encode(p.name)}=${encode(values[i]!)}`]));
        if (extra) parts.push(`${encode(extra[0])}=${encode(extra[1])}`);
        return parts.length ? `?${parts.join('&')}` : '';
      });
  const validHeaders = fc.record(
    {
      'idempotency-key': method === 'post' ? fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/) : fc.constant(undefined),
      range: hasRange ? fc.constantFrom('bytes=0-9', 'bytes=-5', 'bytes=10-', 'bytes=0-0') : fc.constant(undefined),
      'if-none-match': hasRange ? fc.constantFrom(...ids.mediaIds.map((id) => `"${id}"`), '*') : fc.constant(undefined),
    },
    { requiredKeys: [] },
  );
  const hostileHeaders = fc.record(
    {
      'idempotency-key': method === 'post' ? headerText : fc.constant(undefined),
      range: hasRange ? rangeText : headerText,
      'if-range': headerText,
      'if-none-match': headerText,
      'x-chunk-sha256': octets ? fc.oneof(headerText, fc.stringMatching(/^[0-9a-f]{64}$/)) : fc.constant(undefined),
      'user-agent': headerText,
      'x-forwarded-for': fc.oneof(headerText, fc.constantFrom('::1', '999.1.1.1', '1.2.3.4, 5.6.7.8', 'unknown', '[::1]:80', '')),
    },
    { requiredKeys: [] },
  );
  type Body = { text?: string | Uint8Array; type?: string };
  const oneFieldSpoiled = fc.tuple(schemaValue({ doc, ids, hostile: false }, jsonSchema ?? {}, 'body', 0), fc.nat(), spoiler).map(([v, n, spoil]) => spoilOne(v, n, spoil));
  const bodyOf = (spoil: boolean): fc.Arbitrary<Body> => {
    if (jsonSchema) {
      const fromSchema = schemaValue({ doc, ids, hostile: spoil }, jsonSchema, 'body', 0).map((v): Body => ({ text: jsonText(v), type: 'application/json' }));
      if (!spoil) return fromSchema;
      return fc.oneof(
        { weight: 4, arbitrary: oneFieldSpoiled.map((v): Body => ({ text: jsonText(v), type: 'application/json' })) },
        { weight: 3, arbitrary: fromSchema }, { weight: 1, arbitrary: fc.constantFrom(...GARBAGE_BODIES).map((text): Body => ({ text })) }, { weight: 1, arbitrary: fc.constant<Body>({}) });
    }
    if (octets) return fc.oneof(fc.uint8Array({ minLength: spoil ? 0 : 100, maxLength: spoil ? 300 : 100 }).map((text): Body => ({ text, type: 'application/octet-stream' })), spoil ? fc.constant<Body>({}) : fc.constant<Body>({ text: new Uint8Array(100), type: 'application/octet-stream' }));
    return spoil ? fc.jsonValue({ maxDepth: 2 }).map((v): Body => ({ text: JSON.stringify(v) ?? '' })) : fc.constant<Body>({});
  };

  return fc.subarray([...PARTS], { maxLength: 2 }).chain((spoiled) => {
    const spoil = (part: Part) => spoiled.includes(part);
    return fc
      .record({
        who: spoil('auth') ? who.hostile : who.valid,
        garbageAuth: fc.constantFrom(...AUTH_GARBAGE),
        path: pathOf(spoil('path')),
        query: queryOf(spoil('query')),
        headers: spoil('headers') ? hostileHeaders : validHeaders,
        body: bodyOf(spoil('body')),
        contentType: fc.constantFrom(...CONTENT_TYPES),
      })
      .map((r): FuzzRequest => {
        const out: Record<string, string> = {};
        if (r.who === 'garbage') out.authorization = r.garbageAuth;
        else if (r.who !== 'anonymous') Object.assign(out, bearer(w.users[r.who].access));
        for (const [name, value] of Object.entries(r.headers)) if (value !== undefined) out[name] = value;
        const hasBody = r.body.text !== undefined && method !== 'get';
        if (hasBody) out['content-type'] = spoil('contentType') || !r.body.type ? r.contentType : r.body.type;
        return { method: method.toUpperCase(), path: r.path + r.query, headers: out, body: hasBody ? r.body.text : undefined, who: r.who };
      });
  });
}

// ---------- the checks ----------

const LEAKS = /\bat [^\n]*\.(?:ts|js|mjs|cjs):\d+|node_modules|\bselect\b[^"]{0,200}\bfrom\b|insert into|delete from|\bupdate\b\s+"?\w+"?\s+set\b|syntax error|violates|ZodError|DrizzleError|PostgresError|TypeError|RangeError|ReferenceError|Maximum call stack/i;

/** What is wrong with an answer, or null: never a 5xx, errors in the contract's shape, nothing internal. */
export function problemWith(res: Response, text: string): string | null {
  if (res.status >= 500) return `answered ${res.status}: ${text.slice(0, 300)}`;
  const type = res.headers.get('content-type') ?? '';
  if (res.status >= 400) {
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      return `${res.status} without a JSON body: ${text.slice(0, 200)}`;
    }
    const e = body?.error;
    if (typeof e?.code !== 'string' || typeof e.message !== 'string' || typeof e.request_id !== 'string') return `${res.status} not in the error shape: ${text.slice(0, 200)}`;
    if (ERROR_STATUS[e.code as ErrorCode] !== res.status) return `${res.status} with code ${e.code}`;
    if (e.request_id !== res.headers.get('x-request-id')) return `request_id ${e.request_id} differs from X-Request-Id`;
  }
  if (type.includes('json') && LEAKS.test(text)) return `${res.status} body looks internal: ${text.match(LEAKS)?.[0]} in ${text.slice(0, 300)}`;
  return null;
}

/** A short description of a request for a failure message. */
export function describeRequest(r: FuzzRequest): string {
  const body = r.body === undefined ? '' : typeof r.body === 'string' ? r.body : `<${r.body.length} bytes>`;
  const headers = Object.entries(r.headers)
    .filter(([k]) => k !== 'authorization')
    .map(([k, v]) => `${k}: ${limitText(v, 80)}`)
    .join('; ');
  return `${r.method} ${limitText(r.path, 300)} as ${r.who} [${headers}] ${limitText(body, 400)}`;
}
