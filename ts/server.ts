/**
 * The CoAP/UDP server: `createServer(handler | router, options)`.
 *
 * Requests arrive in batches from the endpoint's driver (native or WASM); each becomes an
 * {@link IncomingRequest} (lazy: nothing is decoded or built that the handler does not
 * read) and goes to the handler or the router. What the handler returns (or resolves to)
 * is written as a RESPOND record into the TX area; the records of a batch are flushed
 * together once per microtask, so synchronous handlers and promptly resolving ones share
 * one flush. Deduplication, piggybacked / separate responses, retransmission, and the
 * RFC's answers to bad input (RST, 4.02, 4.05, 5.03) are the C core's.
 */
import { EventEmitter } from 'node:events';
import { AgentSocket } from './client';
import { CoapConnection, type ConnectionTransport } from './connection';
import {
  Status,
  type BackendKind,
  type ConnectingDriver,
  type ConnectionClose,
  type Driver,
  type DriverListener,
  type ConnectionOptions,
  type EndpointOptions,
  type EndpointStats,
  type Received,
  type RemoteInfo,
  type SocketAddress,
} from './driver/driver';
import {
  CoapConnectionError,
  CoapNetworkError,
  CoapResponseError,
  CoapServerError,
  invalidArgType,
  invalidArgValue,
  notBoolean,
  outOfRange,
} from './errors';
import { CoapRequestError, IncomingRequest } from './incoming';
import { ipFamily } from './net/ip';
import { OptionNumber } from './options';
import { codeOf, formatOf, locationOptions, payloadOf, putOption, valueBound, type OptionInit, type PayloadInit, type ResponseInit } from './outgoing';
import { Router } from './router';
import { clientTls, serverTls, type ClientSecurityOptions, type ServerSecurityOptions } from './security';
import { checkEndpointOptions, driverFactory, lookup, schemeError } from './platform';
import { CoapUriError, type CoapUri } from './uri';

export type { ResponseInit };

/** A notification: a response, and whether it goes as a CON to every observer. */
export interface NotifyInit extends ResponseInit {
  /**
   * Send it confirmable to every observer (default false: NON, with a CON every
   * `observe.conEvery` notifications per observer and at least once a day to check liveness).
   */
  readonly confirmable?: boolean;
}

/**
 * A request handler: returns (or resolves to) the response. A thrown error is answered 5.00
 * (4.00 for CoapRequestError / CoapUriError: a payload that is not JSON or not UTF-8).
 */
export type RequestHandler = (req: IncomingRequest) => ResponseInit | Promise<ResponseInit>;

/** A router whose handlers serve {@link IncomingRequest}s: what `new Router()` makes. */
export type ServerRouter = Router<IncomingRequest, ResponseInit | Promise<ResponseInit>>;

/** Server options: the messaging layer's knobs ({@link EndpointOptions}) and these. */
export interface ServerOptions extends EndpointOptions, ConnectionOptions {
  /** Driver: `'native'` (addon) or `'wasm'`; default as for the codec (native if it loads). */
  readonly backend?: BackendKind;
  /** With host `'::'`: accept IPv6 only (default false: dual-stack). */
  readonly ipv6Only?: boolean;
  /** SO_REUSEADDR (default false). */
  readonly reuseAddr?: boolean;
  /**
   * Serve `GET /.well-known/core` from the router's link-format when no route claims it
   * (default true; only with a Router).
   */
  readonly wellKnownCore?: boolean;
  /** How long close() waits for handlers in flight, in ms (default 1000); then their exchanges are dropped. */
  readonly closeTimeout?: number;
  /**
   * Send the message of a handler's error to the client as the 5.00's diagnostic payload
   * (default false: the 5.00 carries no payload, so no secret in an error message leaks).
   * Also the message of a {@link CoapResponseError}.
   */
  readonly exposeErrors?: boolean;
  /**
   * Called with what goes wrong while serving (the client is answered either way):
   *  - errors thrown (or rejected) by handlers: the client got 5.00, or 4.00 for a
   *    CoapRequestError / CoapUriError (`req.json()` on a payload that is not JSON...);
   *  - {@link CoapResponseError}: a handler's response could not be sent (no response, a
   *    code such as 404, a bad payload or option, too large): the client got 5.00;
   *  - errors of notifications ({@link ObservableResource.notify}; `req` is then the
   *    synthetic GET that re-ran the handler, or undefined).
   * Without `onError`, every such error except the 4.00 ones is written with console.error
   * (once per failure), so a mistake never goes unseen.
   */
  readonly onError?: (err: unknown, req: IncomingRequest | undefined) => void;
}

/** Server counters: the endpoint's ({@link EndpointStats}) and the server's own. */
export interface ServerStats extends EndpointStats {
  /**
   * Observable paths the server keeps an entry for (path -> the core's resource id). Bounded:
   * entries whose observers have all gone are reclaimed once there are more than
   * `observe.maxResources` plus a quarter of it (at least 16); at most that many plus one.
   */
  readonly observableResources: number;
}

/**
 * Where and how to listen: the transport, the address, and for `'tls'`, `'wss'` and `'dtls'`
 * the security in Node's TLS vocabulary ({@link ServerSecurityOptions}: `cert`, `key`, `ca`,
 * `requestCert`, `rejectUnauthorized`, `psk`).
 */
