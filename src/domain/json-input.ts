// Rules for text and free-form JSON that clients send and Postgres keeps. Postgres text cannot
// hold U+0000, and jsonb refuses \u0000 and unpaired surrogates; JSON.stringify (storage, hashing)
// recurses, so a few KiB nested thousands deep would exhaust the stack. Each of these would
// surface as a 500; checked here, they are the client's 400.

/** Nesting allowed in free-form JSON fields: far beyond any real JWK or KDF parameters. */
export const MAX_JSON_DEPTH = 16;

const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether Postgres can keep this string (as text, or inside jsonb). */
export const isStorableText = (s: string) => !UNSTORABLE.test(s);

/**
 * What makes a parsed JSON value unfit to store, or null: nesting deeper than `maxDepth`, or a key
 * or string Postgres cannot keep. Walks without recursing, so a deep value cannot overflow here.
 */
export function unstorableJson(value: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length) {
    const [v, depth] = pending.pop()!;
    if (typeof v === 'string') {
      if (!isStorableText(v)) return 'must not contain NUL characters or unpaired surrogates';
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) return `must not nest deeper than ${maxDepth} levels`;
    for (const [k, child] of Object.entries(v)) {
      if (!isStorableText(k)) return 'must not contain NUL characters or unpaired surrogates';
      pending.push([child, depth + 1]);
    }
  }
  return null;
}
