/**
 * The CoAP/UDP client: `request(url, options)` and {@link Agent}.
 *
 * An Agent owns up to two UDP sockets (one per address family, created on first use and
 * reused) and the C core's client state behind them: Message IDs, unpredictable tokens,
 * CON retransmission, NSTART, response matching and timeouts are the core's. A request is
 * a REQUEST record written into the socket's TX area and flushed with the other records of
 * the same microtask; its response arrives in a batch and resolves the promise.
 *
 * Bodies of any size move block-wise (RFC 7959): a payload larger than the block size is
 * uploaded with Block1, a response that carries Block2 is completed with further requests.
 * Every protocol decision of such a transfer (the next block, restarts, failures) is the C
 * core's (tc_bwc, native/include/turbocoap_bw.h), fed one received datagram at a time; this
 * file only sends the requests it asks for.
 */
import { BWC_CONFIG_WORDS, type BwcHandle, type ClientTransfers } from './backend/types';
import { CODE_STRINGS } from './codes';
import {
  FAMILY_CONN,
  Status,
  type BackendKind,
  type ConnectingDriver,
  type ConnectionClose,
  type ConnectionOpen,
  type Driver,
  type DriverFactory,
  type DriverListener,
  type ConnectionOptions,
  type EndpointOptions,
  BASE_MAX_MESSAGE_SIZE,
  DEFAULT_STREAM_MAX_MESSAGE_SIZE,
  type EndpointStats,
  type IdCallback,
  type Peer,
  type Received,
  type TlsSettings,
} from './driver/driver';
import {
  CoapAbortError,
  CoapBlockwiseError,
  CoapConnectionError,
  tlsFailure,
  CoapEncodeError,
  CoapNetworkError,
  CoapResetError,
  CoapTimeoutError,
  invalidArgValue,
  notBoolean,
  outOfRange,
  type BlockwiseFailure,
} from './errors';
import { IncomingResponse, recordUint } from './incoming';
import { methodIndexAnyCase, type MethodName } from './methods';
import { parseIPv4, parseIPv6, splitZone } from './net/ip';
import { OptionNumber } from './options';
import { formatOf, payloadOf, putOption, valueBound, type ContentFormatInit, type OptionInit, type PayloadInit } from './outgoing';
import { clientTls, securityKey, type ClientSecurityOptions } from './security';
import { defaultBackend } from './state';
import { checkEndpointOptions, clientTransfers, driverFactory, lookup, randomBytes, schemeError } from './platform';
import { parseUri, uriToOptions, type CoapUri } from './uri';

/** Progress of a block-wise transfer (RFC 7959), for {@link RequestOptions.onProgress}. */
export interface TransferProgress {
  /** `'upload'`: the request body (Block1); `'download'`: the response body (Block2). */
  readonly direction: 'upload' | 'download';
  /** Body bytes the server acknowledged (upload) or received so far (download). */
  readonly bytes: number;
  /** The body's length: the payload's (upload), the server's Size2 (download; undefined while unknown). */
  readonly total?: number;
}

/**
 * Options of one request. For the secured schemes (`coaps+tcp://`, `coaps+ws://`, `coaps://`)
 * the security options ({@link ClientSecurityOptions}: `psk`, `ca`, `cert`, `key`,
 * `rejectUnauthorized`) apply; requests with the same scheme, host, port and security share one
 * connection of their agent.
 */
export interface RequestOptions extends ClientSecurityOptions {
  /** Method (default `'GET'`), in upper or lower case (`'GET'`, `'get'`). */
  readonly method?: MethodName;
  /**
   * Payload: a string sent as UTF-8, or bytes (Uint8Array, ArrayBuffer, any ArrayBufferView).
   * One larger than `blockSize` is uploaded block-wise (RFC 7959 Block1, with Size1 and a
   * Request-Tag), up to 2^30 bytes.
   */
  readonly payload?: PayloadInit;
  /** Send as CON (default true) or NON; every request of a block-wise transfer alike. */
  readonly confirmable?: boolean;
  /**
   * More options (Uri-* options come from the URL). Giving Block1 (27) or Block2 (23) here
   * turns the automatic block-wise transfer off: the request is sent as given and its
   * response resolved as it comes.
   */
  readonly options?: readonly OptionInit[];
  /** Content-Format (12) of the payload: a number or a registered media type. */
  readonly contentFormat?: ContentFormatInit;
  /** Accept (17): a number or a registered media type. */
  readonly accept?: ContentFormatInit;
  /**
   * Cancels the request (every request of a block-wise transfer): the promise rejects with
   * CoapAbortError and the core forgets the exchange; no further block is sent.
   */
  readonly signal?: AbortSignal;
  /**
   * Overall timeout in ms (of the whole transfer when it goes block-wise): rejects with
   * CoapTimeoutError and cancels the exchange. Without it, the RFC's limits apply to each
   * exchange (MAX_TRANSMIT_SPAN for the ACK of a CON request, then the agent's
   * responseTimeout).
   */
  readonly timeout?: number;
  /** The agent to send through (default {@link globalAgent}). */
  readonly agent?: Agent;
  /**
   * Block size of block-wise transfers (RFC 7959): 16, 32, 64, 128, 256, 512 or 1024
   * (default 1024). Uploads use it (or the smaller size the server asks for); downloads the
   * smaller of it and the server's. Given explicitly, a GET or FETCH also asks for it in its
   * first request (early negotiation, RFC 7959 §2.4). A block and the request's options
   * must fit the agent's `maxMessageSize` (default 1280): with a smaller one, pick a smaller size.
   */
  readonly blockSize?: number;
  /**
   * Largest response body accepted, in bytes: default 1 MiB, at most 2^30. A larger body
   * (or a larger Size2 announced up front) rejects with CoapBlockwiseError `'TOO_LARGE'`.
   */
  readonly maxBodySize?: number;
  /**
   * Called as a block-wise transfer progresses: after each block the server acknowledged
   * (upload) or sent (download), `bytes` never decreasing. Not called for a request and
   * response that each fit one message. An exception thrown here cancels the transfer
   * (the promise rejects with it).
   */
  readonly onProgress?: (progress: TransferProgress) => void;
}

/**
 * Agent options: the messaging layer's knobs ({@link EndpointOptions}, e.g. `nstart`) and
 * these. An agent's defaults differ from a server's where a client has no use for the
 * server tables: maxInProgress 16, dedupEntries 1024 (remembered separate responses),
 * responseCacheBytes 0.
 */
export interface AgentOptions extends EndpointOptions, ConnectionOptions {
  /** Driver: `'native'` (addon) or `'wasm'`; default as for the codec (native if it loads). */
  readonly backend?: BackendKind;
  /** Length of the generated tokens in bytes, 0..8 (default 8; tokens are unpredictable). */
  readonly tokenLength?: number;
}

/** A response to a request (see {@link IncomingResponse}). */
export type CoapResponse = IncomingResponse;

