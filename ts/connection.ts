/**
 * One connection of a reliable transport (RFC 8323: CoAP over TCP, TLS or WebSockets) as the
 * application sees it: both ends may send requests down it. A server gets one per accepted
 * connection (`server.on('connection', (conn) => …)`); `connect(uri, { handler })` makes one
 * from the client side.
 */
import { EventEmitter } from 'node:events';
import { Agent, AgentSocket, connectionRoute, type RequestOptions, type Route } from './client';
import type { ConnectingDriver, ConnectionClose, RemoteInfo } from './driver/driver';
import { CoapConnectionError, invalidArgType } from './errors';
import type { IncomingResponse } from './incoming';
import { observe, type Observation, type ObserveOptions } from './observe';

/** The reliable transports. */
export type ConnectionTransport = 'tcp' | 'tls' | 'ws' | 'wss';

const SCHEMES: Record<ConnectionTransport, string> = { tcp: 'coap+tcp', tls: 'coaps+tcp', ws: 'coap+ws', wss: 'coaps+ws' };

/** A request down a connection: its path (with an optional `?query`) and the request's options. */
export interface ConnectionRequestInit extends Omit<RequestOptions, 'agent' | 'psk' | 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  /** Path and query, e.g. `'/whoami'` or `'/sensors?unit=C'` (default `'/'`). */
  readonly path?: string;
}

/** Routes every request of an agent down one connection. */
class ConnectionAgent extends Agent {
  constructor(private readonly conn: CoapConnection) {
    super();
  }
  override _route(url: string | URL, _signal: AbortSignal | undefined, reject: (e: unknown) => void, go: (route: Route) => void): void {
    const c = this.conn;
    if (c.closed) {
      reject(c._closeError ?? new CoapConnectionError('CLOSED', 'CLOSED: the connection is closed'));
      return;
    }
    if (c.released) {
      reject(new CoapConnectionError('RELEASED', 'RELEASED: the peer released the connection: no new requests down it'));
      return;
    }
    go(connectionRoute(c._sock, c._id, String(url), c._bert));
  }
  override async close(): Promise<void> {
    await this.conn.close();
  }
}

/**
 * A connection (RFC 8323). Events: `'close'` (with a {@link CoapConnectionError} when it ended
 * with an error: refused, aborted, TLS failure, dead peer; none when it closed normally),
 * `'release'` (the peer sent Release: no new requests down it; with its Hold-Off in seconds, or
 * undefined).
 */
export class CoapConnection extends EventEmitter {
  /** `'tcp'`, `'tls'`, `'ws'` or `'wss'`. */
  readonly transport: ConnectionTransport;
  /** The peer's address (for WebSockets: the socket's remote address). */
  readonly remote: RemoteInfo;
  /** The peer's identity when TLS authenticated it: its PSK identity or its certificate's subject CN. */
  readonly identity: string | undefined;
  /** Whether the connection has closed. */
  closed = false;
  /** Whether the peer released it (RFC 8323 §5.5: no new requests from us). */
  released = false;
  /** @internal */
  _closeError: CoapConnectionError | undefined;
  /** @internal whether the peer offered BERT */
  _bert = false;
  /** @internal the peer's Max-Message-Size (1152 until its CSM says otherwise) */
  _peerMaxMessageSize = 1152;
  private readonly agent: ConnectionAgent;
  private readonly base: string;
  private closing: Promise<void> | undefined;

  /** @internal made by servers and connect() */
  constructor(
    /** @internal */ readonly _driver: ConnectingDriver,
    /** @internal */ readonly _sock: AgentSocket,
    /** @internal */ readonly _id: number,
    transport: ConnectionTransport,
    remote: RemoteInfo,
    identity: string | undefined,
  ) {
    super();
    this.transport = transport;
    this.remote = remote;
    this.identity = identity;
    const host = remote.family === 'IPv6' ? `[${remote.address.replace(/%.*$/, '')}]` : remote.address;
    this.base = `${SCHEMES[transport]}://${host}:${remote.port}`;
    this.agent = new ConnectionAgent(this);
  }

  /**
   * Sends a request down this connection and resolves with the response (block-wise for large
   * bodies, as `request()`).
   * @param pathOrInit the path (`'/whoami'`, with an optional `?query`), or the request with its `path`.
   * @throws (rejects) CoapConnectionError when the connection closes first (or is closed or
   *   released already), and whatever `request()` rejects with.
   */
  request(pathOrInit: string | ConnectionRequestInit = '/', options: ConnectionRequestInit = {}): Promise<IncomingResponse> {
    const init = typeof pathOrInit === 'string' ? { ...options, path: pathOrInit } : pathOrInit;
    if (init === null || typeof init !== 'object') return Promise.reject(invalidArgType('request', 'a path or an object', pathOrInit));
    return this.agent.request(this.url(init.path), { ...init, agent: undefined });
  }

  /** Observes a resource of the peer down this connection (see `observe()`). */
  observe(path = '/', options: Omit<ObserveOptions, 'agent' | 'psk' | 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> = {}): Observation {
    return observe(this.url(path), { ...options, agent: this.agent });
  }

  private url(path: string | undefined): string {
    const p = path ?? '/';
    if (typeof p !== 'string') throw invalidArgType('path', 'a string', p);
    return this.base + (p.startsWith('/') ? p : `/${p}`);
  }

  /**
   * Closes the connection gracefully (what was written goes out first); resolves once closed.
   * Requests still outstanding on it fail with CoapConnectionError `'CLOSED'`.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = this.closed ? Promise.resolve() : new Promise<void>((resolve) => this.once('close', () => resolve()));
    if (!this.closed) this._driver.closeConn(this._id, false);
    return this.closing;
  }

  /** Aborts the connection (RFC 8323 §5.6) with a diagnostic; 'close' follows. */
  abort(diagnostic?: string): void {
    if (!this.closed) this._driver.closeConn(this._id, true, diagnostic);
  }

  /** @internal the peer's CSM */
  _ready(maxMessageSize: number, bert: boolean): void {
    this._peerMaxMessageSize = maxMessageSize;
    this._bert = bert;
  }

  /** @internal the peer sent Release */
  _release(holdOff: number | undefined): void {
    this.released = true;
    this.emit('release', holdOff);
  }

  /** @internal the connection closed: its outstanding requests fail */
  _closed(why: ConnectionClose, requests: readonly number[]): void {
    if (this.closed) return;
    this.closed = true;
    const err = new CoapConnectionError(why.code ?? 'CLOSED', why.message);
    this._closeError = err;
    this._sock.failIds(requests, () => err);
    if (why.code === undefined) this.emit('close');
    else this.emit('close', err);
  }
}