/**
 * Options of one listener. For `'tcp'`, `'tls'`, `'ws'` and `'wss'` the connection bounds and
 * timers ({@link ConnectionOptions}) given here override the server's for this listener.
 */
export interface ListenOptions extends ServerSecurityOptions, ConnectionOptions {
  /** `'udp'` (default), `'tcp'`, `'tls'`, `'ws'`, `'wss'` or `'dtls'`: at most one listener each. */
  readonly transport?: ListenTransport;
  /** Port (default: the scheme's: 5683 udp/tcp, 5684 tls/dtls, 80 ws, 443 wss; 0 picks a free one). */
  readonly port?: number;
  /** Local address or host name (default `'::'`, dual-stack). */
  readonly host?: string;
  /** `'ws'` / `'wss'`: serve on this existing node:http / node:https server instead of opening a port. */
  readonly httpServer?: unknown;
}

/** Sums the counters of several listeners. */
function sumStats(all: EndpointStats[]): EndpointStats {
  if (all.length === 1) return all[0] as EndpointStats;
  const out: Record<string, number> = {};
  for (const st of all) for (const [k, v] of Object.entries(st)) if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
  return out as unknown as EndpointStats;
}

/** The {@link ConnectionOptions} a listen() may set for its listener. */
const CONNECTION_OPTIONS = ['maxConnections', 'maxConnectionsPerHost', 'csmTimeout', 'idleTimeout', 'pingTimeout', 'maxRequestsPerConnection'] as const satisfies readonly (keyof ConnectionOptions)[];

const CODE_INTERNAL = 0xa0; // 5.00
const CODE_BAD_REQUEST = 0x80; // 4.00
const CODE_UNAVAILABLE = 0xa3; // 5.03
const CODE_INCOMPLETE = 0x88; // 4.08
const NOT_FOUND: ResponseInit = Object.freeze({ code: '4.04' });
const NOT_ALLOWED: ResponseInit = Object.freeze({ code: '4.05' });
const CT_LINK_FORMAT = 40;

function isThenable(v: unknown): v is PromiseLike<ResponseInit> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