interface Target {
  readonly uri: CoapUri;
  /** Uri-Host (names only), Uri-Path, Uri-Query. */
  readonly uriOpts: readonly { number: number; value: Uint8Array }[];
  /** Resolved address for IP literals (and the IPv6 zone, if any). */
  readonly family: 0 | 4 | 6;
  readonly ip: Uint8Array;
  readonly zone: string | undefined;
  /** The route made last for an IP literal (reused while its socket and token length fit). */
  route?: Route;
}

const OPT_BLOCK2 = OptionNumber.Block2;
const OPT_BLOCK1 = OptionNumber.Block1;
/** 4.01 Unauthorized. */
const CODE_UNAUTHORIZED = 0x81;
/** Echo challenges in a row a request answers before it takes the 4.01 as the answer. @internal */
export const MAX_ECHO_RETRIES = 2;
/** The longest Echo value (RFC 9175 §2.2.1: 1..40 bytes). */
const ECHO_MAX = 40;

/**
 * The Echo value of a 4.01 Unauthorized record (RFC 9175 §2.4: the server wants to see that we
 * receive before it sends more), or undefined. A request answering it repeats itself with the
 * value, as libcoap's client does. @internal
 */
export function echoChallenge(b: Received, r: number): Uint8Array | undefined {
  if (b.code(r) !== CODE_UNAUTHORIZED) return undefined;
  const n = b.optionCount(r);
  for (let k = 0; k < n; k++) {
    const num = b.optionNumber(r, k);
    if (num === OptionNumber.Echo) {
      const off = b.optionOffset(r, k);
      const len = b.optionLength(r, k);
      return len > 0 && len <= ECHO_MAX ? b.bytes.slice(off, off + len) : undefined;
    }
    if (num > OptionNumber.Echo) break;
  }
  return undefined;
}

/** extra with an Echo option added (options may come in any order: the core sorts them). */
export function withEcho(extra: readonly ExtraOption[] | undefined, echo: Uint8Array): ExtraOption[] {
  const out = extra !== undefined ? extra.filter((e) => e.number !== OptionNumber.Echo) : [];
  out.push({ number: OptionNumber.Echo, value: echo });
  return out;
}
const CODE_GET = 1;
const CODE_FETCH = 5;

/** tc_bwc_status */
const BWC_NEXT = 1;
const BWC_DONE = 2;
const BWC_RESTART = 3;
const BWC_IGNORED = 4;
/** tc_bwc_result.flags */
const BWCF_SIZE = 1;
const BWCF_BLOCK2 = 4;
/** Words of a transfer's result (BwcHandle.res). */
const R_ERROR = 1;
const R_CODE = 2;
const R_BLOCK = 3;
const R_OFFSET = 4;
const R_LENGTH = 5;
const R_SIZE = 6;
const R_FLAGS = 7;
const R_DONE = 8;
const R_TOTAL = 9;
/** Downloads restarted after the representation changed (tc_bwc_config.max_restarts). */
const MAX_RESTARTS = 3;
/** Answers for blocks not asked for, in a row, before a transfer gives up. */
const MAX_IGNORED = 3;
/** Random bytes of a Request-Tag (RFC 9175). */
const REQUEST_TAG_BYTES = 4;
const MAX_BODY = 2 ** 30;
const DEFAULT_MAX_BODY = 1 << 20;

const targets = new Map<string, Target>();

function target(url: string | URL): Target {
  // anything but a string or URL (null, a number): parseUri's typed CoapUriError
  const key = typeof url === 'string' ? url : url instanceof URL ? url.href : (parseUri(url), '');
  let t = targets.get(key);
  if (t !== undefined) return t;
  const uri = parseUri(key);
  if (driverFactory(uri.scheme) === undefined) throw schemeError(uri.scheme);
  const ip = new Uint8Array(16);
  let family: 0 | 4 | 6 = 0;
  let zone: string | undefined;
  if (uri.hostType === 'ipv4' && parseIPv4(uri.host, ip, 0)) family = 4;
  else if (uri.hostType === 'ipv6' && parseIPv6(uri.host, ip)) {
    family = 6;
    zone = uri.zone;
  }
  t = { uri, uriOpts: uriToOptions(uri), family, ip, zone };
  if (targets.size >= 1024) targets.clear();
  targets.set(key, t);
  return t;
}

/** The error for a core status / rc. @internal */
export function failure(rc: number): Error {
  switch (rc) {
    case Status.TIMEOUT:
      return new CoapTimeoutError();
    case Status.RESET:
      return new CoapResetError();
    case Status.BAD_OPTION:
      return new CoapNetworkError('BAD_OPTION', 'BAD_OPTION: the response has an unrecognized critical option');
    case Status.UNREACHABLE:
      return new CoapNetworkError('ECONNREFUSED', 'ECONNREFUSED: the port is closed (ICMP port unreachable)');
    case Status.FULL:
      return new CoapNetworkError('FULL', 'FULL: too many outstanding requests (maxClientRequests / conSlots)');
    case Status.MESSAGE_TOO_LARGE:
      return new CoapEncodeError('MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE: the request exceeds maxMessageSize');
    case Status.STALE:
      return new CoapNetworkError('CLOSED', 'the agent was closed');
    default:
      if (rc <= -100 && rc >= -111) return tlsFailure(rc); // a DTLS session failed (TC_TLS_E_*)
      return new CoapEncodeError('INVALID', 'INVALID: the core rejected the request');
  }
}

// --------------------------------------------------------- client transfers (tc_bwc)

const transferImpls: { native?: ClientTransfers; wasm?: ClientTransfers } = {};

/**
 * The core's client-transfer functions on the backend of the socket's kind: the process
 * backend when it is of that kind, else that kind loaded on its own. @internal
 */
export function transfers(kind: BackendKind): ClientTransfers {
  let t = transferImpls[kind];
  if (t !== undefined) return t;
  try {
    const be = defaultBackend();
    if (be.kind === kind) t = be;
  } catch {
    /* no provider registered (internal use) */
  }
  t ??= clientTransfers(kind);
  return (transferImpls[kind] = t);
}

// -------------------------------------------------------------------- requests

/** Where requests go: the agent's socket for the family and the resolved address (the peer). @internal */
export interface Route extends Peer {
  readonly s: AgentSocket;
  readonly t: Target;
  readonly tokenLength: number;
  /** A connection whose peer offered BERT (RFC 8323 §6): block-wise transfers may use SZX 7. */
  readonly bert?: boolean;
  /** A connection's Max-Message-Size: the smaller of the peer's and ours (RFC 8323 §5.3.1). */
  readonly mms?: number;
}

const NO_IP = new Uint8Array(16);

/** The route of requests down connection `conn` of `s`'s driver, to `url` (its path and query). @internal */
export function connectionRoute(s: AgentSocket, conn: number, url: string, bert: boolean, mms = BASE_MMS): Route {
  return { s, t: target(url), family: FAMILY_CONN, port: conn, ip: NO_IP, scope: 0, tokenLength: 8, bert, mms };
}

/** RFC 8323 §5.3.1: the Max-Message-Size every connection allows. */
const BASE_MMS = BASE_MAX_MESSAGE_SIZE;
/** Requests an agent sends down one connection at once by default (a server's default slots). */
const DEFAULT_REQUESTS_PER_CONNECTION = 16;
const noop = (): void => {};
/** Bytes of a message besides its payload that BERT sizing leaves room for (1152 - 1024). */
const BERT_HEADROOM = 128;
/** tc_bwc_config.bert_bytes at most. */
const BERT_MAX = 1 << 24;

