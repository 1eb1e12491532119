/**
 * The CoAP/UDP client: `request(url, options)` and {@link Agent}.
 *
 * An Agent owns up to two UDP sockets (one per address family, created on first use and
 * reused) and the C core's client state behind them: Message IDs, unpredictable tokens,
 * CON retransmission, NSTART, response matching and timeouts are the core's. A request is
 * a REQUEST record written into the socket's TX area and flushed with the other records of
 * the same microtask; its response arrives in a batch and resolves the promise.
 */
import { lookup } from 'node:dns/promises';
import { CoapAbortError, CoapEncodeError, CoapError, CoapNetworkError, CoapResetError, CoapTimeoutError } from './errors';
import { IncomingResponse } from './incoming';
import { methodIndex, type Method } from './methods';
import { formatOf, putOption, valueBound, type ContentFormatInit, type OptionInit } from './outgoing';
import { parseUri, uriToOptions, type CoapUri } from './uri';
import { Endpoint, type EndpointListener } from './transport/endpoint';
import {
  E_BAD_OPTION,
  E_FULL,
  E_MESSAGE_TOO_LARGE,
  E_RESET,
  E_STALE,
  E_TIMEOUT,
  EVF_LAST,
  REQ_CON,
  RX_FLAGS,
  TX_CANCEL,
  TX_DROP,
  TX_REQUEST_WORDS,
  parseIPv4,
  parseIPv6,
  zoneScope,
  type Batch,
  type EndpointOptions,
  type EndpointStats,
} from './transport/udp-records';
import type { UdpBackendKind } from './transport/udp-select';

/** Options of one request. */
export interface RequestOptions {
  /** Method (default `'GET'`). */
  readonly method?: Method;
  /** Payload: bytes, or a string sent as UTF-8. */
  readonly payload?: string | Uint8Array;
  /** Send as CON (default true) or NON. */
  readonly confirmable?: boolean;
  /** More options (Uri-* options come from the URL). */
  readonly options?: readonly OptionInit[];
  /** Content-Format (12) of the payload: a number or a registered media type. */
  readonly contentFormat?: ContentFormatInit;
  /** Accept (17): a number or a registered media type. */
  readonly accept?: ContentFormatInit;
  /** Cancels the request: the promise rejects with CoapAbortError and the core forgets the exchange. */
  readonly signal?: AbortSignal;
  /**
   * Overall timeout in ms: rejects with CoapTimeoutError and cancels the exchange.
   * Without it, the RFC's limits apply (MAX_TRANSMIT_SPAN for the ACK of a CON request,
   * then the agent's responseTimeout).
   */
  readonly timeout?: number;
  /** The agent to send through (default {@link globalAgent}). */
  readonly agent?: Agent;
}

/**
 * Agent options: the messaging layer's knobs ({@link EndpointOptions}, e.g. `nstart`) and
 * these. An agent's defaults differ from a server's where a client has no use for the
 * server tables: maxInProgress 16, dedupEntries 1024 (remembered separate responses),
 * responseCacheBytes 0.
 */
export interface AgentOptions extends EndpointOptions {
  /** Driver: `'native'` (addon) or `'wasm'`; default as for the codec (native if it loads). */
  readonly backend?: UdpBackendKind;
  /** Length of the generated tokens in bytes, 0..8 (default 8; tokens are unpredictable). */
  readonly tokenLength?: number;
}

/** A response to a request (see {@link IncomingResponse}). */
export type CoapResponse = IncomingResponse;

interface Target {
  readonly uri: CoapUri;
  /** Uri-Host (names only), Uri-Path, Uri-Query. */
  readonly uriOpts: readonly { number: number; value: Uint8Array }[];
  /** Resolved address for IP literals. */
  readonly family: 0 | 4 | 6;
  readonly ip: Uint8Array;
  readonly scope: number;
}

const OPT_CONTENT_FORMAT = 12;
const OPT_ACCEPT = 17;
const targets = new Map<string, Target>();

