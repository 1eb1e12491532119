/**
 * A cross-transport CoAP proxy (RFC 7252 §5.7 and §10, RFC 8323 §8): `createProxy(options)`
 * gives a {@link CoapProxy} that listens on any transports (`listen({ transport })`, as a
 * server) and forwards with this library's client to any scheme it speaks.
 *
 * - Forward mode: requests carrying Proxy-Uri, or Proxy-Scheme with Uri-Host (Uri-Port,
 *   Uri-Path, Uri-Query), go to that URI, if the allowlist (`allow`) admits its host.
 * - Reverse mode (`target`): every other request goes to the target origin, its path and query
 *   appended to the target's path.
 *
 * Block-wise: the server side of the core reassembles Block1 uploads and serves large responses
 * block-wise itself, so whole bodies are forwarded; the client fetches upstream Block2 bodies.
 * Observe: one upstream observation per upstream resource (URI and Accept), its notifications
 * fanned out to every downstream observer (ObservableResource.notify) and cancelled when the
 * last downstream observer has gone.
 */
import { Agent, type AgentOptions } from './client';
import type { EndpointOptions, SocketAddress } from './driver/driver';
import { CoapBlockwiseError, CoapConnectionError, CoapNetworkError, CoapResetError, CoapTimeoutError, invalidArgType, invalidArgValue, outOfRange } from './errors';
import type { IncomingRequest, IncomingResponse } from './incoming';
import { observe, CoapObserveError, type Observation } from './observe';
import { OptionNumber, isUnsafe } from './options';
import type { OptionInit, ResponseInit } from './outgoing';
import { CoapServer, type ListenOptions, type ListenTransport, type ServerOptions } from './server';
import type { ClientSecurityOptions } from './security';
import { driverFactory } from './transports';
import { CoapUriError, formatUri, isCoapScheme, optionsToUri, parseUri, type CoapScheme, type CoapUri } from './uri';

/** An upstream a forward request names, for an {@link ProxyOptions.allow} function. */
export interface ProxyTarget {
  readonly scheme: CoapScheme;
  /** Host as in the URI (IPv6 without brackets, names in lower case). */
  readonly host: string;
  readonly port: number;
}

/** Options of {@link createProxy}. */
export interface ProxyOptions extends ServerOptions {
  /**
   * Reverse mode: the origin every request without Proxy-Uri / Proxy-Scheme goes to, e.g.
   * `'coap://192.0.2.1:5683'` (a path in it is prepended to the request's). Always allowed.
   */
  readonly target?: string;
  /**
   * Forward mode: the upstream hosts requests may name (Proxy-Uri, Proxy-Scheme): entries
   * `'host'` (any port) or `'host:port'` (`'[v6]:port'`), `'*'` for any host (an open relay:
   * only behind your own access control), or a function. Default: none: every forward request
   * is answered 4.03 Forbidden, so a proxy is never an open relay unless you say so.
   */
  readonly allow?: readonly string[] | ((target: ProxyTarget) => boolean);
  /**
   * Upstream schemes allowed (default: every one this build speaks: coap, coap+tcp, coaps+tcp,
   * coap+ws, coaps+ws, and coaps where DTLS is built in). Others are answered 5.05.
   */
  readonly schemes?: readonly string[];
  /** Security of upstream secured schemes (coaps+tcp, coaps+ws, coaps): psk, ca, cert, key, rejectUnauthorized. */
  readonly upstream?: ClientSecurityOptions;
  /** Options of the proxy's own client agent (e.g. `nstart`, `ackTimeout`). */
  readonly agent?: AgentOptions;
  /** Upstream timeout in ms for a forwarded request and an observation's first response (default 30000): then 5.04. */
  readonly timeout?: number;
  /** Requests forwarded at once (default 256); more are answered 5.03 with Max-Age `overloadMaxAge`. */
  readonly maxInFlight?: number;
  /** Requests forwarded at once per client address (default 32); more: 5.03 with Max-Age. */
  readonly maxInFlightPerClient?: number;
  /** Upstream observations at once (default 64); a registration beyond it is forwarded as a plain GET. */
  readonly maxObservations?: number;
  /** Largest upstream response body (default 4 MiB); larger: 5.02. */
  readonly maxBodySize?: number;
  /** How often (ms) upstream observations look for downstream observers left (default 2000). */
  readonly observeCheckInterval?: number;
}