/**
 * BERT payload bytes per request of a transfer down `route` (RFC 8323 §6), 0 for no BERT:
 * over a connection whose both CSMs allowed it, unless the caller chose a block size, the
 * most multiples of 1024 bytes that fit the connection's Max-Message-Size with room for the
 * header and options (at least 1024: a 1024-byte BERT block is as large as an SZX 6 one).
 * @internal
 */
export function bertBytes(route: Route, spec: RequestSpec): number {
  if (route.bert !== true || spec.early) return 0;
  const room = (route.mms ?? BASE_MMS) - Math.max(BERT_HEADROOM, spec.bound + 5 * spec.count + 64);
  return Math.min(BERT_MAX, Math.max(1024, Math.floor(room / 1024) * 1024));
}

/** The error of requests on a connection that closed. @internal */
export function connectionError(why: ConnectionClose): CoapConnectionError {
  return new CoapConnectionError(why.code ?? 'CLOSED', why.message);
}

/** Whether a scheme runs over connections (RFC 8323). @internal */
export function isStreamScheme(scheme: string): boolean {
  return scheme === 'coap+tcp' || scheme === 'coaps+tcp' || scheme === 'coap+ws' || scheme === 'coaps+ws';
}

/** A validated request, written again for every request of a transfer. @internal */
export interface RequestSpec {
  /** Method code (0.01 ...). */
  readonly code: number;
  /** Sent as CON. */
  readonly confirmable: boolean;
  readonly uriOpts: readonly { number: number; value: Uint8Array }[];
  /** Content-Format / Accept numbers, -1 when absent. */
  readonly cf: number;
  readonly accept: number;
  readonly user: readonly OptionInit[] | undefined;
  /** Options above, and an upper bound of their bytes. */
  readonly count: number;
  readonly bound: number;
  /** The payload (bytes whenever it may need more than one block). */
  readonly payload: Uint8Array | string | undefined;
  /** Block-wise transfers handled here (no Block1 / Block2 among the user's options). */
  readonly auto: boolean;
  /** SZX of the block size, and whether the caller chose it (early negotiation). */
  readonly szx: number;
  readonly early: boolean;
  readonly maxBody: number;
}

/** An extra option of one request of a transfer. @internal */
export interface ExtraOption {
  readonly number: number;
  readonly value: number | Uint8Array;
}

/** Validates request options; returns the spec, or the error to reject with. @internal */
export function prepare(t: Target, o: RequestOptions): RequestSpec | Error {
  const method = o.method ?? 'GET';
  const notBool = notBoolean('confirmable', o.confirmable);
  if (notBool !== undefined) return notBool;
  const mi = methodIndexAnyCase(method);
  if (mi < 0) return invalidArgValue('method', 'a CoAP method name (GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH)', method);
  const uriOpts = t.uriOpts;
  const user = o.options;
  let payload: string | Uint8Array | undefined;
  if (o.payload !== undefined) {
    payload = payloadOf(o.payload);
    if (payload === undefined) return new CoapEncodeError('INVALID', 'INVALID: payload must be a string, a Uint8Array, an ArrayBuffer or an ArrayBufferView');
  }
  let count = uriOpts.length;
  let bound = 0;
  for (let i = 0; i < uriOpts.length; i++) bound += (uriOpts[i] as { value: Uint8Array }).value.length;
  let cf = -1;
  let accept = -1;
  if (o.contentFormat !== undefined) {
    cf = formatOf(o.contentFormat);
    if (cf < 0) return new CoapEncodeError('INVALID', `INVALID: contentFormat ${JSON.stringify(o.contentFormat)}`);
    count++;
    bound += 2;
  }
  if (o.accept !== undefined) {
    accept = formatOf(o.accept);
    if (accept < 0) return new CoapEncodeError('INVALID', `INVALID: accept ${JSON.stringify(o.accept)}`);
    count++;
    bound += 2;
  }
  let auto = true;
  if (user !== undefined) {
    if (!Array.isArray(user)) return new CoapEncodeError('INVALID', 'INVALID: options must be an array');
    count += user.length;
    for (const u of user as readonly OptionInit[]) {
      if (u === null || typeof u !== 'object') return new CoapEncodeError('INVALID', 'INVALID: an option is not an object');
      if (u.number === OPT_BLOCK1 || u.number === OPT_BLOCK2) auto = false;
      bound += valueBound(u.value);
    }
  }
  let szx = 6;
  const early = o.blockSize !== undefined;
  if (early) {
    const bs = o.blockSize as number;
    szx = Math.log2(bs) - 4;
    if (!Number.isInteger(szx) || szx < 0 || szx > 6) return outOfRange('blockSize', '16, 32, 64, 128, 256, 512 or 1024', bs);
  }
  let maxBody = DEFAULT_MAX_BODY;
  if (o.maxBodySize !== undefined) {
    maxBody = o.maxBodySize;
    if (!Number.isInteger(maxBody) || maxBody < 1 || maxBody > MAX_BODY) return outOfRange('maxBodySize', `an integer in 1..${MAX_BODY}`, maxBody);
  }
  if (payload !== undefined) {
    if (typeof payload === 'string') {
      // Surely one block as a string (3 bytes per code unit at most); else measure it.
      if (auto && 3 * payload.length > 16 << szx) payload = utf8.encode(payload);
    }
    if (payload.length > MAX_BODY) return new CoapEncodeError('MESSAGE_TOO_LARGE', `MESSAGE_TOO_LARGE: a payload of ${payload.length} bytes (at most ${MAX_BODY})`);
  }
  return {
    code: mi + 1,
    confirmable: o.confirmable !== false,
    uriOpts,
    cf,
    accept,
    user,
    count,
    bound,
    payload,
    auto,
    szx,
    early,
    maxBody,
  };
}

const utf8 = new TextEncoder();

/**
 * Writes a REQUEST record: the spec's options, `extra`, `payload`; `cb` gets the id after the
 * flush. The core generates the token, unless `token` is given (an observation's, RFC 7641
 * §3.3.1 / §3.6). Returns the error to fail with when it cannot be written. @internal
 */