function target(url: string | URL): Target {
  const key = typeof url === 'string' ? url : url.href;
  let t = targets.get(key);
  if (t !== undefined) return t;
  const uri = parseUri(key);
  if (uri.scheme !== 'coap') throw new CoapError(`unsupported scheme ${JSON.stringify(uri.scheme)}: this client speaks coap:// (UDP)`);
  const ip = new Uint8Array(16);
  let family: 0 | 4 | 6 = 0;
  let scope = 0;
  if (uri.hostType === 'ipv4' && parseIPv4(uri.host, ip, 0)) family = 4;
  else if (uri.hostType === 'ipv6' && parseIPv6(uri.host, ip)) {
    family = 6;
    if (uri.zone !== undefined) scope = zoneScope(uri.zone);
  }
  t = { uri, uriOpts: uriToOptions(uri), family, ip, scope };
  if (targets.size >= 1024) targets.clear();
  targets.set(key, t);
  return t;
}

/** The error for a core status / rc. */
function failure(rc: number): Error {
  switch (rc) {
    case E_TIMEOUT:
      return new CoapTimeoutError();
    case E_RESET:
      return new CoapResetError();
    case E_BAD_OPTION:
      return new CoapNetworkError('BAD_OPTION', 'BAD_OPTION: the response has an unrecognized critical option');
    case E_FULL:
      return new CoapNetworkError('FULL', 'FULL: too many outstanding requests (maxClientRequests / conSlots)');
    case E_MESSAGE_TOO_LARGE:
      return new CoapEncodeError('MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE: the request exceeds maxMessageSize');
    case E_STALE:
      return new CoapNetworkError('CLOSED', 'the agent was closed');
    default:
      return new CoapEncodeError('INVALID', 'INVALID: the core rejected the request');
  }
}

/** One request in flight. */
class Pending {
  id = 0;
  settled = false;
  aborted = false;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  readonly onId: (id: number, rc: number) => void;

  constructor(
    readonly owner: AgentSocket,
    readonly resolve: (r: IncomingResponse) => void,
    readonly reject: (e: unknown) => void,
    readonly signal: AbortSignal | undefined,
  ) {
    this.onId = (id, rc) => {
      if (rc < 0) this.fail(failure(rc));
      else if (this.settled) owner.ep.small(TX_CANCEL, id);
      else {
        this.id = id;
        owner.add(this);
      }
    };
  }

  private cleanup(): void {
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
  }

  fail(e: unknown): void {
    if (this.settled) return;
    this.cleanup();
    this.reject(e);
  }

  succeed(r: IncomingResponse): void {
    if (this.settled) return;
    this.cleanup();
    this.resolve(r);
  }

  /** Gives up locally (abort, timeout): the core forgets the exchange. */
  cancel(e: unknown): void {
    if (this.settled) return;
    if (this.id !== 0) {
      this.owner.remove(this);
      this.owner.ep.small(TX_CANCEL, this.id);
    }
    this.fail(e);
  }
}

/** Cancels `pending` when `signal` aborts (CoapAbortError) or after `timeout` ms (CoapTimeoutError). */
function arm(pending: Pending, signal: AbortSignal | undefined, timeout: number | undefined): void {
  if (signal !== undefined) {
    pending.onAbort = () => pending.cancel(new CoapAbortError(undefined, { cause: signal.reason }));
    signal.addEventListener('abort', pending.onAbort, { once: true });
  }
  if (timeout !== undefined) {
    if (!(timeout >= 0 && timeout <= 2147483647)) {
      pending.cancel(new RangeError(`timeout must be 0..2147483647 ms, not ${String(timeout)}`));
      return;
    }
    pending.timer = setTimeout(() => pending.cancel(new CoapTimeoutError(`no response within ${timeout} ms`)), timeout);
  }
}

/** One socket of an agent, with the requests outstanding on it. */
class AgentSocket implements EndpointListener {
  readonly ep: Endpoint;
  ready: Promise<void> | undefined;
  bound = false;
  /**
   * Outstanding requests by core id. Keyed by the whole id (slot + generation): with the
   * WASM driver a response record can reach JS after its core slot was reused by a newer
   * request, and must still find its own request.
   */
  private readonly pending = new Map<number, Pending>();

