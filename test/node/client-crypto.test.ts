// Client profile v1: round trips, and an independent reading with node:crypto (what another client
// following the profile would do), so the CLI and the desktop client can read each other.
import { createDecipheriv, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../src/client/base64';
import {
  CHUNK_SIZE,
  DecryptError,
  FileCipher,
  OrbitCipher,
  PIECE_SIZE,
  encryptedSize,
  generateUserKeys,
  importPrivateKey,
  keyCheck,
  keyFingerprint,
  newMediaMetadata,
  newOrbitKey,
  newRecoverySecret,
  openKeyBackup,
  pad,
  pieceCount,
  sealKeyBackup,
  unpad,
  unwrapOrbitKey,
  wrapOrbitKey,
} from '../../src/client/crypto';

const GROUP = '0b7f3c1e-8a55-4c59-9f0e-6d1f2a3b4c5d';
const OTHER_GROUP = '1c8a4d2f-9b66-4d6a-8a1f-7e2a3b4c5d6e';
const MEDIA = '2d9b5e3a-ac77-4e7b-9b2a-8f3b4c5d6e7f';

/** AES-256-GCM open with node:crypto, from the profile's description alone. */
function nodeOpen(key: Uint8Array, iv: Uint8Array, aad: string, sealed: Uint8Array): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

describe('text fields', () => {
  it('round-trip, padded to 64-byte buckets, and readable by another implementation of the profile', async () => {
    const orbitKey = newOrbitKey();
    const cipher = await OrbitCipher.create(GROUP, 1, orbitKey);
    for (const text of ['', 'hi', 'x'.repeat(63), 'x'.repeat(64), 'Grüße 🚀 from orbit']) {
      const field = await cipher.seal('title', text);
      const bytes = fromBase64(field);
      const plainLength = new TextEncoder().encode(text).length;
      expect(bytes.length).toBe(12 + Math.ceil((plainLength + 1) / 64) * 64 + 16);
      expect(await cipher.open('title', field)).toBe(text);
      const padded = nodeOpen(orbitKey, bytes.subarray(0, 12), `orbital:v1:${GROUP}:title`, bytes.subarray(12));
      expect(Buffer.from(unpad(padded)).toString('utf8')).toBe(text);
    }
  });

  it('uses a fresh IV every time', async () => {
    const cipher = await OrbitCipher.create(GROUP, 1, newOrbitKey());
    expect(await cipher.seal('body', 'same')).not.toBe(await cipher.seal('body', 'same'));
  });

  it('fails to open under another orbit, another kind, another key, or after tampering', async () => {
    const orbitKey = newOrbitKey();
    const cipher = await OrbitCipher.create(GROUP, 1, orbitKey);
    const field = await cipher.seal('title', 'secret title');
    await expect(cipher.open('body', field)).rejects.toBeInstanceOf(DecryptError);
    await expect((await OrbitCipher.create(OTHER_GROUP, 1, orbitKey)).open('title', field)).rejects.toBeInstanceOf(DecryptError);
    await expect((await OrbitCipher.create(GROUP, 1, newOrbitKey())).open('title', field)).rejects.toBeInstanceOf(DecryptError);
    const tampered = fromBase64(field);
    tampered[20]! ^= 1;
    await expect(cipher.open('title', toBase64(tampered))).rejects.toBeInstanceOf(DecryptError);
    await expect(cipher.open('title', 'not base64!')).rejects.toBeInstanceOf(DecryptError);
  });

  it('padding is 0x80 then zeros, and malformed padding is refused', () => {
    expect(Array.from(pad(new Uint8Array([1, 2])).subarray(0, 4))).toEqual([1, 2, 0x80, 0]);
    expect(pad(new Uint8Array(64)).length).toBe(128);
    expect(() => unpad(new Uint8Array(64))).toThrow(DecryptError);
    expect(Array.from(unpad(new Uint8Array([0, 0x80, 0, 0])))).toEqual([0]);
  });
});

describe('keys', () => {
  it('wraps an orbit key for a member that only that member can unwrap', async () => {
    const alice = await generateUserKeys();
    const bob = await generateUserKeys();
    expect(alice.publicJwk).toMatchObject({ kty: 'RSA', e: 'AQAB', alg: 'RSA-OAEP-256' });
    expect(alice.publicJwk).not.toHaveProperty('d');
    expect(Buffer.from(alice.publicJwk.n!, 'base64url').length).toBe(384);
    const orbitKey = newOrbitKey();
    const wrapped = await wrapOrbitKey(orbitKey, alice.publicJwk);
    expect(fromBase64(wrapped).length).toBe(384);
    expect(Array.from(await unwrapOrbitKey(wrapped, await importPrivateKey(alice.privateJwk)))).toEqual(Array.from(orbitKey));
    await expect(unwrapOrbitKey(wrapped, await importPrivateKey(bob.privateJwk))).rejects.toBeInstanceOf(DecryptError);
  });

  it('key_check is the first 16 bytes of HMAC-SHA256(key, "orbital key check v1")', async () => {
    const orbitKey = newOrbitKey();
    const expected = createHmac('sha256', orbitKey).update('orbital key check v1').digest().subarray(0, 16).toString('base64');
    expect(await keyCheck(orbitKey)).toBe(expected);
    expect(await keyCheck(newOrbitKey())).not.toBe(expected);
  });

  it('fingerprints are RFC 7638 thumbprints (the RFC example)', async () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    const hex = Buffer.from('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', 'base64url').toString('hex');
    expect((await keyFingerprint({ kty: 'RSA', n, e: 'AQAB', alg: 'RS256', kid: 'x' } as never)).replace(/ /g, '')).toBe(hex);
  });

  it('a key backup opens with its recovery secret and nothing else', async () => {
    const { privateJwk } = await generateUserKeys();
    const secret = newRecoverySecret();
    expect(secret).toMatch(/^([A-Z2-9]{4}-){6}[A-Z2-9]{4}$/);
    const backup = await sealKeyBackup(privateJwk, secret, 'user-1', 1000);
    expect(fromBase64(backup.backup).length).toBeLessThan(16 * 1024);
    expect(JSON.stringify(backup.kdf).length).toBeLessThan(1024);
    expect(await openKeyBackup(backup, secret, 'user-1')).toEqual(privateJwk);
    await expect(openKeyBackup(backup, newRecoverySecret(), 'user-1')).rejects.toBeInstanceOf(DecryptError);
    await expect(openKeyBackup(backup, secret, 'user-2')).rejects.toBeInstanceOf(DecryptError);
  });
});

