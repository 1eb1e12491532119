/**
 * Node backend selection: native if it loads, else WASM;
 * TURBOCOAP_BACKEND=native|wasm forces one (forcing native where it cannot
 * load is an error, never a silent fallback).
 *
 * The native addon is optional: the install builds it when it can and never
 * fails when it cannot. A missing or broken addon (not built, built for
 * another Node ABI, a truncated file, an addon ABI mismatch) is a fallback to
 * WASM, and {@link nativeFallbackReason} says why.
 *
 * @internal
 */
import { loadNativeBackend } from './native';
import type { Backend } from './types';
import { loadWasmBackend } from './wasm';

let fallbackReason: string | undefined;

/**
 * Why the default pick fell back to WASM (the first line of the native
 * loader's error), or undefined when it did not (native loaded, or a backend
 * was forced, or no pick happened yet).
 */
export function nativeFallbackReason(): string | undefined {
  return fallbackReason;
}

export function pickNodeBackend(): Backend {
  const forced = typeof process === 'object' && process.env ? process.env.TURBOCOAP_BACKEND : undefined;
  if (forced === 'wasm') return loadWasmBackend();
  if (forced === 'native') {
    try {
      return loadNativeBackend();
    } catch (e) {
      throw new Error(
        `turbocoap: TURBOCOAP_BACKEND=native but the native addon cannot be loaded: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }
  if (forced !== undefined && forced !== '') {
    throw new Error(`turbocoap: invalid TURBOCOAP_BACKEND=${JSON.stringify(forced)} (expected 'native' or 'wasm')`);
  }
  try {
    const b = loadNativeBackend();
    fallbackReason = undefined;
    return b;
  } catch (e) {
    fallbackReason = String((e as Error)?.message ?? e).split('\n')[0];
    return loadWasmBackend();
  }
}
