/**
 * The transports by URI scheme: the one module above ts/transport/ that names them. The
 * server, the client and everything else above the drivers are written against
 * ts/driver/driver.ts; they get a driver from here: `coap` (CoAP over UDP), `coaps` (over DTLS, native only), `coap+tcp` and
 * `coaps+tcp` (RFC 8323 over TCP and TLS), `coap+ws` and `coaps+ws` (over WebSockets).
 *
 * @internal
 */
import type { BackendKind, DriverFactory, DriverOptions } from './driver/driver';
import { dtlsDriverFactory } from './transport/dtls';
import { Endpoint } from './transport/endpoint';
import type { StreamFraming } from './transport/stream-core';
import { StreamEndpoint, streamConfig } from './transport/stream-endpoint';
import { streamFactory } from './transport/stream-select';
import { endpointConfig } from './transport/udp-records';
import { checkBackendKind } from './transport/udp-select';

/** CoAP over UDP (RFC 7252): the datagram endpoint run by the C core. */
const udp: DriverFactory = (family, backend, options, listener, role) => new Endpoint(family, backend, options, listener, role);

/** CoAP over a reliable transport (RFC 8323): connections run by the C core's stream driver. */
function stream(framing: StreamFraming): DriverFactory {
  return (_family, backend, options, listener, role) => new StreamEndpoint(streamFactory(framing, backend).create, framing, options, listener, role);
}

const BY_SCHEME: ReadonlyMap<string, DriverFactory> = new Map([
  ['coap', udp],
  ['coaps', dtlsDriverFactory()],
  ['coap+tcp', stream('tcp')],
  ['coaps+tcp', stream('tcp')],
  ['coap+ws', stream('ws')],
  ['coaps+ws', stream('ws')],
]);

/** The driver factory for a URI scheme, or undefined when no transport for it is built in. */
export function driverFactory(scheme: string): DriverFactory | undefined {
  return BY_SCHEME.get(scheme);
}

/**
 * Checks a backend and endpoint options the way the scheme's driver will when it opens (the
 * same checker, run early: at createServer / new Agent instead of listen / the first request).
 * Throws TypeError / RangeError with a Node-style `code`.
 */
export function checkEndpointOptions(_scheme: string, backend: BackendKind | undefined, options: DriverOptions, role: 'server' | 'client'): void {
  checkBackendKind(backend);
  endpointConfig(options, role);
  streamConfig('tcp', options, role); // connection options (RFC 8323), ignored by UDP and DTLS
}