  constructor(family: 4 | 6, opts: AgentOptions) {
    this.ep = new Endpoint(family, opts.backend, opts, this);
  }

  add(p: Pending): void {
    this.pending.set(p.id, p);
    if (this.pending.size === 1) this.ep.driver.setRef(true);
  }

  remove(p: Pending): void {
    if (!this.pending.delete(p.id)) return;
    if (this.pending.size === 0 && !this.ep.closed) this.ep.driver.setRef(false);
  }

  /** Rejects everything outstanding. */
  failAll(e: () => unknown): void {
    for (const p of this.pending.values()) p.fail(e());
    this.pending.clear();
  }

  onRequest(b: Batch, r: number): void {
    // A client socket serves nothing: forget the exchange (duplicates are then ignored).
    this.ep.small(TX_DROP, b.u32[r + 1] as number);
  }

  onResponse(b: Batch, r: number): void {
    const p = this.pending.get(b.u32[r + 1] as number);
    if (p === undefined) return;
    if (((b.u32[r + RX_FLAGS] as number) & EVF_LAST) !== 0) this.remove(p);
    p.succeed(new IncomingResponse(b, r));
  }

  onFailed(id: number, status: number): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.remove(p);
    p.fail(failure(status));
  }

  onRespondFailed(): void {
    /* no responses from a client socket */
  }
}

/**
 * A client: reuses one socket per address family for all its requests, and enforces the
 * RFC's congestion control (NSTART outstanding CON requests per server, default 1; more
 * are held and sent as earlier ones complete). An idle agent does not keep the process
 * alive.
 */
export class Agent {
  private readonly opts: AgentOptions;
  private readonly tokenLength: number;
  private readonly sockets: (AgentSocket | undefined)[] = [undefined, undefined];
  private closed = false;

  constructor(options: AgentOptions = {}) {
    // A client socket serves no requests: small server-side tables by default.
    const maxInProgress = options.maxInProgress ?? 16;
    this.opts = {
      maxInProgress,
      dedupEntries: Math.max(1024, maxInProgress + 1),
      responseCacheBytes: 0,
      ...options,
    };
    const tl = options.tokenLength ?? 8;
    if (!Number.isInteger(tl) || tl < 0 || tl > 8) throw new RangeError(`tokenLength must be 0..8, not ${String(tl)}`);
    this.tokenLength = tl;
  }

  /** The driver in use once a socket exists (`'native'` or `'wasm'`). */
  get backend(): UdpBackendKind | undefined {
    return (this.sockets[0] ?? this.sockets[1])?.ep.kind;
  }

  private socket(family: 4 | 6): AgentSocket {
    const i = family === 4 ? 0 : 1;
    let s = this.sockets[i];
    if (s === undefined) {
      s = new AgentSocket(family, this.opts);
      this.sockets[i] = s;
      const sock = s;
      s.ready = s.ep.driver.bind(family === 4 ? '0.0.0.0' : '::', 0, family === 6 ? 1 : 0).then(() => {
        sock.bound = true;
      });
      s.ready.catch(() => {
        if (this.sockets[i] === sock) this.sockets[i] = undefined;
        void sock.ep.close();
      });
    }
    return s;
  }

  /**
   * Sends a request and resolves with the response.
   * @throws (rejects) CoapTimeoutError, CoapResetError, CoapAbortError, CoapNetworkError,
   *   CoapUriError for a bad URL, CoapEncodeError for a request that cannot be encoded.
   */
  request(url: string | URL, options: RequestOptions = {}): Promise<IncomingResponse> {
    return new Promise<IncomingResponse>((resolve, reject) => {
      this.route(url, options.signal, reject, (s, t, family, ip, scope) =>
        this.send(s, t, family, ip, scope, options, resolve, reject),
      );
    });
  }

