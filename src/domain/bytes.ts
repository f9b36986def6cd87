// Byte helpers for both runtimes. Buffer exists in Node and in workerd with nodejs_compat;
// it is the fastest base64 codec on both.
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isBase64(value: string): boolean {
  return B64.test(value);
}

/** Decoded byte length of a valid base64 string, without decoding it. */
export function base64DecodedLength(value: string): number {
  const padding = value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0;
  return (value.length / 4) * 3 - padding;
}

export function base64ToBytes(value: string): Uint8Array {
  return Buffer.from(value, 'base64');
}

export function bytesToBase64(value: Uint8Array | string): string {
  // PGlite hands bytea back as Uint8Array, pg and neon as Buffer; a hex string only if a driver skips parsing.
  if (typeof value === 'string') return Buffer.from(value.replace(/^\\x/, ''), 'hex').toString('base64');
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
}

export function bytesToHex(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
}

export function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

export async function sha256(data: string | Uint8Array): Promise<Uint8Array> {
  const input = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return new Uint8Array(await crypto.subtle.digest('SHA-256', input as Uint8Array<ArrayBuffer>));
}

const hmacKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();

/** A server secret as an HMAC-SHA256 key, imported once per secret (an import costs as much as a token check). */
export function hmacKey(secret: Uint8Array): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', secret as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    hmacKeys.set(secret, key);
  }
  return key;
}

/** HMAC-SHA256 with a server secret: for short secrets (invite codes) that a leaked dump must not reveal. */
export async function hmacSha256(secret: Uint8Array, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), new TextEncoder().encode(data)));
}

/** A 32-byte key derived from a server secret for one purpose, named by `label` (HKDF-SHA256, RFC 5869). */
export async function hkdfSha256(secret: Uint8Array, label: string): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey('raw', secret as Uint8Array<ArrayBuffer>, 'HKDF', false, ['deriveBits']);
  const params = { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(32), info: new TextEncoder().encode(label) };
  return new Uint8Array(await crypto.subtle.deriveBits(params, base, 256));
}
