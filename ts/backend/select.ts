/**
 * Node backend selection: native if it loads, else WASM;
 * TURBOCOAP_BACKEND=native|wasm forces one (forcing native where it cannot
 * load is an error, never a silent fallback).
 *
 * @internal
 */
import { loadNativeBackend } from './native';
import type { Backend } from './types';
import { loadWasmBackend } from './wasm';

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
    return loadNativeBackend();
  } catch {
    return loadWasmBackend();
  }
}
