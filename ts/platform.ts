/**
 * What the host platform (Node, browsers) gives the transport-neutral layers, registered by
 * the entry point as ts/state.ts does for the backend: index.ts registers Node's
 * (./platform-node.ts: every scheme, DNS, the addon), browser.ts the browser's
 * (./transports-browser.ts: coap+ws and coaps+ws over the WASM core). The client and server
 * code take transports, name resolution and the like from here, never from Node built-ins,
 * so that the browser bundle can carry them.
 *
 * @internal
 */
import type { ClientTransfers } from './backend/types';
import type { BackendKind, DriverFactory, DriverOptions } from './driver/driver';
import { CoapSchemeError } from './errors';

/** The interfaces of the host, as node:os networkInterfaces() lists them (IPv6 scope ids). */
export type InterfaceTable = Record<string, readonly { readonly family: string | number; readonly scopeid?: number }[] | undefined>;

export interface Platform {
  /** The driver factory for a URI scheme, or undefined when there is none here. */
  driverFactory(scheme: string): DriverFactory | undefined;
  /** Why a scheme has no driver here (for CoapSchemeError). */
  schemeReason(scheme: string): string;
  /**
   * Checks a backend and endpoint options the way the scheme's driver will when it opens.
   * Throws TypeError / RangeError with a Node-style `code`.
   */
  checkEndpointOptions(scheme: string, backend: BackendKind | undefined, options: DriverOptions, role: 'server' | 'client'): void;
  /** Resolves a host name (browsers: the name itself, the WebSocket resolves it). */
  lookup(host: string): Promise<{ address: string; family: number }>;
  /** The core's client-transfer functions (tc_bwc) of a backend kind loaded on its own. */
  clientTransfers(kind: BackendKind): ClientTransfers;
  /** errno names -> numbers as the hosts report them (CONN_EVF_SYSERR statuses). */
  readonly errno: Readonly<Record<string, number>>;
  networkInterfaces(): InterfaceTable;
  /** Random bytes where there is no global WebCrypto (Node 18 without --experimental-global-webcrypto). */
  randomFill?(b: Uint8Array): void;
  /** Throws for client security options the platform cannot honour (browsers: their TLS is their own). */
  checkClientSecurity?(o: { readonly psk?: unknown; readonly ca?: unknown; readonly cert?: unknown; readonly key?: unknown; readonly rejectUnauthorized?: unknown }): void;
}

let current: Platform | undefined;

/** Registers the platform (entry points only). */
export function setPlatform(p: Platform): void {
  current = p;
}

/** The registered platform. */
export function platform(): Platform {
  if (current === undefined) throw new Error('turbocoap: no platform registered (load turbocoap through its entry point)');
  return current;
}

export function driverFactory(scheme: string): DriverFactory | undefined {
  return platform().driverFactory(scheme);
}

export function checkEndpointOptions(scheme: string, backend: BackendKind | undefined, options: DriverOptions, role: 'server' | 'client'): void {
  platform().checkEndpointOptions(scheme, backend, options, role);
}

export function lookup(host: string): Promise<{ address: string; family: number }> {
  return platform().lookup(host);
}

export function clientTransfers(kind: BackendKind): ClientTransfers {
  return platform().clientTransfers(kind);
}

export function networkInterfaces(): InterfaceTable {
  return platform().networkInterfaces();
}

/** The CoapSchemeError for a scheme without a driver here, saying why. */
export function schemeError(scheme: string): CoapSchemeError {
  return new CoapSchemeError(scheme, current?.schemeReason(scheme));
}

let errnoNames: Map<number, string> | undefined;

/** The name of an errno value (positive, the host's numbering), or undefined. */
export function errnoName(n: number): string | undefined {
  errnoNames ??= new Map(Object.entries(platform().errno).map(([k, v]) => [v, k]));
  return errnoNames.get(n);
}

/** n cryptographically random bytes (WebCrypto: browsers and Node 19+; else the platform's). */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c !== undefined) c.getRandomValues(b);
  else (platform().randomFill as (b: Uint8Array) => void)(b);
  return b;
}
