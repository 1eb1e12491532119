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
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CoapError, CoapNetworkError } from './errors';
import { IncomingRequest } from './incoming';
import { codeOf, formatOf, locationOptions, putOption, valueBound, type ContentFormatInit, type OptionInit } from './outgoing';
import { Router } from './router';
import { CoapUriError } from './uri';
import { Endpoint, type EndpointListener } from './transport/endpoint';
import {
  Batch,
  E_INVALID,
  E_MESSAGE_TOO_LARGE,
  OBS_CON,
  RX_BODY_ID,
  RX_BODY_LEN,
  RX_CODE,
  RX_KIND,
  RX_OPT_COUNT,
  RX_OPTS,
  RX_SRV_FLAGS,
  RX_WORDS,
  SRVF_BODY,
  SRVF_OBSERVE,
  TX_DROP,
  TX_NOTIFY_WORDS,
  TX_RESPOND_WORDS,
  type EndpointOptions,
  type EndpointStats,
  type SocketAddress,
} from './transport/udp-records';
import type { UdpBackendKind } from './transport/udp-select';

/** What a handler answers with. */
export interface ResponseInit {
  /** Response code, `'c.dd'` (e.g. `'2.05'`) or a number; class 2, 4 or 5. */
  readonly code: string | number;
  /** Payload: bytes, or a string sent as UTF-8. */
  readonly payload?: string | Uint8Array;
  /** Content-Format (12): a number or a registered media type (`'application/json'`). */
  readonly contentFormat?: ContentFormatInit;
  /** Max-Age (14) in seconds. */
  readonly maxAge?: number;
  /** ETag (4), 1..8 bytes (a string is sent as UTF-8). */
  readonly etag?: Uint8Array | string;
  /** Location-Path / Location-Query from a relative reference such as `'/things/42?v=1'`. */
  readonly location?: string;
  /** More options, in any order (sent sorted, repeated options keep their order). */
  readonly options?: readonly OptionInit[];
  /**
   * Observe (RFC 7641): when the request asked to observe ({@link IncomingRequest.observe} is
   * 0) and the code is 2.xx, `true` registers the client for notifications of the request's
   * path ({@link CoapServer.resource}), `false` declines. Default: `true` for routes whose
   * attributes carry `obs` (`router.get('/t', h, { obs: true })`), else `false`.
   */
  readonly observe?: boolean;
}

/** A notification: a response, and whether it goes as a CON to every observer. */
export interface NotifyInit extends ResponseInit {
  /**
   * Send it confirmable to every observer (default false: NON, with a CON every
   * `observe.conEvery` notifications per observer and at least once a day to check liveness).
   */
  readonly confirmable?: boolean;
}

/** A request handler: returns (or resolves to) the response. A thrown error becomes 5.00. */
export type RequestHandler = (req: IncomingRequest) => ResponseInit | Promise<ResponseInit>;

/** A router whose handlers serve {@link IncomingRequest}s. */
export type ServerRouter = Router<IncomingRequest, ResponseInit | Promise<ResponseInit>>;

/** Server options: the messaging layer's knobs ({@link EndpointOptions}) and these. */
export interface ServerOptions extends EndpointOptions {
  /** Driver: `'native'` (addon) or `'wasm'`; default as for the codec (native if it loads). */
  readonly backend?: UdpBackendKind;
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
   * Called with errors thrown by handlers (they are answered 5.00 either way), and with errors
   * of notifications ({@link ObservableResource.notify}; `req` is then the synthetic GET that
   * re-ran the handler, or undefined).
   */
  readonly onError?: (err: unknown, req: IncomingRequest | undefined) => void;
}

/** Where to listen. */
export interface ListenOptions {
  /** UDP port (default 5683; 0 picks a free one). */
  readonly port?: number;
  /** Local address or host name (default `'::'`, dual-stack). */
  readonly host?: string;
}

