/**
 * The transports by URI scheme: the one module above ts/transport/ that names them. The
 * server, the client and everything else above the drivers are written against
 * ts/driver/driver.ts; they get a driver from here. Today: `coap` (CoAP over UDP).
 *
 * @internal
 */
import type { DriverFactory } from './driver/driver';
import { Endpoint } from './transport/endpoint';

/** CoAP over UDP (RFC 7252): the datagram endpoint run by the C core. */
const udp: DriverFactory = (family, backend, options, listener, role) => new Endpoint(family, backend, options, listener, role);

const BY_SCHEME: ReadonlyMap<string, DriverFactory> = new Map([['coap', udp]]);

/** The driver factory for a URI scheme, or undefined when no transport for it is built in. */
export function driverFactory(scheme: string): DriverFactory | undefined {
  return BY_SCHEME.get(scheme);
}