export function writeRequest(
  route: Route,
  spec: RequestSpec,
  extra: readonly ExtraOption[] | undefined,
  payload: Uint8Array | string | undefined,
  keep: boolean,
  cb: IdCallback,
  token?: Uint8Array,
): Error | undefined {
  const d = route.s.ep;
  let n = spec.count;
  let bound = token === undefined ? spec.bound : spec.bound + token.length;
  if (extra !== undefined) {
    n += extra.length;
    for (let i = 0; i < extra.length; i++) bound += valueBound((extra[i] as ExtraOption).value);
  }
  if (payload !== undefined) bound += valueBound(payload);
  if (!d.beginRequest(n, bound)) return new CoapEncodeError('MESSAGE_TOO_LARGE', 'MESSAGE_TOO_LARGE: the request is too large');
  const m0 = d.mark();
  let k = 0;
  const uriOpts = spec.uriOpts;
  for (let i = 0; i < uriOpts.length; i++) {
    const u = uriOpts[i] as { number: number; value: Uint8Array };
    d.option(k++, u.number, d.putBytes(u.value), u.value.length);
  }
  if (spec.cf >= 0) putOption(d, k++, OptionNumber.ContentFormat, spec.cf);
  if (spec.accept >= 0) putOption(d, k++, OptionNumber.Accept, spec.accept);
  const user = spec.user;
  if (user !== undefined) {
    for (let i = 0; i < user.length; i++) {
      const u = user[i] as OptionInit;
      const bad = putOption(d, k++, u.number, u.value);
      if (bad !== undefined) {
        d.rewind(m0);
        return bad;
      }
    }
  }
  if (extra !== undefined) {
    for (let i = 0; i < extra.length; i++) {
      const e = extra[i] as ExtraOption;
      putOption(d, k++, e.number, e.value);
    }
  }
  let poff = d.mark();
  let plen = 0;
  if (payload !== undefined) {
    if (typeof payload === 'string') plen = d.putString(payload);
    else {
      poff = d.putBytes(payload);
      plen = payload.length;
    }
  }
  d.request(spec.confirmable, keep, spec.code, route, route.tokenLength, poff, plen, n, cb, token);
  return undefined;
}

/** What a socket delivers for one client request id. @internal */
export interface Exchange {
  /** A response record (`last`: the core finished the request; else it is kept, Observe). */
  onRecord(b: Received, r: number, last: boolean): void;
  /** The request failed (timeout, RST, bad option, agent closed); the socket forgot it. */
  onFailure(e: unknown): void;
}

/**
 * One request outstanding on a socket at a time: registered under the id the flush gives its
 * REQUEST / PING record (or cancelled at once if no longer wanted by then), and forgotten on
 * demand. @internal
 */
export abstract class Outstanding implements Exchange {
  /** The outstanding exchange (0: none, or its id not known yet). */
  id = 0;
  /** For REQUEST / PING records: registers the exchange once the flush gave it an id. */
  readonly onId: IdCallback;

  constructor(protected readonly s: AgentSocket) {
    this.onId = (id, rc) => {
      if (rc < 0) this.notSent(rc);
      else if (this.unwanted()) s.ep.cancel(id);
      else {
        this.id = id;
        s.add(id, this);
      }
    };
  }

  /** Whether the request is no longer wanted (its id is then cancelled as soon as known). */
  protected abstract unwanted(): boolean;

  /** The core refused the record (rc < 0). */
  protected abstract notSent(rc: number): void;

  /** Forgets the outstanding exchange: the core cancels it (a late response gets RST). */
  protected forget(): void {
    if (this.id === 0) return;
    this.s.remove(this.id);
    this.s.ep.cancel(this.id);
    this.id = 0;
  }

  abstract onRecord(b: Received, r: number, last: boolean): void;

  abstract onFailure(e: unknown): void;
}

/** Something in flight with one exchange outstanding at a time, a signal and a timeout. */
abstract class Op extends Outstanding {
  settled = false;
  private timer: NodeJS.Timeout | undefined;
  private onAbort: (() => void) | undefined;

  constructor(
    s: AgentSocket,
    private readonly signal: AbortSignal | undefined,
    private readonly rejectFn: (e: unknown) => void,
  ) {
    super(s);
  }

  protected unwanted(): boolean {
    return this.settled;
  }

  protected notSent(rc: number): void {
    this.fail(failure(rc));
  }

  /** Cancels when `signal` aborts (CoapAbortError) or after `timeout` ms (CoapTimeoutError). */
  arm(timeout: number | undefined): void {
    const signal = this.signal;
    if (signal !== undefined) {
      this.onAbort = () => this.cancel(new CoapAbortError(undefined, { cause: signal.reason }));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    if (timeout !== undefined) {
      if (!(timeout >= 0 && timeout <= 2147483647)) {
        this.cancel(outOfRange('timeout', '0..2147483647 ms', timeout));
        return;
      }
      this.timer = setTimeout(() => this.cancel(new CoapTimeoutError(`no response within ${timeout} ms`)), timeout);
    }
  }

  /** Frees what the operation holds (called once, when it settles). */
  protected release(): void {}

  protected settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
    this.release();
    return true;
  }

  fail(e: unknown): void {
    if (this.settle()) this.rejectFn(e);
  }

  /** Gives up locally (abort, timeout): the core forgets the outstanding exchange. */
  cancel(e: unknown): void {
    if (this.settled) return;
    this.forget();
    this.fail(e);
  }

  onFailure(e: unknown): void {
    this.id = 0;
    this.fail(e);
  }
}

/** A CoAP ping. */
class Ping extends Op {
  private readonly start = performance.now();

  constructor(
    s: AgentSocket,
    signal: AbortSignal | undefined,
    private readonly resolve: (rtt: number) => void,
    reject: (e: unknown) => void,
  ) {
    super(s, signal, reject);
  }

  send(route: Route): void {
    this.s.ep.sendPing(route, this.onId);
  }

  onRecord(): void {
    this.id = 0;
    if (this.settle()) this.resolve(performance.now() - this.start);
  }
}

const MODE_UPLOAD = 1;
const MODE_DOWNLOAD = 2;

/** The state of a call's block-wise transfer. */
class Transfer {
  mode = MODE_DOWNLOAD;
  /** Request-Tag of an upload (kept for the Block2 requests after it). */
  tag: Uint8Array | undefined;
  /** The upload's body. */
  body: Uint8Array | undefined;
  /** Progress reported last (bytes), per direction. */
  reported = -1;
  /** Answers for blocks not asked for, in a row. */
  ignored = 0;
  /** The download's first accepted response (block 0): resolved, with the whole body. */
  headB: Received | undefined;
  headR = 0;

  constructor(
    readonly tx: ClientTransfers,
    readonly h: BwcHandle,
  ) {}
}

/**
 * One request() call: one exchange, or the exchanges of a block-wise transfer (each block a
 * request of its own, with a new token). @internal
 */
export class Call extends Op {
  /** The block-wise transfer, once there is one. */
  private x: Transfer | undefined;
  /** The last request sent (to repeat it with an Echo value), and Echo answers in a row. */
  private lastExtra: readonly ExtraOption[] | undefined;
  private lastPayload: Uint8Array | string | undefined;
  private echoes = 0;

  constructor(
    private readonly route: Route,
    private readonly spec: RequestSpec,
    private readonly onProgress: ((p: TransferProgress) => void) | undefined,
    signal: AbortSignal | undefined,
    private readonly resolve: (r: IncomingResponse) => void,
    reject: (e: unknown) => void,
  ) {
    super(route.s, signal, reject);
  }