const CODE_INTERNAL = 0xa0; // 5.00
const CODE_BAD_REQUEST = 0x80; // 4.00
const CODE_UNAVAILABLE = 0xa3; // 5.03
const NOT_FOUND: ResponseInit = Object.freeze({ code: 0x84 });
const NOT_ALLOWED: ResponseInit = Object.freeze({ code: 0x85 });
const OPT_ETAG = 4;
const OPT_URI_PATH = 11;
const CODE_INCOMPLETE = 0x88; // 4.08
const OPT_CONTENT_FORMAT = 12;
const OPT_MAX_AGE = 14;
const CT_LINK_FORMAT = 40;

function isThenable(v: unknown): v is PromiseLike<ResponseInit> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

function message(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > 512 ? m.slice(0, 512) : m;
}

const utf8 = new TextEncoder();

/**
 * A synthetic GET for `path` (used to re-run the handler for a notification): one REQUEST
 * record with the path's Uri-Path options.
 */
function syntheticGet(path: string): IncomingRequest {
  const segs = path === '/' || path === '' ? [] : path.slice(1).split('/').map((x) => utf8.encode(decodeSegment(x)));
  let bytes = 0;
  for (const g of segs) bytes += g.length;
  const u8 = new Uint8Array(bytes);
  const u32 = new Uint32Array(RX_WORDS + 3 * segs.length);
  u32[RX_KIND] = 1; // REQUEST
  u32[RX_CODE] = 1; // GET
  u32[RX_OPT_COUNT] = segs.length;
  let off = 0;
  for (let k = 0; k < segs.length; k++) {
    const g = segs[k] as Uint8Array;
    u8.set(g, off);
    u32[RX_OPTS + 3 * k] = OPT_URI_PATH;
    u32[RX_OPTS + 3 * k + 1] = off;
    u32[RX_OPTS + 3 * k + 2] = g.length;
    off += g.length;
  }
  return new IncomingRequest(new Batch(u32, u8, 0), 0);
}

/** Undoes the `%25` / `%2F` escaping of a request path segment. */
function decodeSegment(s: string): string {
  return s.indexOf('%') < 0 ? s : s.replace(/%2F/gi, '/').replace(/%25/g, '%');
}

/**
 * An observable resource of a {@link CoapServer} (RFC 7641): clients register with a GET
 * carrying Observe 0 on a route that allows it; {@link ObservableResource.notify} sends the
 * new state to all of them in one call (the fan-out runs in C).
 */
export class ObservableResource {
  /** @internal */
  constructor(
    private readonly server: CoapServer,
    /** The request path observers registered for (e.g. `'/time'`). */
    readonly path: string,
    /** @internal the core's resource id */
    readonly _id: number,
  ) {}

  /**
   * Notifies every observer. With `init`, that response is sent (a string or bytes is a
   * 2.05 payload); without, the GET handler of the path runs again (with a synthetic request)
   * and its response is sent. A 2.xx notification carries a fresh Observe sequence number;
   * any other code ends every registration of the resource (RFC 7641 §3.2). Payloads larger
   * than a block go block-wise (the notification carries the first block, RFC 7959 §2.6).
   * Errors (handler failures, a response that cannot be sent) go to the server's `onError`.
   */
  notify(init?: NotifyInit | string | Uint8Array): void {
    this.server._notify(this, init);
  }
}

/**
 * A CoAP/UDP server. Create it with {@link createServer}, start it with
 * {@link CoapServer.listen}.
 */
export class CoapServer implements EndpointListener {
  private readonly handler: RequestHandler | undefined;
  private readonly router: ServerRouter | undefined;
  private readonly options: ServerOptions;
  private ep: Endpoint | undefined;
  private state: 'idle' | 'listening' | 'closing' | 'closed' = 'idle';
  private inflight = 0;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private readonly resources = new Map<string, ObservableResource>();
  private nextResource = 1;

  /** @internal use {@link createServer} */
  constructor(handler: RequestHandler | ServerRouter, options: ServerOptions = {}) {
    if (handler instanceof Router) this.router = handler as ServerRouter;
    else if (typeof handler === 'function') this.handler = handler;
    else throw new TypeError('createServer: expected a handler function or a Router');
    this.options = { ...options };
  }

  /** The driver in use (`'native'` or `'wasm'`), once listening. */
  get backend(): UdpBackendKind | undefined {
    return this.ep?.kind;
  }

