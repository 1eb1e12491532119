/**
 * The platform of browsers (and workers), registered when this module loads (browser.ts imports
 * it first): CoAP over WebSockets only
 * (`coap+ws`, `coaps+ws`, RFC 8323 §4), the connection driver of the C core in WebAssembly
 * under the browser's WebSocket (./transport/ws-browser.ts). Browsers cannot send UDP nor open
 * TCP connections: the other schemes fail with CoapSchemeError saying so. Host names go to
 * the WebSocket as they are (the browser resolves them); TLS (`coaps+ws`, `wss:`) is the
 * browser's, with its certificate checks.
 *
 * Like ./transports.ts for Node, the one module of this entry point that names transports.
 *
 * @internal
 */
import { loadWasmBackend, wasmRaw } from './backend/wasm';
import type { BackendKind, DriverFactory, DriverOptions } from './driver/driver';
import { invalidArgValue } from './errors';
import { setPlatform, type Platform } from './platform';
import { defaultBackend } from './state';
import { StreamEndpoint, streamConfig } from './transport/stream-endpoint';
import { jsStreamCore } from './transport/stream-js';
import { wasmStreamFeed } from './transport/stream-wasm';
import { endpointConfig } from './transport/udp-records';
import { wsBrowserSocketHost } from './transport/ws-browser';

const WS_ONLY = 'use coap+ws:// or coaps+ws:// (a server listening on a WebSocket, or a proxy to the device)';

const REASONS: Record<string, string> = {
  coap: `browsers cannot send UDP: ${WS_ONLY}`,
  coaps: `browsers cannot send UDP (nor DTLS): ${WS_ONLY}`,
  'coap+tcp': `browsers cannot open TCP connections: ${WS_ONLY}`,
  'coaps+tcp': `browsers cannot open TCP connections: ${WS_ONLY}`,
};

function checkBackend(backend: unknown): void {
  if (backend !== undefined && backend !== 'wasm') throw invalidArgValue('backend', "'wasm' (the browser bundle has no native addon)", backend);
}

/** The one wasm backend of the page (the codec's), its raw exports for the stream feed. */
function raw(): NonNullable<ReturnType<typeof wasmRaw>> {
  const r = wasmRaw(defaultBackend()) ?? wasmRaw(loadWasmBackend());
  if (r === undefined) throw new Error('turbocoap: WebAssembly module unavailable');
  return r;
}

let wsCore: ReturnType<typeof jsStreamCore> | undefined;

/** CoAP over WebSockets: connections run by the WASM core, sockets the browser's. */
const ws: DriverFactory = (_family, backend, options, listener, role) => {
  checkBackend(backend);
  wsCore ??= jsStreamCore(wasmStreamFeed(raw()), wsBrowserSocketHost);
  return new StreamEndpoint(wsCore, 'ws', options, listener, role);
};

/** Errno names of the statuses ws-browser.ts reports (Linux numbering). */
const ERRNO: Readonly<Record<string, number>> = { ECONNREFUSED: 111, ECONNRESET: 104 };

export const browserPlatform: Platform = {
  driverFactory: (scheme) => (scheme === 'coap+ws' || scheme === 'coaps+ws' ? ws : undefined),
  schemeReason: (scheme) => REASONS[scheme] ?? `no transport for ${scheme}:// in browsers: ${WS_ONLY}`,
  checkEndpointOptions(_scheme: string, backend: BackendKind | undefined, options: DriverOptions, role: 'server' | 'client'): void {
    checkBackend(backend);
    endpointConfig(options, role);
    streamConfig('ws', options, role);
  },
  lookup: (host) => Promise.resolve({ address: host, family: 0 }),
  clientTransfers(kind: BackendKind) {
    checkBackend(kind);
    return loadWasmBackend();
  },
  errno: ERRNO,
  networkInterfaces: () => ({}),
  checkClientSecurity(o) {
    for (const k of ['psk', 'ca', 'cert', 'key'] as const) {
      if (o[k] !== undefined) throw invalidArgValue(k, "undefined in browsers (coaps+ws is the browser's TLS, with its own certificate checks)", o[k]);
    }
    if (o.rejectUnauthorized === false) throw invalidArgValue('rejectUnauthorized', 'true or undefined in browsers (the browser checks certificates)', false);
  },
};

setPlatform(browserPlatform);