  /** Sends the (first) request. */
  start(timeout: number | undefined): void {
    this.arm(timeout);
    if (this.settled) return;
    const sp = this.spec;
    const payload = sp.payload;
    const bert = bertBytes(this.route, sp);
    if (sp.auto && payload instanceof Uint8Array && payload.length > (bert > 0 ? bert : 16 << sp.szx)) {
      this.upload(payload);
      return;
    }
    if (sp.auto && sp.early && (sp.code === CODE_GET || sp.code === CODE_FETCH)) {
      // Early negotiation (RFC 7959 §2.4): the first request asks for the block size.
      const x = this.begin(MODE_DOWNLOAD);
      if (x === undefined || !this.getBegin(x)) return;
      this.send([{ number: OPT_BLOCK2, value: x.h.res[R_BLOCK] as number }], payload);
      return;
    }
    this.send(undefined, payload);
  }

  /**
   * Takes record r as the response to this call's request (a notification an observation
   * received): resolves with it, or first completes its body block-wise.
   */
  continueFrom(b: Received, r: number): void {
    this.onRecord(b, r, false);
  }

  private send(extra: readonly ExtraOption[] | undefined, payload: Uint8Array | string | undefined): void {
    if (this.settled) return;
    this.lastExtra = extra;
    this.lastPayload = payload;
    const e = writeRequest(this.route, this.spec, extra, payload, false, this.onId);
    if (e !== undefined) this.fail(e);
  }

  onRecord(b: Received, r: number, last: boolean): void {
    if (last) this.id = 0;
    if (this.settled) return;
    const echo = last ? echoChallenge(b, r) : undefined;
    if (echo !== undefined && this.echoes < MAX_ECHO_RETRIES) {
      // RFC 9175 §2.4: the server first wants proof that we receive: the same request again,
      // with its Echo value
      this.echoes++;
      this.send(withEcho(this.lastExtra, echo), this.lastPayload);
      return;
    }
    this.echoes = 0;
    let x = this.x;
    if (x === undefined) {
      if (!this.spec.auto || recordUint(b, r, OPT_BLOCK2) === undefined) {
        if (this.settle()) this.resolve(new IncomingResponse(b, r));
        return;
      }
      // The body comes block-wise (RFC 7959 §2.4): the core takes it from here.
      x = this.begin(MODE_DOWNLOAD);
      if (x !== undefined && this.getBegin(x)) this.feed(x, b, r);
      return;
    }
    if (x.mode === MODE_UPLOAD) this.step(x, x.tx.bwcPutResponse(x.h, b.message(r)), b, r);
    else this.feed(x, b, r);
  }

  private feed(x: Transfer, b: Received, r: number): void {
    const size2 = recordUint(b, r, OptionNumber.Size2);
    this.step(x, x.tx.bwcGetResponse(x.h, b.message(r), size2 ?? 0), b, r);
  }

  /** Creates the transfer state. */
  private begin(mode: number): Transfer | undefined {
    const tx = transfers(this.s.ep.backend);
    const cfg = new Uint32Array(BWC_CONFIG_WORDS);
    const bert = bertBytes(this.route, this.spec);
    cfg[0] = this.spec.maxBody;
    cfg[1] = bert > 0 ? 7 : this.spec.szx; // SZX 7: BERT blocks up and down
    cfg[2] = MAX_RESTARTS;
    cfg[3] = this.route.bert === true ? 1 : 0; // TC_BWC_BERT: accept SZX 7 blocks
    cfg[4] = bert > 0 ? bert : 1024;
    const h = tx.bwcCreate(cfg);
    if (typeof h === 'number') {
      this.fail(new CoapBlockwiseError('PROTOCOL', mode === MODE_UPLOAD ? 'upload' : 'download', `cannot start a block-wise transfer in the core (${h})`));
      return undefined;
    }
    const x = new Transfer(tx, h);
    x.mode = mode;
    this.x = x;
    return x;
  }

  /** Starts the download of transfer x in the core; false (and failed) if it cannot. */
  private getBegin(x: Transfer): boolean {
    const rc = x.tx.bwcGetBegin(x.h);
    if (rc >= 0) return true;
    this.fail(this.coreError(rc));
    return false;
  }

  private upload(body: Uint8Array): void {
    const x = this.begin(MODE_UPLOAD);
    if (x === undefined) return;
    x.body = body;
    const rc = x.tx.bwcPutBegin(x.h, body.length, randomBytes(REQUEST_TAG_BYTES));
    x.tag = x.tx.bwcRequestTag(x.h);
    this.step(x, rc, undefined, -1);
  }

  /** Acts on the core's decision (rc, with the result in x.h.res) about record r. */
  private step(x: Transfer, rc: number, b: Received | undefined, r: number): void {
    const res = x.h.res;
    if (rc < 0) {
      this.fail(this.coreError(rc));
      return;
    }
    if (x.mode === MODE_DOWNLOAD && b !== undefined) {
      if (rc === BWC_RESTART) x.headB = undefined;
      else if ((rc === BWC_NEXT || rc === BWC_DONE) && x.headB === undefined) {
        x.headB = b;
        x.headR = r;
      }
    }
    switch (rc) {
      case BWC_NEXT:
      case BWC_RESTART:
        x.ignored = 0;
        this.progress(x);
        this.sendBlock(x);
        return;
      case BWC_IGNORED:
        if (++x.ignored > MAX_IGNORED) {
          this.fail(new CoapBlockwiseError('PROTOCOL', direction(x), 'the server kept answering with blocks not asked for', { bytes: res[R_DONE] as number }));
        } else this.sendBlock(x);
        return;
      case BWC_DONE:
        this.progress(x);
        if (this.settled || b === undefined) return;
        if (x.mode === MODE_UPLOAD) {
          if (((res[R_FLAGS] as number) & BWCF_BLOCK2) !== 0) {
            // The response body follows block-wise (RFC 7959 §2.7): same transfer, Block2 now.
            x.mode = MODE_DOWNLOAD;
            x.reported = -1;
            if (this.getBegin(x)) this.feed(x, b, r);
            return;
          }
          if (this.settle()) this.resolve(new IncomingResponse(b, r));
          return;
        }
        {
          // The first response (its options: ETag, Content-Format, Observe...) with the body.
          const resp = x.headB !== undefined ? new IncomingResponse(x.headB, x.headR) : new IncomingResponse(b, r);
          resp._setBody(x.tx.bwcBody(x.h, res[R_LENGTH] as number));
          if (this.settle()) this.resolve(resp);
        }
        return;
      default:
        this.fail(this.failedError(x));
    }
  }

  /** Sends the request the core asked for (x.h.res.block). */
  private sendBlock(x: Transfer): void {
    const res = x.h.res;
    const tag = x.tag;
    if (x.mode === MODE_UPLOAD) {
      const body = x.body as Uint8Array;
      const off = res[R_OFFSET] as number;
      const extra: ExtraOption[] = [{ number: OPT_BLOCK1, value: res[R_BLOCK] as number }];
      // Size1 with the first block: the server may refuse a body too large at once (RFC 7959 §4).
      if (off === 0) extra.push({ number: OptionNumber.Size1, value: body.length });
      if (tag !== undefined && tag.length > 0) extra.push({ number: OptionNumber.RequestTag, value: tag });
      this.send(extra, body.subarray(off, off + (res[R_LENGTH] as number)));
      return;
    }
    const extra: ExtraOption[] = [{ number: OPT_BLOCK2, value: res[R_BLOCK] as number }];
    if (tag !== undefined && tag.length > 0) extra.push({ number: OptionNumber.RequestTag, value: tag });
    // FETCH's payload is part of the request key (RFC 8132): every block repeats it.
    this.send(extra, this.spec.code === CODE_FETCH ? this.spec.payload : undefined);
  }