  /**
   * Sends a CoAP ping (an empty CON, RFC 7252 §4.3) to the endpoint of `url` (its path is
   * ignored) and resolves with the round-trip time in ms once the peer answers with RST.
   * @throws (rejects) CoapTimeoutError when nothing answers within the retransmission span
   *   (MAX_TRANSMIT_SPAN) or `timeout`, CoapAbortError, CoapNetworkError, CoapUriError.
   */
  ping(url: string | URL, options: { readonly signal?: AbortSignal; readonly timeout?: number } = {}): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.route(url, options.signal, reject, (s, t, family, ip, scope) => {
        if (this.closed) {
          reject(new CoapNetworkError('CLOSED', 'the agent is closed'));
          return;
        }
        const start = performance.now();
        const pending = new Pending(s, () => resolve(performance.now() - start), reject, options.signal);
        s.ep.ping(family, t.uri.port, ip, scope, pending.onId);
        arm(pending, options.signal, options.timeout);
      });
    });
  }

  /**
   * Resolves the URL's host (IP literals directly, names with dns.lookup), makes sure the
   * agent's socket for that family is bound, then calls `go`. Failures go to `reject`.
   */
  private route(
    url: string | URL,
    signal: AbortSignal | undefined,
    reject: (e: unknown) => void,
    go: (s: AgentSocket, t: Target, family: 4 | 6, ip: Uint8Array, scope: number) => void,
  ): void {
    if (this.closed) throw new CoapNetworkError('CLOSED', 'the agent is closed');
    if (signal?.aborted) throw new CoapAbortError(undefined, { cause: signal.reason });
    const t = target(url);
    if (t.family !== 0) {
      const family = t.family;
      const s = this.socket(family);
      if (s.bound) go(s, t, family, t.ip, t.scope);
      else {
        (s.ready as Promise<void>).then(
          () => go(s, t, family, t.ip, t.scope),
          (e: unknown) => reject(e),
        );
      }
      return;
    }
    lookup(t.uri.host).then(
      (a) => {
        const ip = new Uint8Array(16);
        const family = a.family === 6 ? 6 : 4;
        if (family === 4 ? !parseIPv4(a.address, ip, 0) : !parseIPv6(a.address, ip)) {
          reject(new CoapNetworkError('EINVAL', `unusable address ${a.address} for ${t.uri.host}`));
          return;
        }
        const pct = a.address.indexOf('%');
        const scope = pct >= 0 ? zoneScope(a.address.slice(pct + 1)) : 0;
        const s = this.socket(family);
        return (s.ready as Promise<void>).then(() => go(s, t, family, ip, scope));
      },
      (e: NodeJS.ErrnoException) => reject(new CoapNetworkError(e.code ?? 'ENOTFOUND', `cannot resolve ${t.uri.host}: ${e.code ?? e.message}`, { cause: e })),
    ).catch(reject);
  }

  private send(
    s: AgentSocket,
    t: Target,
    family: 4 | 6,
    ip: Uint8Array,
    scope: number,
    o: RequestOptions,
    resolve: (r: IncomingResponse) => void,
    reject: (e: unknown) => void,
  ): void {
    if (this.closed) {
      reject(new CoapNetworkError('CLOSED', 'the agent is closed'));
      return;
    }
    const signal = o.signal;
    if (signal?.aborted) {
      reject(new CoapAbortError(undefined, { cause: signal.reason }));
      return;
    }
    const ep = s.ep;
    const method = o.method ?? 'GET';
    const mi = methodIndex(method);
    if (mi < 0) {
      reject(new TypeError(`unknown method ${JSON.stringify(method)}`));
      return;
    }
    const uriOpts = t.uriOpts;
    const user = o.options;
    const payload = o.payload;
    let n = uriOpts.length;
    let bound = 0;
    for (let i = 0; i < uriOpts.length; i++) bound += (uriOpts[i] as { value: Uint8Array }).value.length;
    let cf = -1;
    let accept = -1;
    if (o.contentFormat !== undefined) {
      cf = formatOf(o.contentFormat);
      if (cf < 0) {
        reject(new CoapEncodeError('INVALID', `INVALID: contentFormat ${JSON.stringify(o.contentFormat)}`));
        return;
      }
      n++;
      bound += 2;
    }
    if (o.accept !== undefined) {
      accept = formatOf(o.accept);
      if (accept < 0) {
        reject(new CoapEncodeError('INVALID', `INVALID: accept ${JSON.stringify(o.accept)}`));
        return;
      }
      n++;
      bound += 2;
    }
    if (user !== undefined) {
      if (!Array.isArray(user)) {
        reject(new CoapEncodeError('INVALID', 'INVALID: options must be an array'));
        return;
      }
      n += user.length;
      for (const u of user) {
        if (u === null || typeof u !== 'object') {
          reject(new CoapEncodeError('INVALID', 'INVALID: an option is not an object'));
          return;
        }
        bound += valueBound(u.value);
      }
    }
    if (payload !== undefined) {
      if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
        reject(new CoapEncodeError('INVALID', 'INVALID: payload must be a string or a Uint8Array'));
        return;
      }
      bound += valueBound(payload);
    }
    if (!ep.reserve(TX_REQUEST_WORDS + 3 * n, bound)) {
      reject(new CoapEncodeError('MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE: the request is too large'));
      return;
    }
    const p = ep.wpos;
    const b0 = ep.bpos;
    let k = 0;
    for (let i = 0; i < uriOpts.length; i++) {
      const u = uriOpts[i] as { number: number; value: Uint8Array };
      ep.opt(p, TX_REQUEST_WORDS, k++, u.number, ep.putBytes(u.value), u.value.length);
    }
    if (cf >= 0) putOption(ep, p, TX_REQUEST_WORDS, k++, OPT_CONTENT_FORMAT, cf);
    if (accept >= 0) putOption(ep, p, TX_REQUEST_WORDS, k++, OPT_ACCEPT, accept);
    if (user !== undefined) {
      for (let i = 0; i < user.length; i++) {
        const u = user[i] as OptionInit;
        if (!putOption(ep, p, TX_REQUEST_WORDS, k++, u.number, u.value)) {
          ep.bpos = b0;
          reject(new CoapEncodeError('INVALID', `INVALID: option ${i} (number ${JSON.stringify(u.number)})`));
          return;
        }
      }
    }
    let poff = ep.bpos;
    let plen = 0;
    if (payload !== undefined) {
      if (typeof payload === 'string') plen = ep.putString(payload);
      else {
        poff = ep.putBytes(payload);
        plen = payload.length;
      }
    }
    const pending = new Pending(s, resolve, reject, signal);
    ep.requestHeader(o.confirmable === false ? 0 : REQ_CON, mi + 1, family, t.uri.port, ip, scope, this.tokenLength, poff, plen, n, pending.onId);
    arm(pending, signal, o.timeout);
  }

  /** Messaging-layer counters of the agent's IPv4 and IPv6 sockets (undefined: not created). */
  stats(): { ipv4: EndpointStats | undefined; ipv6: EndpointStats | undefined } {
    return { ipv4: this.sockets[0]?.ep.driver.stats(), ipv6: this.sockets[1]?.ep.driver.stats() };
  }

  /** Rejects outstanding requests (CoapNetworkError `'CLOSED'`) and closes the sockets. */
  async close(): Promise<void> {
    this.closed = true;
    const all: Promise<void>[] = [];
    for (let i = 0; i < 2; i++) {
      const s = this.sockets[i];
      if (s === undefined) continue;
      this.sockets[i] = undefined;
      s.failAll(() => new CoapNetworkError('CLOSED', 'the agent was closed'));
      all.push(s.ep.close());
    }
    await Promise.all(all);
  }
}

/** The agent `request()` uses by default. */
export const globalAgent: Agent = new Agent();

/**
 * Sends a CoAP request over UDP and resolves with the response.
 *
 * ```ts
 * const res = await request('coap://[::1]/temp?unit=C', { accept: 'application/json', timeout: 5000 });
 * console.log(res.code, res.json());
 * ```
 *
 * @throws (rejects) CoapTimeoutError, CoapResetError (RST), CoapAbortError (signal),
 *   CoapNetworkError (DNS, socket, table full), CoapUriError (bad URL),
 *   CoapEncodeError (request cannot be encoded).
 */
export function request(url: string | URL, options?: RequestOptions): Promise<IncomingResponse> {
  return (options?.agent ?? globalAgent).request(url, options);
}
