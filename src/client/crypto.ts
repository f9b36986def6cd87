// Client profile v1 (API.md, "Client profile v1") with WebCrypto only, so any client that follows
// the profile reads what this one writes. Choices the profile leaves open, fixed here:
//
// - Text padding: UTF-8 plaintext, then 0x80, then 0x00 bytes up to the next multiple of 64 bytes
//   (ISO/IEC 7816-4). Lengths leak only to 64-byte buckets. Readers strip trailing zeros and the 0x80.
// - Relay envelopes (kind "envelope") carry the message text as UTF-8, padded the same way.
// - encrypted_metadata (kind "metadata") is padded UTF-8 JSON:
//   {"v":1,"name","type","size" (plaintext bytes),"key" (base64 file key),"nonce_prefix" (base64)}.
// - Key fingerprint: RFC 7638 JWK thumbprint (SHA-256), shown as hex groups for people to compare.
// - Key backup: the private JWK as JSON, AES-256-GCM under a PBKDF2-SHA-256 key from a recovery
//   secret (never the login password); backup = base64(IV ‖ ciphertext ‖ tag), associated data
//   `orbital:v1:key-backup:<user_id>`, kdf = {v:1, name:"PBKDF2", hash:"SHA-256", iterations, salt}.
import { fromBase64, toBase64, toHex } from './base64';

export const RSA_BITS = 3072;
/** Ciphertext chunk size of the media endpoints (5 MiB). */
export const CHUNK_SIZE = 5 * 1024 * 1024;
const TAG_BYTES = 16;
/** Plaintext piece size: one piece plus its GCM tag is exactly one 5 MiB chunk. */
export const PIECE_SIZE = CHUNK_SIZE - TAG_BYTES;
export const PAD_BLOCK = 64;
const IV_BYTES = 12;
const KEY_CHECK_LABEL = 'orbital key check v1';
export const BACKUP_ITERATIONS = 600_000;

export type TextKind = 'name' | 'title' | 'body' | 'reply' | 'envelope' | 'metadata';

export class DecryptError extends Error {
  override name = 'DecryptError';
}

const subtle = () => globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });
const buf = (bytes: Uint8Array) => bytes as Uint8Array<ArrayBuffer>;

export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// ---------- padding ----------

export function pad(plain: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(Math.ceil((plain.length + 1) / PAD_BLOCK) * PAD_BLOCK);
  out.set(plain);
  out[plain.length] = 0x80;
  return out;
}

export function unpad(padded: Uint8Array): Uint8Array {
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (end < 0 || padded[end] !== 0x80) throw new DecryptError('bad padding');
  return padded.subarray(0, end);
}

// ---------- user key pair ----------

const RSA_PARAMS = { name: 'RSA-OAEP', hash: 'SHA-256' } as const;

export interface UserKeys {
  publicJwk: JsonWebKey;
  privateJwk: JsonWebKey;
}

export async function generateUserKeys(): Promise<UserKeys> {
  const pair = await subtle().generateKey({ ...RSA_PARAMS, modulusLength: RSA_BITS, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['encrypt', 'decrypt']);
  const publicJwk = await subtle().exportKey('jwk', pair.publicKey);
  const privateJwk = await subtle().exportKey('jwk', pair.privateKey);
  return { publicJwk: { kty: publicJwk.kty, n: publicJwk.n, e: publicJwk.e, alg: 'RSA-OAEP-256', ext: true, key_ops: ['encrypt'] }, privateJwk };
}

export function importPublicKey(jwk: JsonWebKey): Promise<CryptoKey> {
  return subtle().importKey('jwk', { kty: jwk.kty, n: jwk.n, e: jwk.e, alg: 'RSA-OAEP-256', ext: true }, RSA_PARAMS, false, ['encrypt']);
}

export function importPrivateKey(jwk: JsonWebKey): Promise<CryptoKey> {
  return subtle().importKey('jwk', { ...jwk, alg: 'RSA-OAEP-256', key_ops: ['decrypt'] }, RSA_PARAMS, false, ['decrypt']);
}

/** RFC 7638 thumbprint of an RSA public key, as 16 groups of 4 hex digits. */
export async function keyFingerprint(jwk: { kty?: unknown; n?: unknown; e?: unknown }): Promise<string> {
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.e !== 'string') throw new DecryptError('not an RSA public key of profile v1');
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  const digest = new Uint8Array(await subtle().digest('SHA-256', utf8.encode(canonical)));
  return toHex(digest).match(/.{4}/g)!.join(' ');
}

// ---------- orbit keys ----------

export const ORBIT_KEY_BYTES = 32;

export function newOrbitKey(): Uint8Array<ArrayBuffer> {
  return randomBytes(ORBIT_KEY_BYTES);
}