/** Counters of a proxy. */
export interface ProxyStats {
  /** Requests forwarded (plain requests and observation starts). */
  readonly forwarded: number;
  /** Requests being forwarded now. */
  readonly inFlight: number;
  /** Refused: not allowed (4.03), bad (4.00), unsupported scheme (5.05), over a bound (5.03). */
  readonly refused: number;
  /** Upstream failures answered 5.02 / 5.04. */
  readonly upstreamErrors: number;
  /** Upstream observations open now. */
  readonly observations: number;
  /** Notifications fanned out to downstream observers. */
  readonly notifications: number;
}

const HOP_BY_HOP = new Set<number>([
  OptionNumber.UriHost,
  OptionNumber.UriPort,
  OptionNumber.UriPath,
  OptionNumber.UriQuery,
  OptionNumber.ProxyUri,
  OptionNumber.ProxyScheme,
  OptionNumber.Observe,
  OptionNumber.Block1,
  OptionNumber.Block2,
  OptionNumber.Size1,
  OptionNumber.Size2,
  OptionNumber.Echo,
  OptionNumber.RequestTag,
  OptionNumber.NoResponse,
]);
/** Hop-Limit (RFC 8768) a proxy inserts in a request that has none. */
const HOP_LIMIT_DEFAULT = 16;

/** A request the proxy answers itself. */
class Refusal {
  constructor(readonly res: ResponseInit) {}
}

function refuse(code: string, diagnostic: string): Refusal {
  return new Refusal({ code, payload: diagnostic });
}

const utf8d = new TextDecoder('utf-8', { fatal: true });

/** Upstream error -> the answer (RFC 7252 §5.9.2.3 / §5.9.2.5). */
function upstreamError(e: unknown): ResponseInit {
  if (e instanceof CoapTimeoutError) return { code: '5.04', payload: 'upstream timeout' };
  if (e instanceof CoapConnectionError || e instanceof CoapNetworkError || e instanceof CoapResetError) {
    return { code: '5.02', payload: `upstream: ${e.code}` };
  }
  if (e instanceof CoapBlockwiseError) return { code: '5.02', payload: `upstream block-wise: ${e.code}` };
  return { code: '5.02', payload: 'upstream failed' };
}

/** The upstream response as a downstream one: code, payload, end-to-end options (values copied). */
function toInit(res: IncomingResponse): ResponseInit {
  const options: OptionInit[] = [];
  for (const o of res.options) if (!HOP_BY_HOP.has(o.number)) options.push({ number: o.number, value: o.value.slice() });
  const payload = res.payload;
  return { code: res.code, payload: payload.length > 0 ? payload.slice() : undefined, options };
}

function positive(name: string, v: number | undefined, dflt: number, max = 2147483647): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw outOfRange(`createProxy: ${name}`, `an integer in 1..${max}`, v);
  return v;
}

/** One allowlist entry: host (canonical) and port (0 = any). */
interface AllowEntry {
  readonly host: string;
  readonly port: number;
}

/** A host as parseUri gives it (IPv6 canonical, names in lower case). */
function canonicalHost(h: string): string {
  try {
    return parseUri(h.includes(':') ? `coap://[${h}]/` : `coap://${h}/`).host;
  } catch {
    throw invalidArgValue('createProxy: allow', "'host', 'host:port', '[v6]:port' or '*'", h);
  }
}

function parseAllow(list: readonly string[]): { any: boolean; entries: AllowEntry[] } {
  let any = false;
  const entries: AllowEntry[] = [];
  for (const raw of list) {
    if (typeof raw !== 'string' || raw === '') throw invalidArgValue('createProxy: allow', "'host', 'host:port', '[v6]:port' or '*'", raw);
    if (raw === '*') {
      any = true;
      continue;
    }
    let host = raw;
    let port = 0;
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(raw) ?? /^([^:]+):(\d+)$/.exec(raw);
    if (m !== null) {
      host = m[1] as string;
      port = m[2] === undefined ? 0 : Number(m[2]);
    }
    if (!(port >= 0 && port <= 65535)) throw invalidArgValue('createProxy: allow', 'a port in 1..65535', raw);
    entries.push({ host: canonicalHost(host), port });
  }
  return { any, entries };
}

