/**
 * Both backends, loaded explicitly: the native addon from
 * build/Release/turbocoap.node (never through the WASM fallback) and the WASM
 * module through its loader.
 */
import { resolve } from 'node:path';
import { Codec } from '../../ts/codec';
import { loadNativeBackend } from '../../ts/backend/native';
import { loadWasmBackend } from '../../ts/backend/wasm';

export const root = resolve(__dirname, '..', '..');
export const nativePath = resolve(root, 'build', 'Release', 'turbocoap.node');

export const native = new Codec(loadNativeBackend(nativePath));
export const wasm = new Codec(loadWasmBackend());
export const codecs: ReadonlyArray<readonly [string, Codec]> = [
  ['native', native],
  ['wasm', wasm],
];

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

export function unhex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}