function message(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > 512 ? m.slice(0, 512) : m;
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const NO_REMOTE: RemoteInfo = Object.freeze({ address: '::', port: 0, family: 'IPv6' });

/**
 * A synthetic GET for a path (to re-run the handler for a notification): its Uri-Path options
 * and nothing else, read through the same {@link Received} interface as a received request.
 */
class SyntheticGet implements Received {
  readonly bytes: Uint8Array;
  private readonly offs: number[] = [];
  private readonly lens: number[] = [];

  constructor(path: string) {
    const segs = path === '/' || path === '' ? [] : path.slice(1).split('/').map((x) => utf8.encode(decodeSegment(x)));
    let n = 0;
    for (const g of segs) n += g.length;
    this.bytes = new Uint8Array(n);
    let off = 0;
    for (const g of segs) {
      this.bytes.set(g, off);
      this.offs.push(off);
      this.lens.push(g.length);
      off += g.length;
    }
  }

  id(): number {
    return 0;
  }
  code(): number {
    return 1; // GET
  }
  type(): number {
    return 0;
  }
  messageId(): number {
    return 0;
  }
  confirmable(): boolean {
    return false;
  }
  last(): boolean {
    return true;
  }
  tokenOffset(): number {
    return 0;
  }
  tokenLength(): number {
    return 0;
  }
  optionCount(): number {
    return this.offs.length;
  }
  optionNumber(): number {
    return OptionNumber.UriPath;
  }
  optionOffset(_r: number, k: number): number {
    return this.offs[k] as number;
  }
  optionLength(_r: number, k: number): number {
    return this.lens[k] as number;
  }
  payloadOffset(): number {
    return 0;
  }
  payloadLength(): number {
    return 0;
  }
  remote(): RemoteInfo {
    return NO_REMOTE;
  }
  observeAsked(): boolean {
    return false;
  }
  hasBody(): boolean {
    return false;
  }
  bodyId(): number {
    return 0;
  }
  bodyLength(): number {
    return 0;
  }
  message(): Uint8Array {
    return EMPTY;
  }
}

function syntheticGet(path: string): IncomingRequest {
  return new IncomingRequest(new SyntheticGet(path), 0);
}

/** Undoes the `%25` / `%2F` escaping of a request path segment. */
function decodeSegment(s: string): string {
  return s.indexOf('%') < 0 ? s : s.replace(/%2F/gi, '/').replace(/%25/g, '%');
}

/** Why a response code is refused, or undefined. */
function codeProblem(code: unknown): string {
  if (typeof code === 'number') {
    return code >= 100 && code <= 599
      ? `code ${code} looks like an HTTP status: CoAP codes are written '${Math.floor(code / 100)}.${String(code % 100).padStart(2, '0')}' (a raw code byte: codeToString(byte))`
      : `code ${code}: response codes are strings such as '2.05' (a raw code byte: codeToString(byte))`;
  }
  return `invalid response code ${JSON.stringify(code)} (expected '2.xx', '4.xx' or '5.xx')`;
}

/**
 * An observable resource of a {@link CoapServer} (RFC 7641): clients register with a GET
 * carrying Observe 0 on a route that allows it; {@link ObservableResource.notify} sends the
 * new state to all of them in one call (the fan-out runs in C).
 */
export class ObservableResource {
  /** @internal a response registered an observer of this path with `observe: true` */
  _registered = false;

  /** @internal */
  constructor(
    private readonly server: CoapServer,
    /** The request path observers registered for (e.g. `'/time'`). */
    readonly path: string,
    /**
     * @internal the core's resource id while this object is the path's entry (a path whose
     * observers have all gone may get a new entry and id later: notify() uses the path's)
     */
    readonly _id: number,
  ) {}

  /**
   * Notifies every observer. With `init`, that response is sent (a string or bytes is a
   * 2.05 payload); without, the GET handler of the path runs again (with a synthetic request)
   * and its response is sent. A 2.xx notification carries a fresh Observe sequence number;
   * any other code ends every registration of the resource (RFC 7641 §3.2). Payloads larger
   * than a block go block-wise (the notification carries the first block, RFC 7959 §2.6).
   * Errors (handler failures, a response that cannot be sent) go to the server's `onError`.
   * @throws CoapServerError `NOT_LISTENING` before `listen()` or after `close()`, and
   *   `NOT_OBSERVABLE` when the server has a Router and no GET route with the `obs` attribute
   *   serves the path (nor did a response register an observer for it with `observe: true`:
   *   remembered by this object, and by the path while it has observers). A server with a
   *   handler function cannot tell: any path is accepted.
   */
  notify(init?: NotifyInit | PayloadInit): void {
    this.server._notify(this, init);
  }
}

/** A transport a server listens on. */
export type ListenTransport = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss' | 'dtls';

const SCHEME_OF: Record<ListenTransport, string> = { udp: 'coap', tcp: 'coap+tcp', tls: 'coaps+tcp', ws: 'coap+ws', wss: 'coaps+ws', dtls: 'coaps' };
const DEFAULT_PORT: Record<ListenTransport, number> = { udp: 5683, tcp: 5683, tls: 5684, ws: 80, wss: 443, dtls: 5684 };
const TRANSPORT_OF: Record<string, ListenTransport> = { coap: 'udp', 'coap+tcp': 'tcp', 'coaps+tcp': 'tls', 'coap+ws': 'ws', 'coaps+ws': 'wss', coaps: 'dtls' };

/** One listener (or the client side of connect()): its driver and its connections. */
interface Listener {
  readonly transport: ListenTransport;
  driver: Driver | undefined;
  /** Requests the server sends down connections (their responses and failures). */
  readonly sock: AgentSocket;
  readonly conns: Map<number, CoapConnection>;
  /** connect(): the connection being made. */
  connecting?: { id: number; resolve: (c: CoapConnection) => void; reject: (e: unknown) => void };
}

/**
 * A CoAP server. Create it with {@link createServer}, start it with {@link CoapServer.listen}
 * (once per transport: one server, one router, several listeners); it can listen again after
 * {@link CoapServer.close}. Event `'connection'` ({@link CoapConnection}): a client connected
 * over TCP, TLS or WebSockets; the server may send requests down it.
 */
export class CoapServer extends EventEmitter {
  private readonly handler: RequestHandler | undefined;
  private readonly router: ServerRouter | undefined;
  private readonly options: ServerOptions;
  /** Listeners by transport, in the order they were asked for. */
  private readonly openListeners = new Map<ListenTransport, Listener>();
  private state: 'idle' | 'listening' | 'closing' | 'closed' = 'idle';
  private inflight = 0;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  /**
   * Observable paths -> their entry (the core's resource id). Bounded: once it holds more
   * than {@link CoapServer.resourceLimit} entries, those whose resource has no observer left
   * in the core are forgotten (sweep).
   */
  private readonly resources = new Map<string, ObservableResource>();
  /** The ids of the entries in `resources` (an id is not handed out again while in use). */
  private readonly resourceIds = new Set<number>();
  private nextResource = 1;
  private sweeping = false;
  /** The counters when the endpoint closed (stats() keeps them after close()). */
  private lastStats: EndpointStats | undefined;

  /** @internal use {@link createServer} */
  constructor(handler: RequestHandler | ServerRouter, options: ServerOptions = {}) {
    super();
    if (handler instanceof Router) this.router = handler as ServerRouter;
    else if (typeof handler === 'function') this.handler = handler;
    else throw invalidArgType('createServer: handler', 'a function or a Router', handler);
    if (options === null || typeof options !== 'object') throw invalidArgType('createServer: options', 'an object', options);
    for (const k of ['ipv6Only', 'reuseAddr', 'wellKnownCore', 'exposeErrors'] as const) {
      const e = notBoolean(k, options[k]);
      if (e !== undefined) throw e;
    }
    const ct = options.closeTimeout;
    if (ct !== undefined && !(typeof ct === 'number' && ct >= 0 && ct <= 2147483647)) throw outOfRange('closeTimeout', '0..2147483647 ms', ct);
    checkEndpointOptions('coap', options.backend, options, 'server');
    this.options = { ...options };
  }

  /** The open drivers. */
  private drivers(): Driver[] {
    const out: Driver[] = [];
    for (const l of this.openListeners.values()) if (l.driver !== undefined && !l.driver.closed) out.push(l.driver);
    return out;
  }

  /** The driver in use (`'native'` or `'wasm'`), once listening. */
  get backend(): BackendKind | undefined {
    for (const l of this.openListeners.values()) if (l.driver !== undefined) return l.driver.backend;
    return undefined;
  }

  /** Whether the server is listening. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  /**
   * Opens a listener and starts serving on it: `transport` `'udp'` (default), `'tcp'`,
   * `'tls'`, `'ws'`, `'wss'` or `'dtls'`, each at most once. A listening server keeps the
   * process alive until {@link CoapServer.close}; a closed server may listen again (a close
   * under way is awaited first).
   * @throws CoapNetworkError (e.g. `EADDRINUSE`, `ENOTFOUND`) when it cannot listen,
   *   CoapServerError `ALREADY_LISTENING` when it listens on that transport already,
   *   `UNSUPPORTED_TRANSPORT` for a transport not built in here.
   */
  async listen(opts: ListenOptions | number = {}): Promise<this> {
    if (this.state === 'closing') await this.closing;
    const o: ListenOptions = typeof opts === 'number' ? { port: opts } : opts;
    if (o === null || typeof o !== 'object') throw invalidArgType('listen: options', 'an object or a port number', opts);
    const transport = o.transport ?? 'udp';
    if (!Object.prototype.hasOwnProperty.call(SCHEME_OF, transport)) throw invalidArgValue('listen: transport', "'udp', 'tcp', 'tls', 'ws', 'wss' or 'dtls'", transport);
    if (this.openListeners.has(transport)) throw new CoapServerError('ALREADY_LISTENING', `listen: the server is listening on ${transport} already`);
    const port = o.port ?? DEFAULT_PORT[transport];
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw outOfRange('listen: port', 'an integer in 0..65535', port);
    const scheme = SCHEME_OF[transport];
    const open = driverFactory(scheme);
    if (open === undefined) throw new CoapServerError('UNSUPPORTED_TRANSPORT', `listen: no ${transport} transport (${scheme}://) here${transport === 'dtls' ? ': DTLS needs the native addon' : ''}`);
    const secured = transport === 'tls' || transport === 'wss' || transport === 'dtls';
    const security = secured ? serverTls(o) : undefined;
    let options = this.options;
    if (CONNECTION_OPTIONS.some((k) => o[k] !== undefined)) {
      const mine: Record<string, unknown> = { ...options };
      for (const k of CONNECTION_OPTIONS) if (o[k] !== undefined) mine[k] = o[k];
      options = mine as ServerOptions;
      checkEndpointOptions(scheme, options.backend, options, 'server');
    }
    let host = o.host ?? '::';
    let family: number = ipFamily(host);
    const l = this.newListener(transport);
    this.openListeners.set(transport, l);
    this.state = 'listening';
    this.closing = undefined;
    try {
      if (family === 0) {
        try {
          const a = await lookup(host);
          host = a.address;
          family = a.family;
        } catch (e) {
          throw new CoapNetworkError((e as NodeJS.ErrnoException).code ?? 'ENOTFOUND', `listen: cannot resolve ${host}`, { cause: e });
        }
      }
      const ep = open(family === 6 ? 6 : 4, options.backend, { ...options, security, httpServer: o.httpServer }, this.adapter(l), 'server');
      l.driver = ep;
      l.sock.ep = ep;
      try {
        await ep.bind(host, port, { ipv6Only: this.options.ipv6Only, reuseAddr: this.options.reuseAddr });
      } catch (e) {
        await ep.close();
        throw e;
      }
      if (this.state !== 'listening' || this.openListeners.get(transport) !== l) {
        await ep.close(); // closed while binding
        return this;
      }
      ep.setRef(true);
    } catch (e) {
      if (this.openListeners.get(transport) === l) this.openListeners.delete(transport);
      if (this.state === 'listening' && this.openListeners.size === 0) this.state = 'idle';
      throw e;
    }
    return this;
  }

  private newListener(transport: ListenTransport): Listener {
    const sock = new AgentSocket();
    sock.refs = false; // the listener keeps the process alive, not its requests
    return { transport, driver: undefined, sock, conns: new Map() };
  }

  /** What a listener's driver delivers, and to whom. */
  private adapter(l: Listener): DriverListener {
    return {
      onRequest: (b, r) => this.serve(l.driver as Driver, b, r),
      onResponse: (b, r) => l.sock.onResponse(b, r),
      onFailed: (id, st) => l.sock.onFailed(id, st),
      onRespondFailed: (id, st) => this.respondFailed(l.driver as Driver, id, st),
      onConnOpen: (c) => {
        const conn = new CoapConnection(l.driver as ConnectingDriver, l.sock, c.id, l.transport as ConnectionTransport, c.remote, c.identity);
        l.conns.set(c.id, conn);
        const want = l.connecting;
        if (want !== undefined && want.id === c.id) return; // connect(): resolved once ready
        this.emit('connection', conn);
      },
      onConnReady: (id, mms, bert) => {
        const conn = l.conns.get(id);
        if (conn === undefined) return;
        conn._ready(mms, bert);
        const want = l.connecting;
        if (want !== undefined && want.id === id) {
          l.connecting = undefined;
          want.resolve(conn);
        }
      },
      onConnRelease: (id, holdOff) => l.conns.get(id)?._release(holdOff),
      onConnClosed: (id, why, requests) => {
        const conn = l.conns.get(id);
        l.conns.delete(id);
        const want = l.connecting;
        if (want !== undefined && want.id === id) {
          l.connecting = undefined;
          want.reject(new CoapConnectionError(why.code ?? 'CLOSED', why.message));
        }
        if (conn !== undefined) conn._closed(why, requests);
        else l.sock.failIds(requests, () => new CoapConnectionError(why.code ?? 'CLOSED', why.message));
      },
    };
  }

  /**
   * @internal connect(): opens a connection to `uri` (a stream scheme) whose peer's requests
   * this server serves; resolves once both CSMs were exchanged.
   */
  async _connect(uri: CoapUri, sec: ClientSecurityOptions): Promise<CoapConnection> {
    const transport = TRANSPORT_OF[uri.scheme];
    const open = driverFactory(uri.scheme);
    if (transport === undefined || transport === 'udp' || transport === 'dtls' || open === undefined) throw schemeError(uri.scheme);
    const isName = uri.hostType === 'name';
    const tls = uri.secure ? clientTls(sec, isName ? uri.host : undefined) : undefined;
    let host = uri.host;
    if (isName) {
      try {
        host = (await lookup(host)).address;
      } catch (e) {
        throw new CoapNetworkError((e as NodeJS.ErrnoException).code ?? 'ENOTFOUND', `connect: cannot resolve ${host}`, { cause: e });
      }
    }
    const l = this.newListener(transport);
    this.openListeners.set(transport, l);
    this.state = 'listening';
    const ep = open(4, this.options.backend, this.options, this.adapter(l), 'client') as ConnectingDriver;
    l.driver = ep;
    l.sock.ep = ep;
    ep.setRef(true);
    let conn: CoapConnection;
    try {
      conn = await new Promise<CoapConnection>((resolve, reject) => {
        const id = ep.connect({ host, port: uri.port, security: tls, url: uri.wsUrl });
        l.connecting = { id, resolve, reject };
      });
    } catch (e) {
      await this.close();
      throw e;
    }
    conn.once('close', () => void this.close());
    return conn;
  }

  /**
   * The bound address of the listener on `transport` (default: the first one opened).
   * @throws CoapServerError `NOT_LISTENING` if not listening (on that transport).
   */
  address(transport?: ListenTransport): SocketAddress {
    const l = transport === undefined ? this.openListeners.values().next().value : this.openListeners.get(transport);
    if (l === undefined || l.driver === undefined || this.state === 'closed') {
      throw new CoapServerError('NOT_LISTENING', `address: the server is not listening${transport !== undefined ? ` on ${transport}` : ''}`);
    }
    return l.driver.address();
  }

  /**
   * The observable resource of a request path (created on first use; the same object for
   * the same path while it has observers: a path whose observers have all gone may be given
   * a new object later, and an old one keeps notifying the path's observers). Observers
   * register for it through GETs with Observe 0 on a route that allows it (the route's
   * `obs` attribute, or {@link ResponseInit.observe}).
   */
  resource(path: string): ObservableResource {
    let r = this.resources.get(path);
    if (r === undefined) {
      if (this.resources.size >= this.resourceLimit()) this.sweep();
      let id = this.nextResource;
      while (this.resourceIds.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
      this.nextResource = id >= 0xffffffff ? 1 : id + 1;
      r = new ObservableResource(this, path, id);
      this.resources.set(path, r);
      this.resourceIds.add(id);
    }
    return r;
  }

  /** How many entries `resources` holds before a sweep: observe.maxResources and some slack. */
  private resourceLimit(): number {
    const max = this.options.observe?.maxResources ?? 1024;
    return max + Math.max(16, max >> 2);
  }

  /**
   * Forgets the entries whose resource has no observer left in the core of any listener. The
   * cores count them (OBSERVERS records, run after every response written before them, so a
   * registration on its way is counted) in one flush each, one after the other in this call;
   * an entry found empty everywhere is gone before any later response could register on its id.
   */
  private sweep(): void {
    const eps = this.drivers();
    if (this.sweeping) return;
    if (eps.length === 0) {
      // no registry: nobody observes anything
      this.resources.clear();
      this.resourceIds.clear();
      return;
    }
    this.sweeping = true;
    const counts = new Map<ObservableResource, number>();
    try {
      for (const ep of eps) {
        for (const r of this.resources.values()) {
          ep.observers(r._id, (_id, count) => counts.set(r, (counts.get(r) ?? 0) + (count > 0 ? count : 0)));
        }
        ep.flush();
      }
      for (const [r, count] of counts) {
        if (count !== 0 || this.resources.get(r.path) !== r) continue;
        this.resources.delete(r.path);
        this.resourceIds.delete(r._id);
      }
    } finally {
      this.sweeping = false;
    }
  }

  /** @internal observers of a path's resource over every listener (ts/proxy.ts) */
  _observers(path: string): number {
    const r = this.resources.get(path);
    if (r === undefined) return 0;
    let n = 0;
    for (const ep of this.drivers()) {
      ep.observers(r._id, (_id, count) => {
        if (count > 0) n += count;
      });
      ep.flush();
    }
    return n;
  }

  /**
   * Messaging-layer counters (summed over the listeners) and the server's own: live while
   * listening, the last values after {@link close} (until the next listen), undefined before
   * the first listen.
   */
  stats(): ServerStats | undefined {
    const eps = this.drivers();
    const st = eps.length > 0 ? sumStats(eps.map((d) => d.stats())) : this.lastStats;
    return st === undefined ? undefined : { ...st, observableResources: this.resources.size };
  }

  /**
   * Stops serving: new requests get 5.03, handlers in flight get up to `closeTimeout` ms
   * to answer (their responses are sent), then every listener and connection closes.
   * Resolves when closed.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (this.state === 'idle' || this.openListeners.size === 0) {
      this.state = 'closed'; // never listened, or closed while listen() resolves the host
      this.openListeners.clear();
      return (this.closing = Promise.resolve());
    }
    this.state = 'closing';
    this.closing = (async () => {
      if (this.inflight > 0) {
        const grace = this.options.closeTimeout ?? 1000;
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          this.idle = resolve;
          timer = setTimeout(resolve, grace);
        });
        clearTimeout(timer);
        this.idle = undefined;
      }
      this.state = 'closed';
      const ls = [...this.openListeners.values()];
      this.openListeners.clear();
      const eps = ls.map((l) => l.driver).filter((d): d is Driver => d !== undefined && !d.closed);
      for (const ep of eps) ep.flush();
      if (eps.length > 0) this.lastStats = sumStats(eps.map((d) => d.stats()));
      await Promise.all(eps.map((ep) => ep.close()));
      const closed: ConnectionClose = { code: undefined, message: 'CLOSED: the server closed', opened: true };
      for (const l of ls) {
        for (const conn of l.conns.values()) conn._closed(closed, []);
        l.conns.clear();
        l.sock.failAll(() => new CoapConnectionError('CLOSED', 'CLOSED: the server closed'));
      }
    })();
    return this.closing;
  }

  // ----------------------------------------------------------------- dispatch

  /** A request delivered by driver d. */
  private serve(d: Driver, b: Received, r: number): void {
    const req = new IncomingRequest(b, r);
    const id = req._id;
    if (this.state !== 'listening') {
      this.writeResponse(d, id, CODE_UNAVAILABLE, 'server closing', 0);
      return;
    }
    if (b.hasBody(r)) {
      // A block-wise upload (RFC 7959 Block1): the core reassembled the body.
      const body = d.readBody(b.bodyId(r), b.bodyLength(r));
      if (typeof body === 'number') {
        this.writeResponse(d, id, CODE_INCOMPLETE, 'upload no longer available', 0);
        return;
      }
      req._setBody(body);
    }
    if (b.observeAsked(r)) req._observeAsked = true;
    this.inflight++;
    let res: ResponseInit | Promise<ResponseInit>;
    try {
      res = this.router !== undefined ? this.route(req) : (this.handler as RequestHandler)(req);
    } catch (e) {
      this.fail(d, id, e, req);
      return;
    }
    if (isThenable(res)) {
      res.then(
        (v) => this.finish(d, id, v, req),
        (e: unknown) => this.fail(d, id, e, req),
      );
    } else {
      this.finish(d, id, res, req);
    }
  }

  private route(req: IncomingRequest): ResponseInit | Promise<ResponseInit> {
    const router = this.router as ServerRouter;
    const m = router.route(req);
    if (m.status === undefined) {
      req.params = m.params;
      if (req._observeAsked && router.observable(m.pattern)) req._observable = true;
      return m.handler(req, m.params);
    }
    if (m.status === '4.04') {
      if (this.options.wellKnownCore !== false && req.method === 'GET' && req.path === '/.well-known/core') {
        return { code: '2.05', payload: router.wellKnownCore(req.query), contentFormat: CT_LINK_FORMAT };
      }
      return NOT_FOUND;
    }
    return NOT_ALLOWED;
  }

  /** The core rejected a response (too large, invalid): answer 5.00 instead. */
  private respondFailed(d: Driver, id: number, status: number): void {
    let err: CoapResponseError | undefined;
    if (status === Status.MESSAGE_TOO_LARGE) {
      err = new CoapResponseError('TOO_LARGE', 'the response is larger than the endpoint can send (maxMessageSize, or the block-wise cache: blockwise.cacheMemory)');
    } else if (status === Status.INVALID) {
      err = new CoapResponseError('INVALID_OPTION', 'the core refused the response as invalid');
    }
    if (err === undefined) return;
    this.reportError(err, undefined);
    this.writeResponse(d, id, CODE_INTERNAL, this.options.exposeErrors === true ? err.message : undefined, 0);
  }

  private done(): void {
    if (--this.inflight === 0 && this.idle !== undefined) this.idle();
  }

  private fail(d: Driver, id: number, err: unknown, req: IncomingRequest): void {
    this.done();
    const expose = this.options.exposeErrors === true;
    if (err instanceof CoapRequestError || err instanceof CoapUriError) {
      // The client's mistake (a payload that is not JSON or UTF-8): 4.00 with the code.
      if (this.options.onError !== undefined) this.reportError(err, req);
      this.writeResponse(d, id, CODE_BAD_REQUEST, expose ? message(err) : err.code, 0);
      return;
    }
    this.reportError(err, req);
    this.writeResponse(d, id, CODE_INTERNAL, expose ? message(err) : undefined, 0);
  }

  /** A handler's result: write it (or, with its error reported, a 5.00). */
  private finish(ep: Driver, id: number, res: ResponseInit, req: IncomingRequest): void {
    this.done();
    if (ep.closed) return;
    const err = this.respondWith(ep, id, res, req);
    if (err === undefined) return;
    this.reportError(err, req);
    this.writeResponse(ep, id, CODE_INTERNAL, this.options.exposeErrors === true ? err.message : undefined, 0);
  }

  /** Validates and writes a handler's response to exchange `id`; the error, or undefined. */
  private respondWith(ep: Driver, id: number, res: ResponseInit, req: IncomingRequest): CoapResponseError | undefined {
    if (res === null || typeof res !== 'object') {
      return new CoapResponseError('NO_RESPONSE', `the handler returned ${res === undefined ? 'undefined' : JSON.stringify(res)}, not a response`);
    }
    const code = codeOf(res.code);
    const cls = code >> 5;
    if (code < 0 || (cls !== 2 && cls !== 4 && cls !== 5)) return new CoapResponseError('INVALID_CODE', codeProblem(res.code));
    if (notBoolean('observe', res.observe) !== undefined) return new CoapResponseError('INVALID_OPTION', `observe must be a boolean, not ${JSON.stringify(res.observe)}`);
    let resource = 0;
    if (req._observeAsked && cls === 2 && (res.observe ?? req._observable)) {
      const r = this.resource(req._observeKey ?? req.path);
      resource = r._id;
      if (res.observe === true) r._registered = true;
    }
    return this.writeInit(ep, id, code, res, resource, false, false);
  }

  /** Whether notify() may run for `r` (see {@link ObservableResource.notify}). */
  private observable(r: ObservableResource): boolean {
    const router = this.router;
    if (router === undefined || r._registered || this.resources.get(r.path)?._registered === true) return true;
    const path = r.path;
    const m = router.route({ method: 'GET', path } as IncomingRequest);
    return m.status === undefined && router.observable(m.pattern);
  }

  /** @internal ObservableResource.notify */
  _notify(r: ObservableResource, init: NotifyInit | PayloadInit | undefined): void {
    const notBool = typeof init === 'object' && init !== null ? notBoolean('notify: confirmable', (init as { confirmable?: unknown }).confirmable) : undefined;
    if (notBool !== undefined) throw notBool;
    if (this.state !== 'listening') {
      throw new CoapServerError('NOT_LISTENING', `notify ${r.path}: the server is ${this.state === 'idle' ? 'not listening yet (call listen() first)' : 'closed'}`);
    }
    if (!this.observable(r)) {
      throw new CoapServerError('NOT_OBSERVABLE', `notify ${r.path}: no GET route with the obs attribute serves this path (router.get(path, handler, { obs: true }))`);
    }
    // listen() under way: not bound yet, so nobody observes anything yet.
    if (this.drivers().length === 0) return;
    this.notifyNow(r, init);
  }

  private notifyNow(r: ObservableResource, init: NotifyInit | PayloadInit | undefined): void {
    if (init === undefined) {
      let res: ResponseInit | Promise<ResponseInit>;
      const req = syntheticGet(r.path);
      try {
        res = this.router !== undefined ? this.route(req) : (this.handler as RequestHandler)(req);
      } catch (e) {
        this.reportError(e, req);
        return;
      }
      if (isThenable(res)) {
        res.then(
          (v) => {
            if (this.state === 'listening') this.notifyNow(r, v ?? null);
          },
          (e: unknown) => this.reportError(e, req),
        );
      } else this.notifyNow(r, res ?? null);
      return;
    }
    const eps = this.drivers();
    if (eps.length === 0 || this.state !== 'listening') return;
    const p = payloadOf(init);
    const res = (p !== undefined ? { code: '2.05', payload: p } : init) as NotifyInit;
    let err: CoapResponseError | undefined;
    if (res === null || typeof res !== 'object') err = new CoapResponseError('NO_RESPONSE', 'notify: expected a response, a string or bytes');
    else {
      const code = codeOf(res.code);
      const cls = code >> 5;
      if (code < 0 || (cls !== 2 && cls !== 4 && cls !== 5)) err = new CoapResponseError('INVALID_CODE', `notify: ${codeProblem(res.code)}`);
      else {
        // the path's entry now (0 when nobody observes it: the core then sends nothing)
        const id = this.resources.get(r.path)?._id ?? 0;
        // every listener's core has its own observers of it
        for (const ep of eps) if (err === undefined) err = this.writeInit(ep, 0, code, res, id, true, res.confirmable === true);
      }
    }
    if (err !== undefined) this.reportError(err, undefined);
  }

  private reportError(err: unknown, req: IncomingRequest | undefined): void {
    const onError = this.options.onError;
    if (onError === undefined) {
      console.error('turbocoap server error (pass onError to createServer to handle it):', err);
      return;
    }
    try {
      onError(err, req);
    } catch (e) {
      console.error('turbocoap server: onError threw:', e);
    }
  }

  /**
   * Writes a response for exchange `id` (notify false) or a notification of `resource`;
   * returns why it cannot (nothing written), or undefined.
   */
  private writeInit(d: Driver, id: number, code: number, res: ResponseInit, resource: number, notify: boolean, confirmable: boolean): CoapResponseError | undefined {
    let payload: string | Uint8Array | undefined;
    if (res.payload !== undefined) {
      payload = payloadOf(res.payload);
      if (payload === undefined) {
        return new CoapResponseError('INVALID_PAYLOAD', `payload must be a string, a Uint8Array, an ArrayBuffer or an ArrayBufferView, not ${typeof res.payload === 'object' ? 'an object' : typeof res.payload}`);
      }
    }
    const options = res.options;
    const cf = res.contentFormat;
    const maxAge = res.maxAge;
    const etag = res.etag;
    const location = res.location;
    // Fast path: code and a string payload only.
    if (!notify && options === undefined && cf === undefined && maxAge === undefined && etag === undefined && location === undefined) {
      if (payload === undefined || typeof payload === 'string') {
        return this.writeResponse(d, id, code, payload, 0, resource) ? undefined : tooLarge(payload);
      }
    }
    let n = 0;
    let bound = 0;
    let f = -1;
    if (cf !== undefined) {
      f = formatOf(cf);
      if (f < 0) return new CoapResponseError('INVALID_OPTION', `invalid contentFormat ${JSON.stringify(cf)}`);
      n++, (bound += 4);
    }
    if (maxAge !== undefined) {
      if (!(typeof maxAge === 'number' && Number.isInteger(maxAge) && maxAge >= 0 && maxAge <= 0xffffffff)) {
        return new CoapResponseError('INVALID_OPTION', `maxAge must be an integer number of seconds in 0..4294967295, not ${String(maxAge)}`);
      }
      n++, (bound += 4);
    }
    if (etag !== undefined) n++, (bound += valueBound(etag));
    let loc: { number: number; value: Uint8Array }[] | undefined;
    if (location !== undefined) {
      try {
        loc = locationOptions(location);
      } catch (e) {
        return new CoapResponseError('INVALID_OPTION', `invalid location: ${message(e)}`, { cause: e });
      }
      n += loc.length;
      for (const o of loc) bound += o.value.length;
    }
    if (options !== undefined) {
      if (!Array.isArray(options)) return new CoapResponseError('INVALID_OPTION', 'options must be an array');
      n += options.length;
      for (let i = 0; i < options.length; i++) {
        const o = options[i] as OptionInit;
        if (o === null || typeof o !== 'object') return new CoapResponseError('INVALID_OPTION', `option ${i} is not an object`);
        bound += valueBound(o.value);
      }
    }
    if (payload !== undefined) bound += valueBound(payload);
    if (!(notify ? d.beginNotify(n, bound) : d.beginRespond(n, bound))) return tooLarge(payload);
    const m0 = d.mark();
    let k = 0;
    let bad = f >= 0 ? putOption(d, k++, OptionNumber.ContentFormat, f) : undefined;
    if (bad === undefined && maxAge !== undefined) bad = putOption(d, k++, OptionNumber.MaxAge, maxAge);
    if (bad === undefined && etag !== undefined) bad = putOption(d, k++, OptionNumber.ETag, etag);
    if (bad === undefined && loc !== undefined) for (const o of loc) if (bad === undefined) bad = putOption(d, k++, o.number, o.value);
    if (bad === undefined && options !== undefined) {
      for (let i = 0; i < options.length && bad === undefined; i++) {
        const o = options[i] as OptionInit;
        bad = putOption(d, k++, o.number, o.value);
      }
    }
    if (bad !== undefined) {
      d.rewind(m0); // discard the partial record
      return new CoapResponseError('INVALID_OPTION', bad.message, { cause: bad });
    }
    let poff = d.mark();
    let plen = 0;
    if (typeof payload === 'string') plen = d.putString(payload);
    else if (payload !== undefined) {
      poff = d.putBytes(payload);
      plen = payload.length;
    }
    if (notify) d.notify(resource, confirmable, code, poff, plen, n);
    else d.respond(id, code, poff, plen, n, resource);
    return undefined;
  }

  /**
   * Writes a response with a code, an optional string payload and an optional Max-Age (when
   * > 0). False if it does not fit (then nothing is written; with `payload` undefined the
   * exchange is dropped).
   */
  private writeResponse(d: Driver, id: number, code: number, payload: string | undefined, maxAge: number, resource = 0): boolean {
    if (d.closed) return true;
    const nopt = maxAge > 0 ? 1 : 0;
    if (!d.beginRespond(nopt, 4 + (payload === undefined ? 0 : 3 * payload.length))) {
      if (payload === undefined) d.drop(id);
      return false;
    }
    if (nopt) putOption(d, 0, OptionNumber.MaxAge, maxAge);
    const poff = d.mark();
    const plen = payload === undefined ? 0 : d.putString(payload);
    d.respond(id, code, poff, plen, nopt, resource);
    return true;
  }
}

function tooLarge(payload: string | Uint8Array | undefined): CoapResponseError {
  const size = payload === undefined ? '' : ` (a payload of ${typeof payload === 'string' ? `${payload.length} characters` : `${payload.length} bytes`})`;
  return new CoapResponseError('TOO_LARGE', `the response does not fit the endpoint's buffers${size}`);
}

/**
 * Creates a CoAP server (CoAP over UDP).
 *
 * ```ts
 * const server = createServer((req) => ({ code: '2.05', payload: `hello ${req.path}` }));
 * await server.listen({ port: 5683, host: '::' });
 * ```
 *
 * @param handler a function `(req) => ResponseInit | Promise<ResponseInit>`, or a
 *   {@link Router} (4.04 / 4.05 for unrouted requests; `GET /.well-known/core` from the
 *   routes' link-format unless a route claims it).
 * @param options messaging-layer settings ({@link EndpointOptions}) and server options.
 */
export function createServer(handler: RequestHandler | ServerRouter, options?: ServerOptions): CoapServer {
  return new CoapServer(handler, options);
}
