/**
 * The transports by URI scheme: the one module above ts/transport/ that names them. The
 * server, the client and everything else above the drivers are written against
 * ts/driver/driver.ts; they get a driver from here. Today: `coap` (CoAP over UDP).
 *
 * @internal
 */
import type { BackendKind, DriverFactory, EndpointOptions } from './driver/driver';
import { Endpoint } from './transport/endpoint';
import { endpointConfig } from './transport/udp-records';
import { checkBackendKind } from './transport/udp-select';

/** CoAP over UDP (RFC 7252): the datagram endpoint run by the C core. */
const udp: DriverFactory = (family, backend, options, listener, role) => new Endpoint(family, backend, options, listener, role);

const BY_SCHEME: ReadonlyMap<string, DriverFactory> = new Map([['coap', udp]]);

/** The driver factory for a URI scheme, or undefined when no transport for it is built in. */
export function driverFactory(scheme: string): DriverFactory | undefined {
  return BY_SCHEME.get(scheme);
}

/**
 * Checks a backend and endpoint options the way the scheme's driver will when it opens (the
 * same checker, run early: at createServer / new Agent instead of listen / the first request).
 * Throws TypeError / RangeError with a Node-style `code`.
 */
export function checkEndpointOptions(scheme: string, backend: BackendKind | undefined, options: EndpointOptions, role: 'server' | 'client'): void {
  if (scheme !== 'coap') return;
  checkBackendKind(backend);
  endpointConfig(options, role);
}
