/**
 * Requests a server receives and responses a client receives, read lazily from the batch a
 * driver delivers ({@link Received}, ts/driver/driver.ts): the C core already decoded the
 * message, so nothing is decoded again; strings, option arrays and views are made on first
 * access only.
 */
import { CODE_STRINGS, TYPE_NAMES, type MessageType } from './codes';
import type { CoapOption } from './codec';
import type { Received, RemoteInfo } from './driver/driver';
import { CoapError } from './errors';
import { CoapUriError } from './uri';
import { METHODS, type Method } from './methods';
import { OptionNumber } from './options';

export type { RemoteInfo };

/** Route parameters: name → decoded segment (`/d/:id` matched by `/d/7` gives `{ id: '7' }`). */
export type RouteParams = Readonly<Record<string, string>>;

const EMPTY = new Uint8Array(0);
const EMPTY_PARAMS: RouteParams = Object.freeze({});
const NO_QUERY: readonly string[] = Object.freeze([]);
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
const OPT_URI_PATH = OptionNumber.UriPath;
const OPT_URI_QUERY = OptionNumber.UriQuery;

/** UTF-8 text of u8[off, off+len); throws CoapUriError for invalid UTF-8 (what names the option). */
function text(u8: Uint8Array, off: number, len: number, what: string): string {
  if (len <= 32) {
    let s = '';
    let i = 0;
    for (; i < len; i++) {
      const c = u8[off + i] as number;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === len) return s;
  }
  try {
    return fatalUtf8.decode(u8.subarray(off, off + len));
  } catch {
    throw new CoapUriError('invalid-utf8', `<${what} option>`, `${what} value is not UTF-8`);
  }
}