  /** Reports progress when it grew. */
  private progress(x: Transfer): void {
    const cb = this.onProgress;
    if (cb === undefined) return;
    const res = x.h.res;
    const bytes = res[R_DONE] as number;
    if (bytes <= x.reported) return;
    x.reported = bytes;
    const total = res[R_TOTAL] as number;
    const upload = x.mode === MODE_UPLOAD;
    try {
      cb({ direction: upload ? 'upload' : 'download', bytes, total: upload || total > 0 ? total : undefined });
    } catch (e) {
      this.cancel(e);
    }
  }

  /** The error for a failed transfer (status FAILED). */
  private failedError(x: Transfer): CoapBlockwiseError {
    const res = x.h.res;
    const dir = direction(x);
    const err = (res[R_ERROR] as number) | 0;
    const code = res[R_CODE] as number;
    const info = {
      responseCode: code !== 0 ? CODE_STRINGS[code] : undefined,
      size: ((res[R_FLAGS] as number) & BWCF_SIZE) !== 0 ? (res[R_SIZE] as number) : undefined,
      bytes: res[R_DONE] as number,
    };
    let why: BlockwiseFailure = 'PROTOCOL';
    let msg: string;
    if (err === Status.MESSAGE_TOO_LARGE) {
      why = 'TOO_LARGE';
      msg =
        dir === 'upload'
          ? `the server refused the body (${info.responseCode ?? 'no code'}${info.size !== undefined ? `: it accepts at most ${info.size} bytes` : ''})`
          : `the response body exceeds maxBodySize (${this.spec.maxBody} bytes${info.size !== undefined ? `; Size2 ${info.size}` : ''})`;
    } else if (err === Status.STALE) {
      why = dir === 'upload' ? 'INCOMPLETE' : 'CHANGED';
      msg =
        dir === 'upload'
          ? `the server lost the upload (${info.responseCode ?? '4.08'} Request Entity Incomplete)`
          : `the representation changed more than ${MAX_RESTARTS} times during the download`;
    } else {
      msg = `the server broke RFC 7959 during the ${dir} (a bad Block option or block size)`;
    }
    return new CoapBlockwiseError(why, dir, msg, info);
  }

  /** The error for a negative return of a transfer call. */
  private coreError(rc: number): CoapBlockwiseError {
    const x = this.x;
    const dir = x === undefined ? 'download' : direction(x);
    return new CoapBlockwiseError('PROTOCOL', dir, `the ${dir} failed in the core (${rc})`, { bytes: x !== undefined ? (x.h.res[R_DONE] as number) : 0 });
  }

  protected release(): void {
    const x = this.x;
    if (x === undefined) return;
    this.x = undefined;
    x.tx.bwcFree(x.h);
    x.body = undefined;
    x.headB = undefined;
  }
}

function direction(x: Transfer): 'upload' | 'download' {
  return x.mode === MODE_UPLOAD ? 'upload' : 'download';
}

/** One socket of an agent, with the requests outstanding on it. @internal */
export class AgentSocket implements DriverListener {
  ep!: Driver;
  ready: Promise<void> | undefined;
  bound = false;
  /** Whether outstanding requests (and holds) keep the event loop alive (false: the owner decides). */
  refs = true;
  private holds = 0;
  /**
   * Outstanding requests by core id. Keyed by the whole id (slot + generation): with the
   * WASM driver a response record can reach JS after its core slot was reused by a newer
   * request, and must still find its own request.
   */
  private readonly pending = new Map<number, Exchange>();

  /** Opens its driver with `open`; without, the owner attaches one (ep) itself. */
  constructor(open?: DriverFactory, family: 4 | 6 = 4, opts: AgentOptions = {}) {
    if (open !== undefined) this.ep = open(family, opts.backend, opts, this, 'client');
  }

  add(id: number, x: Exchange): void {
    this.pending.set(id, x);
    if (this.pending.size + this.holds === 1 && this.refs) this.ep.setRef(true);
  }

  remove(id: number): void {
    if (!this.pending.delete(id)) return;
    if (this.pending.size + this.holds === 0 && this.refs && !this.ep.closed) this.ep.setRef(false);
  }

  /** Keeps the event loop alive (a connection being made) until {@link unhold}. */
  hold(): void {
    if (++this.holds + this.pending.size === 1 && this.refs) this.ep.setRef(true);
  }

  unhold(): void {
    if (--this.holds + this.pending.size === 0 && this.refs && !this.ep.closed) this.ep.setRef(false);
  }

  /** Fails the requests `ids` (outstanding on a connection that closed). */
  failIds(ids: readonly number[], e: () => unknown): void {
    for (const id of ids) {
      const x = this.pending.get(id);
      if (x === undefined) continue;
      this.remove(id);
      x.onFailure(e());
    }
  }

  /** Fails everything outstanding. */
  failAll(e: () => unknown): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const x of all) x.onFailure(e());
  }

  onRequest(b: Received, r: number): void {
    const d = this.ep;
    // A client serves nothing: over UDP forget the exchange (duplicates are then ignored); a
    // peer's request down a connection gets 4.04 (it would wait for an answer until it times out).
    if ('framing' in d && d.beginRespond(0, 0)) d.respond(b.id(r), 0x84, d.mark(), 0, 0, 0);
    else d.drop(b.id(r));
  }

  onResponse(b: Received, r: number): void {
    const id = b.id(r);
    const x = this.pending.get(id);
    if (x === undefined) return;
    const last = b.last(r);
    if (last) this.remove(id);
    x.onRecord(b, r, last);
  }

  onFailed(id: number, status: number): void {
    const x = this.pending.get(id);
    if (x === undefined) return;
    this.remove(id);
    x.onFailure(failure(status));
  }

  onRespondFailed(): void {
    /* no responses from a client socket */
  }
}

/** A connection of an agent's pool. */
interface Pooled {
  readonly id: number;
  readonly key: string;
  readonly ready: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
  bert: boolean;
  /** The connection's Max-Message-Size (the smaller of the two CSMs'). */
  mms: number;
  settled: boolean;
  /** Requests (whole transfers) under way down it, and those waiting for one of them to end. */
  active: number;
  readonly waiting: Waiter[];
}

/** A request waiting for its turn on a connection. */
interface Waiter {
  readonly run: (done: () => void) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * The connections of an agent for one scheme (RFC 8323): one driver, one connection per
 * origin (host, port and security), made on first use and again after it closed or was released.
 */
class StreamSide extends AgentSocket {
  readonly byKey = new Map<string, Pooled>();
  readonly byId = new Map<number, Pooled>();

  /** Our Max-Message-Size (advertised in our CSM). */
  private readonly mms: number;
  /** Requests under way down one connection at once (maxRequestsPerConnection). */
  private readonly perConn: number;