describe('media', () => {
  const plainSize = 2 * PIECE_SIZE + 1234;
  const plain = new Uint8Array(plainSize).map((_, i) => (i * 31 + 7) & 0xff);

  async function encryptAll(meta: ReturnType<typeof newMediaMetadata>) {
    const count = pieceCount(plainSize);
    const cipher = await FileCipher.create(meta, MEDIA, count);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < count; i++) chunks.push(await cipher.encryptPiece(i, plain.subarray(i * PIECE_SIZE, (i + 1) * PIECE_SIZE)));
    return { cipher, chunks };
  }

  it('every ciphertext chunk but the last is exactly 5 MiB, and sizes add up to size_bytes', async () => {
    const { chunks } = await encryptAll(newMediaMetadata('a.bin', 'application/octet-stream', plainSize));
    expect(chunks.map((c) => c.length)).toEqual([CHUNK_SIZE, CHUNK_SIZE, 1234 + 16]);
    expect(encryptedSize(plainSize)).toBe(2 * CHUNK_SIZE + 1250);
    expect(encryptedSize(0)).toBe(16);
    expect(pieceCount(PIECE_SIZE)).toBe(1);
  });

  it('any chunk decrypts alone, also with node:crypto from the profile text', async () => {
    const meta = newMediaMetadata('a.bin', 'application/octet-stream', plainSize);
    const { chunks } = await encryptAll(meta);
    const fresh = await FileCipher.create(meta, MEDIA, 3);
    expect(Buffer.from(await fresh.decryptChunk(1, chunks[1]!)).equals(Buffer.from(plain.subarray(PIECE_SIZE, 2 * PIECE_SIZE)))).toBe(true);
    const iv = Buffer.concat([Buffer.from(meta.nonce_prefix, 'base64'), Buffer.from([0, 0, 0, 2])]);
    const last = nodeOpen(Buffer.from(meta.key, 'base64'), iv, `orbital:v1:media:${MEDIA}:2:1`, chunks[2]!);
    expect(last.equals(Buffer.from(plain.subarray(2 * PIECE_SIZE)))).toBe(true);
  });

  it('a chunk moved to another index, another file, or cut short (last flag) does not decrypt', async () => {
    const meta = newMediaMetadata('a.bin', 'application/octet-stream', plainSize);
    const { cipher, chunks } = await encryptAll(meta);
    await expect(cipher.decryptChunk(0, chunks[1]!)).rejects.toBeInstanceOf(DecryptError);
    await expect((await FileCipher.create(meta, OTHER_GROUP, 3)).decryptChunk(1, chunks[1]!)).rejects.toBeInstanceOf(DecryptError);
    // A truncated file whose chunk 1 pretends to be the last one.
    await expect((await FileCipher.create(meta, MEDIA, 2)).decryptChunk(1, chunks[1]!)).rejects.toBeInstanceOf(DecryptError);
  });

  it('metadata travels sealed under the orbit key', async () => {
    const cipher = await OrbitCipher.create(GROUP, 1, newOrbitKey());
    const meta = newMediaMetadata('holiday.jpg', 'image/jpeg', 42);
    const sealed = await cipher.sealMetadata(meta);
    expect(sealed).not.toContain('holiday');
    expect(await cipher.openMetadata(sealed)).toEqual(meta);
    await expect(cipher.openMetadata(await cipher.seal('metadata', '{"v":2}'))).rejects.toBeInstanceOf(DecryptError);
  });
});