/** A Uri-Path segment as pathFromOptions writes it: text with `%` and `/` escaped. */
function segment(u8: Uint8Array, off: number, len: number): string {
  let plain = true;
  for (let i = 0; i < len; i++) {
    const c = u8[off + i] as number;
    if (c === 0x25 || c === 0x2f || c >= 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) {
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(u8[off + i] as number);
    return s;
  }
  return text(u8, off, len, 'Uri-Path').replace(/%/g, '%25').replace(/\//g, '%2F');
}

/** Big-endian unsigned value of an option (0..4 bytes; longer: the low 4). */
function uintAt(u8: Uint8Array, off: number, len: number): number {
  let v = 0;
  for (let i = 0; i < len; i++) v = v * 256 + (u8[off + i] as number);
  return v;
}

/**
 * Unsigned value of the first option `number` of record r of a batch, or undefined
 * (allocation-free; options are in ascending order). @internal
 */
export function recordUint(b: Received, r: number, number: number): number | undefined {
  const n = b.optionCount(r);
  for (let k = 0; k < n; k++) {
    const num = b.optionNumber(r, k);
    if (num === number) return uintAt(b.bytes, b.optionOffset(r, k), b.optionLength(r, k));
    if (num > number) break;
  }
  return undefined;
}

/** Whether the payload of `m` is JSON; its value, or a CoapRequestError / SyntaxError. */
function parseJson(m: IncomingMessage, request: boolean): unknown {
  const s = m.text();
  try {
    return JSON.parse(s);
  } catch (e) {
    if (!request) throw e;
    throw new CoapRequestError('BAD_JSON', `the payload is not JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Thrown by {@link IncomingRequest}'s readers for a request the client got wrong; a handler
 * that lets it escape answers 4.00 Bad Request (with this message as the diagnostic payload):
 *  - `'BAD_JSON'`: `req.json()` on a payload that is not JSON;
 *  - `'INVALID_UTF8'` comes as {@link CoapUriError} (`text()`, `path`, `query`), also 4.00.
 */
export class CoapRequestError extends CoapError {
  declare readonly code: 'BAD_JSON';
  constructor(code: 'BAD_JSON', message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, code, options);
  }
}

/** Shared lazy readers over one record. @internal */
abstract class IncomingMessage {
  /** @internal */ protected readonly _b: Received;
  /** @internal */ protected readonly _r: number;
  private _options: CoapOption[] | undefined;
  private _payload: Uint8Array | undefined;
  private _remote: RemoteInfo | undefined;

  /** @internal */
  constructor(b: Received, r: number) {
    this._b = b;
    this._r = r;
  }

  /** Options in wire order (ascending numbers); values are views (copy them to keep them past a mutation). */
  get options(): CoapOption[] {
    if (this._options !== undefined) return this._options;
    const b = this._b;
    const r = this._r;
    const u8 = b.bytes;
    const n = b.optionCount(r);
    const out = new Array<CoapOption>(n);
    for (let k = 0; k < n; k++) {
      const len = b.optionLength(r, k);
      const off = b.optionOffset(r, k);
      out[k] = { number: b.optionNumber(r, k), value: len === 0 ? EMPTY : u8.subarray(off, off + len) };
    }
    return (this._options = out);
  }

  /** Value of the first option `number`, or undefined. */
  option(number: number): Uint8Array | undefined {
    const b = this._b;
    const r = this._r;
    const n = b.optionCount(r);
    for (let k = 0; k < n; k++) {
      if (b.optionNumber(r, k) === number) {
        const off = b.optionOffset(r, k);
        return b.bytes.subarray(off, off + b.optionLength(r, k));
      }
    }
    return undefined;
  }

  /** Unsigned value of the first option `number`, or undefined (allocation-free). @internal */
  protected uintOption(number: number): number | undefined {
    return recordUint(this._b, this._r, number);
  }

  /**
   * Replaces the payload with a body assembled from several messages (block-wise transfer,
   * RFC 7959): `payload`, `text()` and `json()` then read it. @internal
   */
  _setBody(body: Uint8Array): void {
    this._payload = body;
  }

  /**
   * The payload (empty when there is none): a view of the received datagram, or the whole
   * body when it came block-wise (RFC 7959).
   */
  get payload(): Uint8Array {
    if (this._payload !== undefined) return this._payload;
    const b = this._b;
    const len = b.payloadLength(this._r);
    const off = b.payloadOffset(this._r);
    return (this._payload = len === 0 ? EMPTY : b.bytes.subarray(off, off + len));
  }

  /** The payload as UTF-8 text. @throws CoapUriError (`INVALID_UTF8`) if it is not UTF-8. */
  text(): string {
    if (this._payload !== undefined) return text(this._payload, 0, this._payload.length, 'payload');
    const b = this._b;
    return text(b.bytes, b.payloadOffset(this._r), b.payloadLength(this._r), 'payload');
  }

  /** The payload parsed as JSON. */
  abstract json(): unknown;

  /** Content-Format (12), or undefined. */
  get contentFormat(): number | undefined {
    return this.uintOption(OptionNumber.ContentFormat);
  }

  /** Message type. */
  get type(): MessageType {
    return TYPE_NAMES[this._b.type(this._r)] as MessageType;
  }

  /** Message ID. */
  get messageId(): number {
    return this._b.messageId(this._r);
  }

  /** Token (a view). */
  get token(): Uint8Array {
    const b = this._b;
    const len = b.tokenLength(this._r);
    const off = b.tokenOffset(this._r);
    return len === 0 ? EMPTY : b.bytes.subarray(off, off + len);
  }

  /** The peer's address and port. */
  get remote(): RemoteInfo {
    return (this._remote ??= this._b.remote(this._r));
  }
}

/**
 * A request received by a server. Everything is read lazily from the datagram the C core
 * decoded; views (`payload`, option values) stay valid for as long as you keep them.
 */
export class IncomingRequest extends IncomingMessage {
  /** The method. */
  readonly method: Method;
  /** Whether the request came as a CON message. */
  readonly confirmable: boolean;
  /** Route parameters when the server routes with a Router (else empty). */
  params: RouteParams = EMPTY_PARAMS;
  /** @internal exchange id */
  readonly _id: number;
  private _path: string | undefined;
  private _query: readonly string[] | undefined;

  /** @internal */
  constructor(b: Received, r: number) {
    super(b, r);
    this._id = b.id(r);
    this.method = METHODS[b.code(r) - 1] as Method;
    this.confirmable = b.confirmable(r);
  }

  /** The code, e.g. `'0.01'`. */
  get code(): string {
    return CODE_STRINGS[this._b.code(this._r)] as string;
  }

  /**
   * The payload parsed as JSON.
   * @throws CoapRequestError (`BAD_JSON`) if it is not JSON, CoapUriError (`INVALID_UTF8`) if
   *   it is not UTF-8: escaping a handler, either is answered 4.00 Bad Request.
   */
  json(): unknown {
    return parseJson(this, true);
  }

  /**
   * The path from the Uri-Path options, as `pathFromOptions` gives it: `'/a/b'`, `'/'`
   * when there is none; `%` and `/` inside a segment are escaped (`%25`, `%2F`).
   * @throws CoapUriError (`invalid-utf8`) if a segment is not UTF-8.
   */
  get path(): string {
    if (this._path !== undefined) return this._path;
    const b = this._b;
    const r = this._r;
    const n = b.optionCount(r);
    let path: string | undefined;
    for (let k = 0; k < n; k++) {
      const num = b.optionNumber(r, k);
      if (num < OPT_URI_PATH) continue;
      if (num > OPT_URI_PATH) break;
      const seg = segment(b.bytes, b.optionOffset(r, k), b.optionLength(r, k));
      path = path === undefined ? `/${seg}` : `${path}/${seg}`;
    }
    return (this._path = path ?? '/');
  }

  /**
   * The Uri-Query values, decoded as UTF-8, in order.
   * @throws CoapUriError (`invalid-utf8`) if a value is not UTF-8.
   */
  get query(): readonly string[] {
    if (this._query !== undefined) return this._query;
    const b = this._b;
    const r = this._r;
    const n = b.optionCount(r);
    let out: string[] | undefined;
    for (let k = 0; k < n; k++) {
      const num = b.optionNumber(r, k);
      if (num < OPT_URI_QUERY) continue;
      if (num > OPT_URI_QUERY) break;
      (out ??= []).push(text(b.bytes, b.optionOffset(r, k), b.optionLength(r, k), 'Uri-Query'));
    }
    return (this._query = out ?? NO_QUERY);
  }

  /** Accept (17), or undefined. */
  get accept(): number | undefined {
    return this.uintOption(OptionNumber.Accept);
  }

  /**
   * Observe (6, RFC 7641): 0 when the client asks to observe the resource (answer it with
   * `observe: true`, or let the route's `obs` attribute decide), 1 when it cancelled its
   * observation (already done by the core: answer it as a plain GET), else undefined.
   */
  get observe(): number | undefined {
    return this.uintOption(OptionNumber.Observe);
  }

  /** @internal the core flagged a registration request (GET/FETCH with Observe 0) */
  _observeAsked = false;
  /** @internal the resource an observer registered by the response joins (default: the path; ts/proxy.ts) */
  _observeKey: string | undefined = undefined;
  /** @internal the matched route is observable */
  _observable = false;
}

/** A response received by a client. */
export class IncomingResponse extends IncomingMessage {
  /** @internal */
  constructor(b: Received, r: number) {
    super(b, r);
  }

  /** The response code, e.g. `'2.05'`. */
  get code(): string {
    return CODE_STRINGS[this._b.code(this._r)] as string;
  }

  /** Whether the code is a success (2.xx). */
  get ok(): boolean {
    return this._b.code(this._r) >> 5 === 2;
  }

  /** Whether the response came as a separate CON message (the client acknowledged it). */
  get confirmable(): boolean {
    return this._b.confirmable(this._r);
  }

  /** The payload parsed as JSON. @throws SyntaxError if it is not JSON. */
  json(): unknown {
    return parseJson(this, false);
  }

  /** Max-Age (14) in seconds, or undefined (then 60 applies, RFC 7252 §5.10.5). */
  get maxAge(): number | undefined {
    return this.uintOption(OptionNumber.MaxAge);
  }

  /** ETag (4), or undefined. */
  get etag(): Uint8Array | undefined {
    return this.option(OptionNumber.ETag);
  }

  /**
   * Observe (6, RFC 7641): in a notification, its sequence number (0..2^24-1; the client
   * already dropped stale ones, §3.4); undefined in a response that is not a notification
   * (then the observation ends with it).
   */
  get observe(): number | undefined {
    return this.uintOption(OptionNumber.Observe);
  }
}
