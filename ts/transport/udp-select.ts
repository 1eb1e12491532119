/**
 * Picks the UDP driver as the codec backend is picked: native if the addon loads, else
 * WebAssembly; TURBOCOAP_BACKEND=native|wasm forces one, and so does an explicit
 * `backend` option. The native driver uses the addon module the codec uses (without
 * touching the codec's scratch area); the WASM driver shares the codec's module instance
 * when the codec runs on WASM, else it instantiates its own.
 *
 * @internal
 */
import { loadNativeAddon } from '../backend/native';
import { loadWasmBackend, wasmRaw, type WasmRaw } from '../backend/wasm';
import { defaultBackend } from '../state';
import { nativeUdpFactory, type UdpAddon } from './udp-native';
import type { UdpDriverFactory } from './udp-records';
import { wasmUdpFactory } from './udp-wasm';
import { invalidArgValue } from '../errors';

/** Which implementation runs a UDP endpoint. */
export type UdpBackendKind = 'native' | 'wasm';

let nativeFactory: UdpDriverFactory | undefined;
let wasmFactory: UdpDriverFactory | undefined;
let picked: UdpBackendKind | undefined;

/** The process backend's kind; without a registered provider, chosen as index.ts would. */
function defaultKind(): UdpBackendKind {
  try {
    return defaultBackend().kind;
  } catch {
    /* no entry point registered a provider (internal use) */
  }
  if (picked !== undefined) return picked;
  const forced = typeof process === 'object' ? process.env.TURBOCOAP_BACKEND : undefined;
  if (forced === 'native' || forced === 'wasm') return (picked = forced);
  try {
    loadNativeAddon();
    picked = 'native';
  } catch {
    picked = 'wasm';
  }
  return picked;
}

/** The WASM module instance the drivers run on: the codec's when the codec runs on WASM, else
 *  one of its own. */
export function wasmModule(): WasmRaw {
  let raw;
  try {
    const be = defaultBackend();
    if (be.kind === 'wasm') raw = wasmRaw(be);
  } catch {
    /* no provider */
  }
  raw ??= wasmRaw(loadWasmBackend());
  if (raw === undefined) throw new Error('turbocoap: WebAssembly module unavailable');
  return raw;
}

/** Throws TypeError ERR_INVALID_ARG_VALUE unless `kind` is undefined, `'native'` or `'wasm'`. */
export function checkBackendKind(kind: unknown): void {
  if (kind !== undefined && kind !== 'native' && kind !== 'wasm') {
    throw invalidArgValue('backend', "'native' or 'wasm'", kind);
  }
}

/** The driver factory for `kind` (default: the process backend's kind). */
export function udpFactory(kind?: UdpBackendKind): { kind: UdpBackendKind; create: UdpDriverFactory } {
  checkBackendKind(kind);
  const k = kind ?? defaultKind();
  if (k === 'native') {
    if (nativeFactory === undefined) {
      let addon: UdpAddon;
      try {
        addon = loadNativeAddon() as UdpAddon;
      } catch (e) {
        throw new Error(`turbocoap: the native UDP driver needs the native addon, which cannot be loaded: ${(e as Error).message}`, {
          cause: e,
        });
      }
      nativeFactory = nativeUdpFactory(addon);
    }
    return { kind: k, create: nativeFactory };
  }
  wasmFactory ??= wasmUdpFactory(wasmModule());
  return { kind: k, create: wasmFactory };
}
