// The tiny Worker that bench/hash.bench.ts drives through Miniflare: the Worker's own hasher
// (src/domain/password-hasher.ts with the WASM module imported as the Worker imports it).
import argon2Wasm from '@phi-ag/argon2/argon2.wasm';
import { argon2Hashers } from '../src/domain/password-hasher';

const hasher = argon2Hashers(new WebAssembly.Instance(argon2Wasm, {}))('owasp');
const PASSWORD = 'correct horse battery staple';
let stored: string | undefined;

export default {
  /** /hash?n=N or /verify?n=N does that many; /noop only the round trip. */
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('n') ?? '1');
    stored ??= await hasher.hash(PASSWORD);
    if (url.pathname === '/hash') for (let i = 0; i < n; i++) await hasher.hash(PASSWORD);
    if (url.pathname === '/verify') for (let i = 0; i < n; i++) if (!(await hasher.verify(stored, PASSWORD)).ok) return new Response('mismatch', { status: 500 });
    return new Response('ok');
  },
};