  constructor(open: DriverFactory, opts: AgentOptions) {
    super(open, 4, opts);
    this.bound = true;
    this.mms = opts.maxMessageSize ?? DEFAULT_STREAM_MAX_MESSAGE_SIZE;
    this.perConn = opts.maxRequestsPerConnection ?? DEFAULT_REQUESTS_PER_CONNECTION;
  }

  /**
   * Runs `run` once the connection has a free request slot (at most maxRequestsPerConnection
   * requests under way down it: a server refuses more than its slots with 5.03); `run` gets
   * the function to call when its request is over, which lets the next one go.
   */
  admit(id: number, run: (done: () => void) => void, reject: (e: unknown) => void): void {
    const p = this.byId.get(id);
    if (p === undefined) {
      run(() => {});
      return;
    }
    if (p.active < this.perConn) this.start(p, run);
    else p.waiting.push({ run, reject });
  }

  private start(p: Pooled, run: (done: () => void) => void): void {
    p.active++;
    let over = false;
    run(() => {
      if (over) return;
      over = true;
      p.active--;
      const next = p.waiting.shift();
      if (next !== undefined) this.start(p, next.run);
    });
  }

  get driver(): ConnectingDriver {
    return this.ep as ConnectingDriver;
  }

  /** The pooled connection for `key`, made with `connect` when there is none. */
  conn(key: string, connect: () => number): Pooled {
    let p = this.byKey.get(key);
    if (p !== undefined) return p;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    ready.catch(() => {});
    const id = connect();
    p = { id, key, ready, resolve, reject, bert: false, mms: BASE_MMS, settled: false, active: 0, waiting: [] };
    this.byKey.set(key, p);
    this.byId.set(id, p);
    this.hold();
    return p;
  }

  private settle(p: Pooled): boolean {
    if (p.settled) return false;
    p.settled = true;
    this.unhold();
    return true;
  }

  onConnOpen(_c: ConnectionOpen): void {
    /* ready once the peer's CSM came */
  }

  onConnReady(id: number, mms: number, bert: boolean): void {
    const p = this.byId.get(id);
    if (p === undefined) return;
    p.bert = bert;
    p.mms = Math.min(mms, this.mms);
    if (this.settle(p)) p.resolve();
  }

  onConnRelease(id: number): void {
    // no new requests down it: the next one opens another connection
    const p = this.byId.get(id);
    if (p !== undefined && this.byKey.get(p.key) === p) this.byKey.delete(p.key);
  }

  onConnClosed(id: number, why: ConnectionClose, requests: readonly number[]): void {
    const p = this.byId.get(id);
    if (p !== undefined) {
      this.byId.delete(id);
      if (this.byKey.get(p.key) === p) this.byKey.delete(p.key);
      if (this.settle(p)) p.reject(connectionError(why));
      for (const w of p.waiting.splice(0)) w.reject(connectionError(why));
    }
    this.failIds(requests, () => connectionError(why));
  }

  /** Closes the driver; everything outstanding fails with CLOSED. */
  close(): Promise<void> {
    const done = this.ep.close();
    const err = (): CoapConnectionError => new CoapConnectionError('CLOSED', 'CLOSED: the agent was closed');
    for (const p of this.byId.values()) {
      if (this.settle(p)) p.reject(err());
      for (const w of p.waiting.splice(0)) w.reject(err());
    }
    this.byId.clear();
    this.byKey.clear();
    this.failAll(err);
    return done;
  }
}

/**
 * A client: reuses one socket per address family for all its requests, and enforces the
 * RFC's congestion control (NSTART outstanding CON requests per server, default 1; more
 * are held and sent as earlier ones complete). An idle agent does not keep the process
 * alive. {@link Agent.close} releases the sockets; a later request opens new ones.
 */
export class Agent {
  private readonly opts: AgentOptions;
  private readonly tokenLength: number;
  private readonly sockets: (AgentSocket | undefined)[] = [undefined, undefined];
  /** Connections (RFC 8323) by scheme. */
  private readonly streams = new Map<string, StreamSide>();
  /** DTLS sockets (`coaps://`) by family and security. */
  private readonly dtlsSockets = new Map<string, AgentSocket>();
  /** Bumped by close(): requests routed before it (DNS, bind under way) fail with CLOSED. */
  private epoch = 0;

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
    if (!Number.isInteger(tl) || tl < 0 || tl > 8) throw outOfRange('tokenLength', 'an integer in 0..8', tl);
    checkEndpointOptions('coap', options.backend, this.opts, 'client');
    this.tokenLength = tl;
  }

  /** The driver in use once a socket exists (`'native'` or `'wasm'`). */
  get backend(): BackendKind | undefined {
    return (this.sockets[0] ?? this.sockets[1] ?? this.streams.values().next().value)?.ep.backend;
  }

  private streamSide(scheme: string): StreamSide {
    let s = this.streams.get(scheme);
    if (s === undefined) {
      s = new StreamSide(driverFactory(scheme) as DriverFactory, this.opts);
      this.streams.set(scheme, s);
    }
    return s;
  }

  /** Routes a request of a stream scheme: down the pooled connection to the origin (made if needed). */
  private streamRoute(t: Target, sec: ClientSecurityOptions | undefined, addr: string, isName: boolean, go: (route: Route) => void, reject: (e: unknown) => void): void {
    const uri = t.uri;
    let tls;
    try {
      tls = uri.secure ? clientTls(sec ?? {}, isName ? uri.host : undefined) : undefined;
    } catch (e) {
      reject(e);
      return;
    }
    const side = this.streamSide(uri.scheme);
    const key = `${uri.scheme}|${addr}|${uri.port}|${securityKey(tls)}`;
    const p = side.conn(key, () => side.driver.connect({ host: addr, port: uri.port, security: tls, url: uri.wsUrl }));
    const tokenLength = this.tokenLength;
    p.ready.then(
      () => go({ s: side, t, family: FAMILY_CONN, port: p.id, ip: NO_IP, scope: 0, tokenLength, bert: p.bert, mms: p.mms }),
      reject,
    );
  }

  /** The socket for a family: plain UDP, or with `dtls` a DTLS one (`coaps://`) per security. */
  private socket(family: 4 | 6, dtls?: TlsSettings): AgentSocket {
    const i = family === 4 ? 0 : 1;
    const key = dtls === undefined ? '' : `${family}|${securityKey(dtls)}`;
    let s = dtls === undefined ? this.sockets[i] : this.dtlsSockets.get(key);
    if (s === undefined) {
      const open = driverFactory(dtls === undefined ? 'coap' : 'coaps');
      if (open === undefined) throw schemeError('coaps');
      s = new AgentSocket(open, family, dtls === undefined ? this.opts : { ...this.opts, security: dtls } as AgentOptions);
      if (dtls === undefined) this.sockets[i] = s;
      else this.dtlsSockets.set(key, s);
      const sock = s;
      s.ready = s.ep.bind(family === 4 ? '0.0.0.0' : '::', 0, { ipv6Only: family === 6 }).then(() => {
        sock.bound = true;
      });
      s.ready.catch(() => {
        if (this.sockets[i] === sock) this.sockets[i] = undefined;
        if (this.dtlsSockets.get(key) === sock) this.dtlsSockets.delete(key);
        void sock.ep.close();
      });
    }
    return s;
  }