/** The orbit key of one epoch wrapped for one member: base64 RSA-OAEP ciphertext. */
export async function wrapOrbitKey(orbitKey: Uint8Array, publicKey: CryptoKey | JsonWebKey): Promise<string> {
  const key = publicKey instanceof CryptoKey ? publicKey : await importPublicKey(publicKey);
  return toBase64(new Uint8Array(await subtle().encrypt(RSA_PARAMS, key, buf(orbitKey))));
}

export async function unwrapOrbitKey(wrapped: string, privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  let raw: ArrayBuffer;
  try {
    raw = await subtle().decrypt(RSA_PARAMS, privateKey, fromBase64(wrapped));
  } catch {
    throw new DecryptError('this orbit key was not wrapped for this key pair');
  }
  if (raw.byteLength !== ORBIT_KEY_BYTES) throw new DecryptError('an orbit key is 32 bytes');
  return new Uint8Array(raw);
}

/** key_check: the first 16 bytes of HMAC-SHA256(orbit key, "orbital key check v1"), base64. */
export async function keyCheck(orbitKey: Uint8Array): Promise<string> {
  const key = await subtle().importKey('raw', buf(orbitKey), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await subtle().sign('HMAC', key, utf8.encode(KEY_CHECK_LABEL)));
  return toBase64(mac.subarray(0, 16));
}

function aesKey(raw: Uint8Array, usages: KeyUsage[] = ['encrypt', 'decrypt']): Promise<CryptoKey> {
  return subtle().importKey('raw', buf(raw), { name: 'AES-GCM' }, false, usages);
}

async function seal(key: CryptoKey, iv: Uint8Array, aad: string, plain: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: buf(iv), additionalData: utf8.encode(aad) }, key, buf(plain)));
}

async function open(key: CryptoKey, iv: Uint8Array, aad: string, sealed: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: buf(iv), additionalData: utf8.encode(aad) }, key, buf(sealed)));
  } catch {
    throw new DecryptError('ciphertext does not open with this key and context');
  }
}

/** Text fields of one orbit at one key epoch: base64(IV ‖ ciphertext ‖ tag), AAD `orbital:v1:<group_id>:<kind>`. */
export class OrbitCipher {
  private constructor(
    readonly groupId: string,
    readonly epoch: number,
    private readonly key: CryptoKey,
  ) {}

  static async create(groupId: string, epoch: number, orbitKey: Uint8Array): Promise<OrbitCipher> {
    if (orbitKey.length !== ORBIT_KEY_BYTES) throw new DecryptError('an orbit key is 32 bytes');
    return new OrbitCipher(groupId, epoch, await aesKey(orbitKey));
  }

  private aad(kind: TextKind) {
    return `orbital:v1:${this.groupId}:${kind}`;
  }

  async sealBytes(kind: TextKind, plain: Uint8Array): Promise<string> {
    const iv = randomBytes(IV_BYTES);
    const sealed = await seal(this.key, iv, this.aad(kind), pad(plain));
    const out = new Uint8Array(IV_BYTES + sealed.length);
    out.set(iv);
    out.set(sealed, IV_BYTES);
    return toBase64(out);
  }

  async openBytes(kind: TextKind, field: string): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(field);
    } catch {
      throw new DecryptError('not base64');
    }
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new DecryptError('too short');
    return unpad(await open(this.key, bytes.subarray(0, IV_BYTES), this.aad(kind), bytes.subarray(IV_BYTES)));
  }

  seal(kind: TextKind, text: string): Promise<string> {
    return this.sealBytes(kind, utf8.encode(text));
  }

  async open(kind: TextKind, field: string): Promise<string> {
    const bytes = await this.openBytes(kind, field);
    try {
      return fromUtf8.decode(bytes);
    } catch {
      throw new DecryptError('not UTF-8');
    }
  }

  async sealMetadata(meta: MediaMetadata): Promise<string> {
    return this.seal('metadata', JSON.stringify(meta));
  }

  async openMetadata(field: string): Promise<MediaMetadata> {
    const meta = JSON.parse(await this.open('metadata', field)) as MediaMetadata;
    if (meta?.v !== 1 || typeof meta.key !== 'string' || typeof meta.nonce_prefix !== 'string') throw new DecryptError('not profile v1 media metadata');
    return meta;
  }
}

// ---------- media ----------

export interface MediaMetadata {
  v: 1;
  name: string;
  type: string;
  /** Plaintext size in bytes. */
  size: number;
  /** base64 32-byte file key. */
  key: string;
  /** base64 8-byte nonce prefix (also sent as encryption_iv). */
  nonce_prefix: string;
}

/** Pieces of a plaintext of this size (an empty file is one empty piece). */
export function pieceCount(plainSize: number): number {
  return Math.max(1, Math.ceil(plainSize / PIECE_SIZE));
}

