/**
 * Picks the host of a stream driver: framing 'tcp' (TCP, TLS) on the native backend runs the
 * addon's libuv host; on WASM, the connection driver in WebAssembly under node:net / node:tls
 * sockets (./stream-js.ts over ./stream-node.ts); framing 'ws' runs JavaScript-owned
 * WebSockets on either backend.
 *
 * @internal
 */
import { loadWasmBackend, wasmRaw } from '../backend/wasm';
import type { BackendKind } from '../driver/driver';
import { defaultBackend } from '../state';
import type { StreamCoreFactory, StreamFraming } from './stream-core';
import type { StreamFeedFactory } from './stream-feed';
import { jsStreamCore } from './stream-js';
import { tcpSocketHost } from './stream-node';
import { wasmStreamFeed } from './stream-wasm';
import { wsNodeSocketHost } from './ws-node';
import { udpFactory } from './udp-select';

let wasmFeed: StreamFeedFactory | undefined;

function wasmFeedFactory(): StreamFeedFactory {
  if (wasmFeed !== undefined) return wasmFeed;
  let raw;
  try {
    const be = defaultBackend();
    if (be.kind === 'wasm') raw = wasmRaw(be);
  } catch {
    /* no provider */
  }
  raw ??= wasmRaw(loadWasmBackend());
  if (raw === undefined) throw new Error('turbocoap: WebAssembly module unavailable');
  return (wasmFeed = wasmStreamFeed(raw));
}

/** The stream host factory for a framing and backend (default: the process backend's kind). */
export function streamFactory(framing: StreamFraming, backend: BackendKind | undefined): { kind: BackendKind; create: StreamCoreFactory } {
  const kind = udpFactory(backend).kind;
  if (framing === 'ws') return { kind: 'wasm', create: jsStreamCore(wasmFeedFactory(), wsNodeSocketHost) };
  // TODO(S1 merge): native -> nativeStreamCore
  return { kind, create: jsStreamCore(wasmFeedFactory(), tcpSocketHost) };
}
