// HTTP conditional and range requests for downloads (RFC 9110 §13, §14), for one immutable file.

export type RangeChoice = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * One `bytes=` range → partial; an invalid header, another unit or several ranges → the whole
 * file (the RFC lets a server ignore Range); a well-formed range past the end → unsatisfiable.
 */
export function chooseRange(header: string | undefined, size: number): RangeChoice {
  if (!header) return { kind: 'full' };
  const match = /^\s*bytes\s*=\s*([^,]*?)\s*$/i.exec(header);
  if (!match) return { kind: 'full' };
  const spec = /^(\d*)-(\d*)$/.exec(match[1]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' };
  if (spec[1] === '') {
    const suffix = Number(spec[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === '' ? Number.POSITIVE_INFINITY : Number(spec[2]);
  if (last < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}

const tags = (header: string) => header.split(',').map((t) => t.trim()).filter(Boolean);
const opaque = (tag: string) => tag.replace(/^W\//, '');

/** If-None-Match: weak comparison, `*` matches any current file. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return tags(header).some((t) => t === '*' || opaque(t) === etag);
}

/**
 * If-Range: the range applies only when the validator still names this file — a strong ETag
 * match, or exactly its Last-Modified date. Otherwise the whole file is sent.
 */
export function ifRangeHolds(header: string | undefined, etag: string, lastModified: Date): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === etag;
  const date = Date.parse(value);
  return !Number.isNaN(date) && Math.floor(date / 1000) === Math.floor(lastModified.getTime() / 1000);
}