  /** Whether the server is listening. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  /**
   * Binds the socket and starts serving. A listening server keeps the process alive
   * until {@link CoapServer.close}.
   * @throws CoapNetworkError (e.g. `EADDRINUSE`, `ENOTFOUND`) when it cannot listen.
   */
  async listen(opts: ListenOptions | number = {}): Promise<this> {
    if (this.state !== 'idle') throw new CoapError(`listen: the server is ${this.state}`);
    const o: ListenOptions = typeof opts === 'number' ? { port: opts } : opts;
    const port = o.port ?? 5683;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`listen: invalid port ${String(port)}`);
    let host = o.host ?? '::';
    let family = isIP(host);
    this.state = 'listening';
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
      const ep = new Endpoint(family === 6 ? 6 : 4, this.options.backend, this.options, this);
      this.ep = ep;
      let flags = 0;
      if (this.options.ipv6Only === true) flags |= 1;
      if (this.options.reuseAddr === true) flags |= 2;
      try {
        await ep.driver.bind(host, port, flags);
      } catch (e) {
        await ep.close();
        throw e;
      }
      if (this.state !== 'listening') {
        await ep.close(); // closed while binding
        return this;
      }
      ep.driver.setRef(true);
    } catch (e) {
      this.ep = undefined;
      if (this.state === 'listening') this.state = 'idle';
      throw e;
    }
    return this;
  }

  /** The bound address. @throws CoapError if not listening. */
  address(): SocketAddress {
    if (this.ep === undefined || this.state === 'closed') throw new CoapError('address: the server is not listening');
    return this.ep.driver.address();
  }

  /**
   * The observable resource of a request path (created on first use; the same object for
   * the same path). Observers register for it through GETs with Observe 0 on a route that
   * allows it (the route's `obs` attribute, or {@link ResponseInit.observe}).
   */
  resource(path: string): ObservableResource {
    let r = this.resources.get(path);
    if (r === undefined) {
      if (this.nextResource > 0x7fffffff) throw new CoapError('resource: too many observable paths');
      r = new ObservableResource(this, path, this.nextResource++);
      this.resources.set(path, r);
    }
    return r;
  }

  /** Messaging-layer counters. */
  stats(): EndpointStats | undefined {
    return this.ep?.driver.stats();
  }

  /**
   * Stops serving: new requests get 5.03, handlers in flight get up to `closeTimeout` ms
   * to answer (their responses are sent), then the socket closes. Resolves when closed.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const ep = this.ep;
    if (this.state === 'idle' || ep === undefined) {
      this.state = 'closed';
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
      await ep.close();
    })();
    return this.closing;
  }

  // ----------------------------------------------------------------- dispatch

  /** @internal */
  onRequest(b: Batch, r: number): void {
    const req = new IncomingRequest(b, r);
    const id = req._id;
    if (this.state !== 'listening') {
      this.writeResponse(id, CODE_UNAVAILABLE, 'server closing', 0);
      return;
    }
    const sf = b.u32[r + RX_SRV_FLAGS] as number;
    if (sf !== 0) {
      if ((sf & SRVF_BODY) !== 0) {
        // A block-wise upload (RFC 7959 Block1): the core reassembled the body.
        const body = (this.ep as Endpoint).readBody(b.u32[r + RX_BODY_ID] as number, b.u32[r + RX_BODY_LEN] as number);
        if (typeof body === 'number') {
          this.writeResponse(id, CODE_INCOMPLETE, 'upload no longer available', 0);
          return;
        }
        req._setBody(body);
      }
      if ((sf & SRVF_OBSERVE) !== 0) req._observeAsked = true;
    }
    this.inflight++;
    let res: ResponseInit | Promise<ResponseInit>;
    try {
      res = this.router !== undefined ? this.route(req) : (this.handler as RequestHandler)(req);
    } catch (e) {
      this.fail(id, e, req);
      return;
    }
    if (isThenable(res)) {
      res.then(
        (v) => this.finish(id, v, req),
        (e: unknown) => this.fail(id, e, req),
      );
    } else {
      this.finish(id, res, req);
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
        return { code: 0x45, payload: router.wellKnownCore(req.query), contentFormat: CT_LINK_FORMAT };
      }
      return NOT_FOUND;
    }
    return NOT_ALLOWED;
  }

  /** @internal */
  onResponse(): void {
    /* a server sends no requests */
  }

  /** @internal */
  onFailed(): void {
    /* a server sends no requests */
  }

  /** @internal the core rejected a response (too large, invalid): answer 5.00 instead. */
  onRespondFailed(id: number, rc: number): void {
    if (rc === E_MESSAGE_TOO_LARGE) this.writeResponse(id, CODE_INTERNAL, 'response too large', 0);
    else if (rc === E_INVALID) this.writeResponse(id, CODE_INTERNAL, 'invalid response', 0);
  }

  private done(): void {
    if (--this.inflight === 0 && this.idle !== undefined) this.idle();
  }

  private fail(id: number, err: unknown, req: IncomingRequest): void {
    this.done();
    this.reportError(err, req);
    if (err instanceof CoapUriError) this.writeResponse(id, CODE_BAD_REQUEST, message(err), 0);
    else this.writeResponse(id, CODE_INTERNAL, message(err), 0);
  }

  /** A handler's result: write it (or a 5.00 saying why it cannot be sent). */
  private finish(id: number, res: ResponseInit, req: IncomingRequest): void {
    this.done();
    const ep = this.ep;
    if (ep === undefined || ep.closed) return;
    if (res === null || typeof res !== 'object') {
      this.writeResponse(id, CODE_INTERNAL, 'the handler returned no response', 0);
      return;
    }
    const code = codeOf(res.code);
    const cls = code >> 5;
    if (cls !== 2 && cls !== 4 && cls !== 5) {
      this.writeResponse(id, CODE_INTERNAL, `invalid response code ${JSON.stringify(res.code)}`, 0);
      return;
    }
    let resource = 0;
    if (req._observeAsked && cls === 2 && (res.observe ?? req._observable)) resource = this.resource(req.path)._id;
    const bad = this.writeInit(ep, id, code, res, resource, -1);
    if (bad !== undefined) this.writeResponse(id, CODE_INTERNAL, bad, 0);
  }

  /** @internal ObservableResource.notify */
  _notify(r: ObservableResource, init: NotifyInit | string | Uint8Array | undefined): void {
    if (init === undefined) {
      if (this.state !== 'listening') return;
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
          (v) => this._notify(r, v),
          (e: unknown) => this.reportError(e, req),
        );
      } else this._notify(r, res);
      return;
    }
    const ep = this.ep;
    if (ep === undefined || ep.closed || this.state !== 'listening') return;
    const res: NotifyInit = typeof init === 'string' || init instanceof Uint8Array ? { code: 0x45, payload: init } : init;
    if (res === null || typeof res !== 'object') {
      this.reportError(new TypeError('notify: expected a response, a string or bytes'), undefined);
      return;
    }
    const code = codeOf(res.code);
    const cls = code >> 5;
    if (cls !== 2 && cls !== 4 && cls !== 5) {
      this.reportError(new RangeError(`notify: invalid response code ${JSON.stringify(res.code)}`), undefined);
      return;
    }
    const bad = this.writeInit(ep, 0, code, res, r._id, res.confirmable === true ? OBS_CON : 0);
    if (bad !== undefined) this.reportError(new CoapError(`notify ${r.path}: ${bad}`), undefined);
  }

  private reportError(err: unknown, req: IncomingRequest | undefined): void {
    const onError = this.options.onError;
    if (onError === undefined) return;
    try {
      onError(err, req);
    } catch {
      /* nothing more to do */
    }
  }

  /**
   * Writes a RESPOND record for exchange `id` (notifyFlags < 0) or a NOTIFY record for
   * `resource`; returns why it cannot (nothing written), or undefined.
   */
  private writeInit(ep: Endpoint, id: number, code: number, res: ResponseInit, resource: number, notifyFlags: number): string | undefined {
    const notify = notifyFlags >= 0;
    const hdr = notify ? TX_NOTIFY_WORDS : TX_RESPOND_WORDS;
    const payload = res.payload;
    const options = res.options;
    const cf = res.contentFormat;
    const maxAge = res.maxAge;
    const etag = res.etag;
    const location = res.location;
    // Fast path: code and payload only.
    if (!notify && options === undefined && cf === undefined && maxAge === undefined && etag === undefined && location === undefined) {
      if (payload === undefined || typeof payload === 'string') {
        this.writeResponse(id, code, payload, 0, resource);
        return undefined;
      }
    }
    let n = 0;
    let bound = 0;
    if (cf !== undefined) n++, (bound += 4);
    if (maxAge !== undefined) n++, (bound += 4);
    if (etag !== undefined) n++, (bound += valueBound(etag));
    let loc: { number: number; value: Uint8Array }[] | undefined;
    if (location !== undefined) {
      try {
        loc = locationOptions(location);
      } catch (e) {
        return `invalid location: ${message(e)}`;
      }
      n += loc.length;
      for (const o of loc) bound += o.value.length;
    }
    if (options !== undefined) {
      if (!Array.isArray(options)) return 'options must be an array';
      n += options.length;
      for (let i = 0; i < options.length; i++) {
        const o = options[i] as OptionInit;
        if (o === null || typeof o !== 'object') return `option ${i} is not an object`;
        bound += valueBound(o.value);
      }
    }
    if (payload !== undefined) bound += valueBound(payload);
    if (!ep.reserve(hdr + 3 * n, bound)) return 'response too large';
    const p = ep.wpos;
    const b0 = ep.bpos;
    let k = 0;
    let bad: string | undefined;
    if (cf !== undefined) {
      const f = formatOf(cf);
      if (f < 0) bad = `invalid contentFormat ${JSON.stringify(cf)}`;
      else putOption(ep, p, hdr, k++, OPT_CONTENT_FORMAT, f);
    }
    if (bad === undefined && maxAge !== undefined && !putOption(ep, p, hdr, k++, OPT_MAX_AGE, maxAge)) {
      bad = `invalid maxAge ${JSON.stringify(maxAge)}`;
    }
    if (bad === undefined && etag !== undefined && !putOption(ep, p, hdr, k++, OPT_ETAG, etag)) bad = 'invalid etag';
    if (bad === undefined && loc !== undefined) for (const o of loc) putOption(ep, p, hdr, k++, o.number, o.value);
    if (bad === undefined && options !== undefined) {
      for (let i = 0; i < options.length; i++) {
        const o = options[i] as OptionInit;
        if (!putOption(ep, p, hdr, k++, o.number, o.value)) {
          bad = `invalid option ${i} (number ${JSON.stringify(o.number)})`;
          break;
        }
      }
    }
    let poff = ep.bpos;
    let plen = 0;
    if (bad === undefined && payload !== undefined) {
      if (typeof payload === 'string') plen = ep.putString(payload);
      else if (payload instanceof Uint8Array) {
        poff = ep.putBytes(payload);
        plen = payload.length;
      } else bad = 'payload must be a string or a Uint8Array';
    }
    if (bad !== undefined) {
      ep.bpos = b0; // discard the partial record
      return bad;
    }
    if (notify) ep.notifyHeader(resource, notifyFlags, code, poff, plen, n);
    else ep.respondHeader(id, code, poff, plen, n, resource);
    return undefined;
  }

  /** Writes a response with a code, an optional string payload and an optional Max-Age (when > 0). */
  private writeResponse(id: number, code: number, payload: string | undefined, maxAge: number, resource = 0): void {
    const ep = this.ep;
    if (ep === undefined || ep.closed) return;
    const nopt = maxAge > 0 ? 1 : 0;
    if (!ep.reserve(TX_RESPOND_WORDS + 3 * nopt, 4 + (payload === undefined ? 0 : 3 * payload.length))) {
      ep.small(TX_DROP, id);
      return;
    }
    const p = ep.wpos;
    if (nopt) putOption(ep, p, TX_RESPOND_WORDS, 0, OPT_MAX_AGE, maxAge);
    const poff = ep.bpos;
    const plen = payload === undefined ? 0 : ep.putString(payload);
    ep.respondHeader(id, code, poff, plen, nopt, resource);
  }
}

/**
 * Creates a CoAP/UDP server.
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