  /**
   * Sends a request and resolves with the response, moving bodies of any size block-wise
   * (RFC 7959) as needed.
   * @throws (rejects) CoapTimeoutError, CoapResetError, CoapAbortError, CoapNetworkError,
   *   CoapUriError for a bad URL, CoapEncodeError for a request that cannot be encoded,
   *   CoapBlockwiseError when a block-wise transfer fails, RangeError for bad options.
   */
  request(url: string | URL, options: RequestOptions = {}): Promise<IncomingResponse> {
    return new Promise<IncomingResponse>((resolve, reject) => {
      const run = (route: Route, done: () => void): void => {
        if (options.signal?.aborted) {
          done();
          reject(new CoapAbortError(undefined, { cause: options.signal.reason }));
          return;
        }
        const spec = prepare(route.t, options);
        if (spec instanceof Error) {
          done();
          reject(spec);
          return;
        }
        const ok = done === noop ? resolve : (r: IncomingResponse): void => {
          done();
          resolve(r);
        };
        const fail = done === noop ? reject : (e: unknown): void => {
          done();
          reject(e);
        };
        new Call(route, spec, options.onProgress, options.signal, ok, fail).start(options.timeout);
      };
      this._route(url, options.signal, reject, (route) => {
        // down a connection: at most maxRequestsPerConnection at once, the others wait their turn
        if (route.s instanceof StreamSide) route.s.admit(route.port, (done) => run(route, done), reject);
        else run(route, noop);
      }, options);
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
      this._route(url, options.signal, reject, (route) => {
        const ping = new Ping(route.s, options.signal, resolve, reject);
        ping.send(route);
        ping.arm(options.timeout);
      });
    });
  }

  /**
   * Resolves the URL's host (IP literals directly, names with dns.lookup), makes sure the
   * agent's socket for that family is bound, then calls `go`. Failures go to `reject`.
   * @internal
   */
  _route(url: string | URL, signal: AbortSignal | undefined, reject: (e: unknown) => void, go: (route: Route) => void, sec?: ClientSecurityOptions): void {
    if (signal?.aborted) throw new CoapAbortError(undefined, { cause: signal.reason });
    const t = target(url);
    const tokenLength = this.tokenLength;
    const epoch = this.epoch;
    // A close() between here and `go` fails the request (it was under way when the agent closed).
    const goIfOpen = (route: Route): void => {
      if (this.epoch !== epoch) reject(new CoapNetworkError('CLOSED', 'the agent was closed'));
      else go(route);
    };
    if (isStreamScheme(t.uri.scheme)) {
      if (t.family !== 0) {
        this.streamRoute(t, sec, t.uri.host, false, goIfOpen, reject);
        return;
      }
      lookup(t.uri.host).then(
        (a) => {
          if (this.epoch !== epoch) reject(new CoapNetworkError('CLOSED', 'the agent was closed'));
          else this.streamRoute(t, sec, a.address, true, goIfOpen, reject);
        },
        (e: NodeJS.ErrnoException) => reject(new CoapNetworkError(e.code ?? 'ENOTFOUND', `cannot resolve ${t.uri.host}: ${e.code ?? e.message}`, { cause: e })),
      );
      return;
    }
    let dtls: TlsSettings | undefined;
    if (t.uri.scheme === 'coaps') dtls = clientTls(sec ?? {}, t.family === 0 ? t.uri.host : undefined);
    if (t.family !== 0) {
      const family = t.family;
      const s = this.socket(family, dtls);
      let route = t.route;
      if (route === undefined || route.s !== s || route.tokenLength !== tokenLength) {
        const scope = t.zone === undefined ? 0 : s.ep.zoneScope(t.zone);
        route = { s, t, family, port: t.uri.port, ip: t.ip, scope, tokenLength };
        t.route = route;
      }
      if (s.bound) go(route);
      else {
        const r = route;
        (s.ready as Promise<void>).then(
          () => goIfOpen(r),
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
        if (this.epoch !== epoch) {
          reject(new CoapNetworkError('CLOSED', 'the agent was closed'));
          return;
        }
        const s = this.socket(family, dtls);
        const zone = splitZone(a.address)[1];
        const scope = zone === undefined ? 0 : s.ep.zoneScope(zone);
        return (s.ready as Promise<void>).then(() => goIfOpen({ s, t, family, port: t.uri.port, ip, scope, tokenLength }));
      },
      (e: NodeJS.ErrnoException) => reject(new CoapNetworkError(e.code ?? 'ENOTFOUND', `cannot resolve ${t.uri.host}: ${e.code ?? e.message}`, { cause: e })),
    ).catch(reject);
  }

  /** Messaging-layer counters of the agent's IPv4 and IPv6 sockets (undefined: not created). */
  stats(): { ipv4: EndpointStats | undefined; ipv6: EndpointStats | undefined } {
    return { ipv4: this.sockets[0]?.ep.stats(), ipv6: this.sockets[1]?.ep.stats() };
  }

  /**
   * Rejects outstanding requests (CoapNetworkError `'CLOSED'`) and closes the sockets. The
   * agent stays usable: a later request opens new sockets (so `globalAgent.close()` at the
   * end of a script, or between tests, breaks nothing).
   */
  async close(): Promise<void> {
    this.epoch++;
    const all: Promise<void>[] = [];
    for (let i = 0; i < 2; i++) {
      const s = this.sockets[i];
      if (s === undefined) continue;
      this.sockets[i] = undefined;
      // close() first: it flushes the records written this turn, so their requests get
      // their ids (and are outstanding) before failAll rejects everything outstanding.
      all.push(s.ep.close());
      s.failAll(() => new CoapNetworkError('CLOSED', 'the agent was closed'));
    }
    for (const s of this.dtlsSockets.values()) {
      all.push(s.ep.close());
      s.failAll(() => new CoapNetworkError('CLOSED', 'the agent was closed'));
    }
    this.dtlsSockets.clear();
    for (const s of this.streams.values()) all.push(s.close());
    this.streams.clear();
    await Promise.all(all);
  }
}

/** The agent `request()` uses by default. */
export const globalAgent: Agent = new Agent();

/**
 * Sends a CoAP request over UDP and resolves with the response. Bodies of any size move
 * block-wise (RFC 7959): see {@link RequestOptions.blockSize}, `maxBodySize`, `onProgress`.
 *
 * ```ts
 * const res = await request('coap://[::1]/temp?unit=C', { accept: 'application/json', timeout: 5000 });
 * console.log(res.code, res.json());
 * ```
 *
 * @throws (rejects) CoapTimeoutError, CoapResetError (RST), CoapAbortError (signal),
 *   CoapNetworkError (DNS, socket, table full), CoapUriError (bad URL),
 *   CoapEncodeError (request cannot be encoded), CoapBlockwiseError (a block-wise transfer
 *   failed: 4.13, 4.08, a body over maxBodySize, a representation that kept changing).
 */
export function request(url: string | URL, options?: RequestOptions): Promise<IncomingResponse> {
  return (options?.agent ?? globalAgent).request(url, options);
}
