/**
 * Both backends, loaded explicitly: the native addon from
 * build/Release/turbocoap.node (never through the WASM fallback) and the WASM
 * module through its loader.
 *
 * The addon is optional outside CI: where it was not built (no compiler; the
 * global setup then printed why), {@link hasNative} is false, the native-backend
 * suites skip and the WASM ones run. With CI set a missing addon is an error.
 */
import { resolve } from 'node:path';
import type { Backend } from '../../ts/backend/types';
import { Codec } from '../../ts/codec';
import { loadNativeBackend } from '../../ts/backend/native';
import { loadWasmBackend } from '../../ts/backend/wasm';
import { inCI } from './ci';

export const root = resolve(__dirname, '..', '..');
export const nativePath = resolve(root, 'build', 'Release', 'turbocoap.node');

const loaded = ((): { backend: Backend } | { missing: string } => {
  try {
    return { backend: loadNativeBackend(nativePath) };
  } catch (e) {
    const why = `the native addon (build/Release/turbocoap.node) does not load: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
    if (inCI) throw new Error(`CI: ${why}`, { cause: e });
    return { missing: why };
  }
})();

/** Why the native backend is unavailable (outside CI only), or undefined when it loads. */
export const nativeMissing: string | undefined = 'missing' in loaded ? loaded.missing : undefined;
/** Whether the native addon loads: the native-backend suites run only then. */
export const hasNative = nativeMissing === undefined;

/** The native codec; where the addon does not load, every use throws saying why. */
export const native: Codec =
  'backend' in loaded
    ? new Codec(loaded.backend)
    : (new Proxy({} as Codec, {
        get() {
          throw new Error(`native codec used although ${nativeMissing} (guard the suite with hasNative)`);
        },
      }) as Codec);
export const wasm = new Codec(loadWasmBackend());
/** The backends that load here: both, or WASM alone where the addon was not built. */
export const codecs: ReadonlyArray<readonly [string, Codec]> = hasNative
  ? [
      ['native', native],
      ['wasm', wasm],
    ]
  : [['wasm', wasm]];
/** A codec for test plumbing (decoding what raw peers receive): native when it loads. */
export const anyCodec: Codec = hasNative ? native : wasm;

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