/** One upstream observation and its downstream observers (in the server's core). */
interface Upstream {
  readonly key: string;
  readonly obs: Observation;
  /** Resolves with the first response (or the error) once it arrived. */
  readonly first: Promise<IncomingResponse | Error>;
  /** The freshest notification, for observers that register later. */
  latest: ResponseInit | undefined;
  /** Downstream registrations being answered (not yet counted by the core). */
  pending: number;
  /** Checks in a row that found no downstream observer. */
  empty: number;
  ended: boolean;
}

/**
 * A CoAP proxy: a server whose requests are forwarded. Create it with {@link createProxy};
 * `listen()` once per transport like a server; `close()` closes the listeners, the upstream
 * observations and the proxy's client agent.
 */
export class CoapProxy {
  /** The server the proxy listens with. */
  readonly server: CoapServer;
  private agent: Agent;
  private readonly agentOptions: AgentOptions;
  private readonly target: CoapUri | undefined;
  private readonly allowFn: ((t: ProxyTarget) => boolean) | undefined;
  private readonly allowAny: boolean;
  private readonly allowList: readonly AllowEntry[];
  private readonly schemes: ReadonlySet<string>;
  private readonly security: ClientSecurityOptions;
  private readonly timeout: number;
  private readonly maxInFlight: number;
  private readonly maxPerClient: number;
  private readonly maxObservations: number;
  private readonly maxBodySize: number;
  private readonly checkEvery: number;
  private readonly overloadMaxAge: number;
  private readonly perClient = new Map<string, number>();
  private readonly observations = new Map<string, Upstream>();
  private checkTimer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private counts = { forwarded: 0, refused: 0, upstreamErrors: 0, notifications: 0 };
  private closed = false;

  /** @internal use {@link createProxy} */
  constructor(options: ProxyOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgType('createProxy: options', 'an object', options);
    const { target, allow, schemes, upstream, agent, timeout, maxInFlight, maxInFlightPerClient, maxObservations, maxBodySize, observeCheckInterval, ...serverOptions } = options;
    if (target !== undefined) {
      if (typeof target !== 'string') throw invalidArgType('createProxy: target', 'a CoAP URI string', target);
      this.target = parseUri(target);
      if (this.target.query.length > 0) throw invalidArgValue('createProxy: target', 'a URI without a query', target);
    }
    if (typeof allow === 'function') {
      this.allowFn = allow;
      this.allowAny = false;
      this.allowList = [];
    } else if (allow === undefined || Array.isArray(allow)) {
      const a = parseAllow(allow ?? []);
      this.allowAny = a.any;
      this.allowList = a.entries;
    } else throw invalidArgType('createProxy: allow', 'an array of hosts or a function', allow);
    const all = ['coap', 'coap+tcp', 'coaps+tcp', 'coap+ws', 'coaps+ws', 'coaps'].filter((s) => driverFactory(s) !== undefined);
    if (schemes !== undefined && !Array.isArray(schemes)) throw invalidArgType('createProxy: schemes', 'an array of schemes', schemes);
    for (const x of schemes ?? []) if (typeof x !== 'string' || !isCoapScheme(x)) throw invalidArgValue('createProxy: schemes', 'CoAP schemes (coap, coaps, coap+tcp, coaps+tcp, coap+ws, coaps+ws)', x);
    this.schemes = new Set((schemes ?? all).filter((s) => all.includes(s)));
    if (this.target !== undefined && !this.schemes.has(this.target.scheme)) {
      throw invalidArgValue('createProxy: target', `a URI of a scheme this proxy speaks (${[...this.schemes].join(', ')})`, target);
    }
    this.security = upstream ?? {};
    this.timeout = positive('timeout', timeout, 30000);
    this.maxInFlight = positive('maxInFlight', maxInFlight, 256);
    this.maxPerClient = positive('maxInFlightPerClient', maxInFlightPerClient, 32);
    this.maxObservations = positive('maxObservations', maxObservations, 64);
    this.maxBodySize = positive('maxBodySize', maxBodySize, 4 << 20, 1 << 30);
    this.checkEvery = positive('observeCheckInterval', observeCheckInterval, 2000);
    this.overloadMaxAge = serverOptions.overloadMaxAge ?? 2;
    this.agentOptions = { backend: serverOptions.backend, ...agent };
    this.agent = new Agent(this.agentOptions);
    const opts = { ...serverOptions, acceptProxy: true } as ServerOptions & EndpointOptions;
    this.server = new CoapServer((req) => this.handle(req), opts);
  }

