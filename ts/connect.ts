/**
 * `connect(uri, { handler })`: a connection (RFC 8323: CoAP over TCP, TLS or WebSockets) from
 * the client side whose peer may send requests down it, served by `handler`.
 */
import type { BackendKind, ConnectionOptions, EndpointOptions } from './driver/driver';
import type { CoapConnection } from './connection';
import { CoapSchemeError, invalidArgType } from './errors';
import type { ClientSecurityOptions } from './security';
import { CoapServer, type RequestHandler, type ServerOptions, type ServerRouter } from './server';
import { parseUri } from './uri';

/** Options of {@link connect}: the security of secured schemes, the handler, messaging knobs. */
export interface ConnectOptions extends ClientSecurityOptions, EndpointOptions, ConnectionOptions {
  /**
   * Serves the requests the peer sends down the connection: a function or a Router (as for
   * `createServer`). Without it they are answered 4.04.
   */
  readonly handler?: RequestHandler | ServerRouter;
  /** Driver: `'native'` (addon) or `'wasm'`; default as for the codec. */
  readonly backend?: BackendKind;
  /** Errors of the handler (see `ServerOptions.onError`). */
  readonly onError?: ServerOptions['onError'];
}

const NOT_FOUND: RequestHandler = () => ({ code: '4.04' });

/**
 * Opens a connection to `uri` (`coap+tcp://`, `coaps+tcp://`, `coap+ws://`, `coaps+ws://`;
 * its path is ignored) and resolves once both sides exchanged their CSM. The connection keeps
 * the process alive until it is closed.
 *
 * ```ts
 * const conn = await connect('coap+tcp://127.0.0.1:5683', { handler: () => ({ code: '2.05', payload: 'me' }) });
 * const res = await conn.request('/hello');
 * await conn.close();
 * ```
 * @throws (rejects) CoapConnectionError (`ECONNREFUSED`, `HANDSHAKE`, `VERIFY`, `PSK`, ...),
 *   CoapSchemeError for a scheme without connections, CoapUriError for a bad URI.
 */
export async function connect(uri: string | URL, options: ConnectOptions = {}): Promise<CoapConnection> {
  if (options === null || typeof options !== 'object') throw invalidArgType('connect: options', 'an object', options);
  const u = parseUri(typeof uri === 'string' ? uri : uri instanceof URL ? uri.href : (uri as string));
  if (u.transport === 'udp' || u.transport === 'dtls') throw new CoapSchemeError(u.scheme);
  const { handler, psk, ca, cert, key, rejectUnauthorized, ...serverOptions } = options;
  const h = handler ?? NOT_FOUND;
  if (typeof h !== 'function' && (h === null || typeof h !== 'object')) throw invalidArgType('connect: handler', 'a function or a Router', h);
  const server = new CoapServer(h, serverOptions);
  return server._connect(u, { psk, ca, cert, key, rejectUnauthorized });
}
