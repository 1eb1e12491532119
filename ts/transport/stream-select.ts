/**
 * Picks the host of a stream driver: framing 'tcp' (TCP, TLS) on the native backend runs the
 * addon's libuv host (./stream-native.ts); on WASM, the connection driver in WebAssembly under
 * node:net / node:tls sockets (./stream-js.ts over ./stream-node.ts). Framing 'ws' runs
 * JavaScript-owned WebSockets (the `ws` package, ./ws-node.ts) over the backend's connection
 * driver: the addon's feed exports on native, the WASM module's on WASM.
 *
 * @internal
 */
import { loadNativeAddon } from '../backend/native';
import type { BackendKind } from '../driver/driver';
import type { StreamCoreFactory, StreamFraming } from './stream-core';
import type { StreamFeedFactory } from './stream-feed';
import { nativeStreamFeed, type StreamFeedAddon } from './stream-feed-native';
import { jsStreamCore } from './stream-js';
import { nativeStreamCore } from './stream-native';
import { tcpSocketHost } from './stream-node';
import { wasmStreamFeed } from './stream-wasm';
import { udpFactory, wasmModule } from './udp-select';
import { wsNodeSocketHost } from './ws-node';

const feeds: { native?: StreamFeedFactory; wasm?: StreamFeedFactory } = {};

function feedFactory(kind: BackendKind): StreamFeedFactory {
  const f = feeds[kind];
  if (f !== undefined) return f;
  if (kind === 'native') return (feeds.native = nativeStreamFeed(loadNativeAddon() as StreamFeedAddon));
  return (feeds.wasm = wasmStreamFeed(wasmModule()));
}

const cores = new Map<string, StreamCoreFactory>();

/** The stream host factory for a framing and backend (default: the process backend's kind). */
export function streamFactory(framing: StreamFraming, backend: BackendKind | undefined): { kind: BackendKind; create: StreamCoreFactory } {
  const kind = udpFactory(backend).kind;
  const key = `${framing}:${kind}`;
  let create = cores.get(key);
  if (create === undefined) {
    if (framing === 'tcp') create = kind === 'native' ? nativeStreamCore : jsStreamCore(feedFactory('wasm'), tcpSocketHost);
    else create = jsStreamCore(feedFactory(kind), wsNodeSocketHost);
    cores.set(key, create);
  }
  return { kind, create };
}