  /** Opens a listener (see {@link CoapServer.listen}): once per transport. */
  async listen(opts: ListenOptions | number = {}): Promise<this> {
    if (this.closed) this.agent = new Agent(this.agentOptions); // listening again after close()
    this.closed = false;
    await this.server.listen(opts);
    return this;
  }

  /** The bound address of the listener on `transport` (default: the first one). */
  address(transport?: ListenTransport): SocketAddress {
    return this.server.address(transport);
  }

  /** The proxy's counters. */
  stats(): ProxyStats {
    return { ...this.counts, inFlight: this.inFlight, observations: this.observations.size };
  }

  /** Closes the listeners, every upstream observation and the proxy's client. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.checkTimer !== undefined) clearInterval(this.checkTimer);
    this.checkTimer = undefined;
    const obs = [...this.observations.values()];
    this.observations.clear();
    for (const u of obs) u.ended = true;
    await Promise.all([this.server.close(), ...obs.map((u) => u.obs.cancel({ timeout: 1000 }))]);
    await this.agent.close();
  }

  // -------------------------------------------------------------------- forwarding

  /** Where a request goes: the upstream URI, or why not. */
  private destination(req: IncomingRequest): string | Refusal {
    let proxyUri: Uint8Array | undefined;
    let proxyScheme: Uint8Array | undefined;
    for (const o of req.options) {
      if (o.number === OptionNumber.ProxyUri) proxyUri = o.value;
      else if (o.number === OptionNumber.ProxyScheme) proxyScheme = o.value;
      else if (o.number === OptionNumber.HopLimit) {
        // RFC 8768: decremented by every proxy; 0 left: not forwarded (a loop between proxies)
        if (o.value.length !== 1 || (o.value[0] as number) <= 1) return refuse('5.08', 'Hop-Limit reached');
      } else if (isUnsafe(o.number) && !HOP_BY_HOP.has(o.number)) {
        // §5.7.2: an unsafe option the proxy does not understand
        return refuse('5.02', `unsafe option ${o.number} not understood`);
      }
    }
    if (proxyUri === undefined && proxyScheme === undefined) {
      if (this.target === undefined) return refuse('4.04', 'not a proxy request (Proxy-Uri or Proxy-Scheme) and no target');
      const t = this.target;
      const path = t.path.length > 0 && t.path[t.path.length - 1] === '' ? t.path.slice(0, -1) : [...t.path];
      try {
        for (const o of req.options) if (o.number === OptionNumber.UriPath) path.push(utf8d.decode(o.value));
        return formatUri({ scheme: t.scheme, host: t.host, hostType: t.hostType, zone: t.zone, port: t.port, path, query: req.query });
      } catch {
        return refuse('4.00', 'Uri-Path or Uri-Query is not UTF-8');
      }
    }
    let uri: CoapUri;
    try {
      let text: string;
      if (proxyUri !== undefined) {
        text = utf8d.decode(proxyUri);
      } else {
        const scheme = utf8d.decode(proxyScheme as Uint8Array).toLowerCase();
        if (!isCoapScheme(scheme)) return refuse('5.05', `scheme ${scheme} not supported`);
        const opts = req.options.filter((o) => o.number === OptionNumber.UriHost || o.number === OptionNumber.UriPort || o.number === OptionNumber.UriPath || o.number === OptionNumber.UriQuery);
        if (!opts.some((o) => o.number === OptionNumber.UriHost)) return refuse('4.00', 'Proxy-Scheme needs Uri-Host');
        text = optionsToUri(opts, { host: '::', port: 0, scheme });
      }
      uri = parseUri(text);
    } catch (e) {
      if (e instanceof CoapUriError && e.code === 'UNSUPPORTED_SCHEME') return refuse('5.05', 'scheme not supported');
      return refuse('4.00', e instanceof CoapUriError ? `bad Proxy-Uri: ${e.code}` : 'bad Proxy-Uri');
    }
    if (!this.schemes.has(uri.scheme)) return refuse('5.05', `scheme ${uri.scheme} not supported here`);
    if (!this.allowed(uri)) return refuse('4.03', 'upstream host not allowed');
    return formatUri(uri);
  }