/** size_bytes of the upload: every piece grows by its 16-byte tag. */
export function encryptedSize(plainSize: number): number {
  return plainSize + pieceCount(plainSize) * TAG_BYTES;
}

/** Plaintext bytes held by ciphertext chunk `index` of a file of `plainSize` bytes. */
export function pieceLength(plainSize: number, index: number): number {
  return Math.min(PIECE_SIZE, plainSize - index * PIECE_SIZE);
}

export function newMediaMetadata(name: string, type: string, size: number): MediaMetadata {
  return { v: 1, name, type, size, key: toBase64(randomBytes(32)), nonce_prefix: toBase64(randomBytes(8)) };
}

/** Chunk-wise AES-256-GCM of one file: any chunk encrypts and decrypts on its own. */
export class FileCipher {
  private constructor(
    private readonly key: CryptoKey,
    private readonly prefix: Uint8Array,
    readonly mediaId: string,
    readonly chunkCount: number,
  ) {}

  static async create(meta: Pick<MediaMetadata, 'key' | 'nonce_prefix'>, mediaId: string, chunkCount: number): Promise<FileCipher> {
    const raw = fromBase64(meta.key);
    const prefix = fromBase64(meta.nonce_prefix);
    if (raw.length !== 32 || prefix.length !== 8) throw new DecryptError('a file key is 32 bytes and its nonce prefix 8');
    return new FileCipher(await aesKey(raw), prefix, mediaId, chunkCount);
  }

  private context(index: number) {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunkCount) throw new RangeError(`chunk ${index} outside 0…${this.chunkCount - 1}`);
    const iv = new Uint8Array(12);
    iv.set(this.prefix);
    new DataView(iv.buffer).setUint32(8, index);
    const last = index === this.chunkCount - 1 ? 1 : 0;
    return { iv, aad: `orbital:v1:media:${this.mediaId}:${index}:${last}` };
  }

  encryptPiece(index: number, plain: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
    const { iv, aad } = this.context(index);
    if (plain.length > PIECE_SIZE || (index < this.chunkCount - 1 && plain.length !== PIECE_SIZE)) throw new RangeError('every piece but the last is exactly PIECE_SIZE');
    return seal(this.key, iv, aad, plain);
  }

  decryptChunk(index: number, chunk: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
    const { iv, aad } = this.context(index);
    return open(this.key, iv, aad, chunk);
  }
}

// ---------- key backup ----------

export interface KeyBackup {
  backup: string;
  kdf: { v: 1; name: 'PBKDF2'; hash: 'SHA-256'; iterations: number; salt: string };
}

/** A recovery secret people can write down: 28 base32 symbols (140 bits) in groups of four. */
export function newRecoverySecret(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return Array.from(randomBytes(28), (b) => alphabet[b & 31])
    .join('')
    .match(/.{4}/g)!
    .join('-');
}

async function backupKey(secret: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const material = await subtle().importKey('raw', utf8.encode(secret.normalize('NFKC')), 'PBKDF2', false, ['deriveKey']);
  return subtle().deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt: buf(salt), iterations }, material, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

export async function sealKeyBackup(privateJwk: JsonWebKey, recoverySecret: string, userId: string, iterations = BACKUP_ITERATIONS): Promise<KeyBackup> {
  const salt = randomBytes(16);
  const iv = randomBytes(IV_BYTES);
  const key = await backupKey(recoverySecret, salt, iterations);
  const sealed = await seal(key, iv, `orbital:v1:key-backup:${userId}`, utf8.encode(JSON.stringify(privateJwk)));
  const out = new Uint8Array(IV_BYTES + sealed.length);
  out.set(iv);
  out.set(sealed, IV_BYTES);
  return { backup: toBase64(out), kdf: { v: 1, name: 'PBKDF2', hash: 'SHA-256', iterations, salt: toBase64(salt) } };
}

export async function openKeyBackup(stored: { backup: string; kdf: Record<string, unknown> }, recoverySecret: string, userId: string): Promise<JsonWebKey> {
  const { kdf } = stored;
  if (kdf.name !== 'PBKDF2' || kdf.hash !== 'SHA-256' || typeof kdf.iterations !== 'number' || typeof kdf.salt !== 'string') {
    throw new DecryptError('unknown key backup format');
  }
  const bytes = fromBase64(stored.backup);
  const key = await backupKey(recoverySecret, fromBase64(kdf.salt), kdf.iterations);
  let plain: Uint8Array;
  try {
    plain = await open(key, bytes.subarray(0, IV_BYTES), `orbital:v1:key-backup:${userId}`, bytes.subarray(IV_BYTES));
  } catch {
    throw new DecryptError('this recovery secret does not open the key backup');
  }
  return JSON.parse(fromUtf8.decode(plain)) as JsonWebKey;
}