  private allowed(uri: CoapUri): boolean {
    if (this.target !== undefined && uri.scheme === this.target.scheme && uri.host === this.target.host && uri.port === this.target.port) return true;
    if (this.allowFn !== undefined) {
      try {
        return this.allowFn({ scheme: uri.scheme, host: uri.host, port: uri.port }) === true;
      } catch {
        return false;
      }
    }
    if (this.allowAny) return true;
    for (const e of this.allowList) if (e.host === uri.host && (e.port === 0 || e.port === uri.port)) return true;
    return false;
  }

  /** The request options forwarded upstream (end-to-end ones, values copied; Hop-Limit decremented or inserted). */
  private forwardedOptions(req: IncomingRequest): OptionInit[] {
    const out: OptionInit[] = [];
    let hop = false;
    for (const o of req.options) {
      if (HOP_BY_HOP.has(o.number)) continue;
      if (o.number === OptionNumber.HopLimit) {
        hop = true;
        out.push({ number: o.number, value: (o.value[0] as number) - 1 });
      } else out.push({ number: o.number, value: o.value.slice() });
    }
    if (!hop) out.push({ number: OptionNumber.HopLimit, value: HOP_LIMIT_DEFAULT });
    return out;
  }

  private handle(req: IncomingRequest): ResponseInit | Promise<ResponseInit> {
    const dest = this.destination(req);
    if (dest instanceof Refusal) {
      this.counts.refused++;
      return dest.res;
    }
    const client = req.remote.address;
    const mine = this.perClient.get(client) ?? 0;
    if (this.inFlight >= this.maxInFlight || mine >= this.maxPerClient) {
      this.counts.refused++;
      return { code: '5.03', maxAge: this.overloadMaxAge, payload: 'proxy busy' };
    }
    this.inFlight++;
    this.perClient.set(client, mine + 1);
    this.counts.forwarded++;
    const done = (): void => {
      this.inFlight--;
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(client);
      else this.perClient.set(client, n);
    };
    const p = req.observe === 0 && req.method === 'GET' ? this.observeForward(req, dest) : this.forward(req, dest);
    return p.finally(done);
  }

  private async forward(req: IncomingRequest, url: string): Promise<ResponseInit> {
    try {
      const res = await this.agent.request(url, {
        ...this.security,
        method: req.method,
        payload: req.payload.length > 0 ? req.payload : undefined,
        confirmable: true,
        options: this.forwardedOptions(req),
        timeout: this.timeout,
        maxBodySize: this.maxBodySize,
      });
      const init = toInit(res);
      if (req.observe === 1) queueMicrotask(() => this.checkObservers());
      return init;
    } catch (e) {
      this.counts.upstreamErrors++;
      return upstreamError(e);
    }
  }

  /** A downstream registration: joins the upstream observation of the resource, or starts it. */
  private async observeForward(req: IncomingRequest, url: string): Promise<ResponseInit> {
    const accept = req.accept;
    const key = `${url} ${accept ?? ''}`;
    let u = this.observations.get(key);
    if (u === undefined || u.ended) {
      if (this.observations.size >= this.maxObservations) return this.forward(req, url); // plain GET (RFC 7641 §4.1)
      u = this.startObservation(key, url, req);
    }
    u.pending++;
    try {
      const first = await u.first;
      if (first instanceof Error) {
        this.counts.upstreamErrors++;
        return first instanceof CoapObserveError ? toInit(first.response) : upstreamError(first);
      }
      const latest = u.latest ?? toInit(first);
      if (u.ended || first.option(OptionNumber.Observe) === undefined || !first.ok) return { ...latest, observe: false };
      req._observeKey = key; // the downstream observer joins the resource `key` of the server
      return { ...latest, observe: true };
    } finally {
      const uu = u;
      setImmediate(() => uu.pending--); // once the response (and its registration) was written
    }
  }

  private startObservation(key: string, url: string, req: IncomingRequest): Upstream {
    const obs = observe(url, {
      ...this.security,
      agent: this.agent,
      options: this.forwardedOptions(req),
      timeout: this.timeout,
      maxBodySize: this.maxBodySize,
      maxBuffered: 4,
    });
    let resolveFirst!: (r: IncomingResponse | Error) => void;
    const first = new Promise<IncomingResponse | Error>((r) => (resolveFirst = r));
    const u: Upstream = { key, obs, first, latest: undefined, pending: 0, empty: 0, ended: false };
    this.observations.set(key, u);
    this.checkTimer ??= setInterval(() => this.checkObservers(), this.checkEvery).unref();
    void (async () => {
      let n = 0;
      let accepted = false;
      let end: ResponseInit | undefined;
      try {
        for await (const res of obs) {
          const init = toInit(res);
          if (n++ === 0) {
            u.latest = init;
            resolveFirst(res);
            if (res.option(OptionNumber.Observe) === undefined || !res.ok) break; // not observable upstream
            accepted = true;
            continue;
          }
          if (u.ended) break;
          u.latest = init;
          this.fanOut(u, init);
        }
      } catch (e) {
        if (n === 0) resolveFirst(e instanceof Error ? e : new Error(String(e)));
        else end = e instanceof CoapObserveError ? toInit(e.response) : upstreamError(e);
      }
      if (n === 0) resolveFirst(new CoapNetworkError('CLOSED', 'the upstream observation ended'));
      const wasEnded = u.ended;
      this.endObservation(u);
      // the upstream ended it: so do the downstream observers (a non-2.xx notification, RFC 7641 §3.2)
      if (!wasEnded && accepted && !this.closed) this.fanOut(u, end ?? { code: '5.02', payload: 'upstream observation ended' });
    })();
    return u;
  }

  private fanOut(u: Upstream, init: ResponseInit): void {
    if (this.closed || !this.server.listening) return;
    try {
      this.server.resource(u.key).notify(init);
      this.counts.notifications++;
    } catch {
      // not listening any more
    }
  }

  private endObservation(u: Upstream): void {
    u.ended = true;
    if (this.observations.get(u.key) === u) this.observations.delete(u.key);
    if (this.observations.size === 0 && this.checkTimer !== undefined) {
      clearInterval(this.checkTimer);
      this.checkTimer = undefined;
    }
  }

  /** Cancels the upstream observations without downstream observers (two checks in a row). */
  private checkObservers(): void {
    if (this.closed || !this.server.listening) return;
    for (const u of [...this.observations.values()]) {
      if (u.ended || u.pending > 0 || u.latest === undefined) continue;
      if (this.server._observers(u.key) > 0) {
        u.empty = 0;
        continue;
      }
      if (++u.empty < 2 && this.checkTimer !== undefined) continue;
      this.endObservation(u);
      void u.obs.cancel();
    }
  }
}

/**
 * Creates a CoAP proxy (RFC 7252 §5.7, RFC 8323 §8) that forwards between every transport
 * this library speaks. Listen on as many transports as you like.
 *
 * ```ts
 * // a browser on coap+ws:// (and coap+tcp clients) reach a UDP device
 * const proxy = createProxy({ target: 'coap://127.0.0.1:5683' });
 * await proxy.listen({ transport: 'ws', port: 8080, host: '127.0.0.1' });
 * await proxy.listen({ transport: 'tcp', port: 5685, host: '127.0.0.1' });
 * await proxy.close();
 * ```
 * @throws CoapUriError for a bad `target`, TypeError / RangeError for bad options.
 */
export function createProxy(options?: ProxyOptions): CoapProxy {
  return new CoapProxy(options);
}
