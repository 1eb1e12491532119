/**
 * Requests a server receives and responses a client receives, read lazily from the batch
 * records the UDP drivers deliver (native/binding/ep_batch.h): the C core already decoded
 * the message, so nothing is decoded again; strings, option arrays and views are made on
 * first access only.
 */
import { CODE_STRINGS, TYPE_NAMES, type MessageType } from './codes';
import type { CoapOption } from './codec';
import { CoapUriError } from './uri';
import { METHODS, type Method } from './methods';
import type { RouteParams } from './router';
import {
  EVF_CONFIRMABLE,
  RX_CODE,
  RX_FAMILY,
  RX_FLAGS,
  RX_IP,
  RX_MID,
  RX_OPTS,
  RX_OPT_COUNT,
  RX_PAYLOAD_LEN,
  RX_PAYLOAD_OFF,
  RX_PORT,
  RX_SCOPE,
  RX_TOKEN_LEN,
  RX_TOKEN_OFF,
  RX_TYPE,
  formatRecordAddress,
  type Batch,
} from './transport/udp-records';

/** The other end of an exchange. */
export interface RemoteInfo {
  /** IP address (IPv6 in RFC 5952 form; IPv4 clients of a dual-stack socket as `::ffff:a.b.c.d`). */
  readonly address: string;
  /** UDP port. */
  readonly port: number;
  /** `'IPv4'` or `'IPv6'`. */
  readonly family: 'IPv4' | 'IPv6';
}

const EMPTY = new Uint8Array(0);
const EMPTY_PARAMS: RouteParams = Object.freeze({});
const NO_QUERY: readonly string[] = Object.freeze([]);
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
const OPT_URI_PATH = 11;
const OPT_CONTENT_FORMAT = 12;
const OPT_URI_QUERY = 15;
const OPT_ACCEPT = 17;
const OPT_OBSERVE = 6;

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
export function recordUint(b: Batch, r: number, number: number): number | undefined {
  const { u32, u8, base } = b;
  const n = u32[r + RX_OPT_COUNT] as number;
  for (let k = 0, q = r + RX_OPTS; k < n; k++, q += 3) {
    const num = u32[q] as number;
    if (num === number) return uintAt(u8, base + (u32[q + 1] as number), u32[q + 2] as number);
    if (num > number) break;
  }
  return undefined;
}

/** Shared lazy readers over one record. @internal */
abstract class IncomingMessage {
  /** @internal */ protected readonly _b: Batch;
  /** @internal */ protected readonly _r: number;
  private _options: CoapOption[] | undefined;
  private _payload: Uint8Array | undefined;
  private _remote: RemoteInfo | undefined;

  /** @internal */
  constructor(b: Batch, r: number) {
    this._b = b;
    this._r = r;
  }

  /** Options in wire order (ascending numbers); values are views (copy them to keep them past a mutation). */
  get options(): CoapOption[] {
    if (this._options !== undefined) return this._options;
    const { u32, u8, base } = this._b;
    const n = u32[this._r + RX_OPT_COUNT] as number;
    const out = new Array<CoapOption>(n);
    for (let k = 0, q = this._r + RX_OPTS; k < n; k++, q += 3) {
      const len = u32[q + 2] as number;
      const off = base + (u32[q + 1] as number);
      out[k] = { number: u32[q] as number, value: len === 0 ? EMPTY : u8.subarray(off, off + len) };
    }
    return (this._options = out);
  }

  /** Value of the first option `number`, or undefined. */
  option(number: number): Uint8Array | undefined {
    const { u32, u8, base } = this._b;
    const n = u32[this._r + RX_OPT_COUNT] as number;
    for (let k = 0, q = this._r + RX_OPTS; k < n; k++, q += 3) {
      if (u32[q] === number) {
        const off = base + (u32[q + 1] as number);
        return u8.subarray(off, off + (u32[q + 2] as number));
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
    const { u32, u8, base } = this._b;
    const len = u32[this._r + RX_PAYLOAD_LEN] as number;
    const off = base + (u32[this._r + RX_PAYLOAD_OFF] as number);
    return (this._payload = len === 0 ? EMPTY : u8.subarray(off, off + len));
  }

  /** The payload as UTF-8 text. @throws CoapUriError (`invalid-utf8`) if it is not UTF-8. */
  text(): string {
    if (this._payload !== undefined) return text(this._payload, 0, this._payload.length, 'payload');
    const { u32, u8, base } = this._b;
    return text(u8, base + (u32[this._r + RX_PAYLOAD_OFF] as number), u32[this._r + RX_PAYLOAD_LEN] as number, 'payload');
  }

  /** The payload parsed as JSON. @throws SyntaxError if it is not JSON. */
  json(): unknown {
    return JSON.parse(this.text());
  }

  /** Content-Format (12), or undefined. */
  get contentFormat(): number | undefined {
    return this.uintOption(OPT_CONTENT_FORMAT);
  }

  /** Message type. */
  get type(): MessageType {
    return TYPE_NAMES[this._b.u32[this._r + RX_TYPE] as number] as MessageType;
  }

  /** Message ID. */
  get messageId(): number {
    return this._b.u32[this._r + RX_MID] as number;
  }

  /** Token (a view). */
  get token(): Uint8Array {
    const { u32, u8, base } = this._b;
    const len = u32[this._r + RX_TOKEN_LEN] as number;
    const off = base + (u32[this._r + RX_TOKEN_OFF] as number);
    return len === 0 ? EMPTY : u8.subarray(off, off + len);
  }

  /** The peer's address and port. */
  get remote(): RemoteInfo {
    if (this._remote !== undefined) return this._remote;
    const u32 = this._b.u32;
    const r = this._r;
    const family = u32[r + RX_FAMILY] as number;
    const address = formatRecordAddress(
      family,
      u32[r + RX_IP] as number,
      u32[r + RX_IP + 1] as number,
      u32[r + RX_IP + 2] as number,
      u32[r + RX_IP + 3] as number,
      u32[r + RX_SCOPE] as number,
    );
    return (this._remote = { address, port: u32[r + RX_PORT] as number, family: family === 4 ? 'IPv4' : 'IPv6' });
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
  constructor(b: Batch, r: number) {
    super(b, r);
    const u32 = b.u32;
    this._id = u32[r + 1] as number;
    this.method = METHODS[(u32[r + RX_CODE] as number) - 1] as Method;
    this.confirmable = ((u32[r + RX_FLAGS] as number) & EVF_CONFIRMABLE) !== 0;
  }

  /** The code, e.g. `'0.01'`. */
  get code(): string {
    return CODE_STRINGS[this._b.u32[this._r + RX_CODE] as number] as string;
  }

  /**
   * The path from the Uri-Path options, as `pathFromOptions` gives it: `'/a/b'`, `'/'`
   * when there is none; `%` and `/` inside a segment are escaped (`%25`, `%2F`).
   * @throws CoapUriError (`invalid-utf8`) if a segment is not UTF-8.
   */
  get path(): string {
    if (this._path !== undefined) return this._path;
    const { u32, u8, base } = this._b;
    const n = u32[this._r + RX_OPT_COUNT] as number;
    let path: string | undefined;
    for (let k = 0, q = this._r + RX_OPTS; k < n; k++, q += 3) {
      const num = u32[q] as number;
      if (num < OPT_URI_PATH) continue;
      if (num > OPT_URI_PATH) break;
      const seg = segment(u8, base + (u32[q + 1] as number), u32[q + 2] as number);
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
    const { u32, u8, base } = this._b;
    const n = u32[this._r + RX_OPT_COUNT] as number;
    let out: string[] | undefined;
    for (let k = 0, q = this._r + RX_OPTS; k < n; k++, q += 3) {
      const num = u32[q] as number;
      if (num < OPT_URI_QUERY) continue;
      if (num > OPT_URI_QUERY) break;
      (out ??= []).push(text(u8, base + (u32[q + 1] as number), u32[q + 2] as number, 'Uri-Query'));
    }
    return (this._query = out ?? NO_QUERY);
  }

  /** Accept (17), or undefined. */
  get accept(): number | undefined {
    return this.uintOption(OPT_ACCEPT);
  }

  /**
   * Observe (6, RFC 7641): 0 when the client asks to observe the resource (answer it with
   * `observe: true`, or let the route's `obs` attribute decide), 1 when it cancelled its
   * observation (already done by the core: answer it as a plain GET), else undefined.
   */
  get observe(): number | undefined {
    return this.uintOption(OPT_OBSERVE);
  }

  /** @internal the core flagged a registration request (GET/FETCH with Observe 0) */
  _observeAsked = false;
  /** @internal the matched route is observable */
  _observable = false;
}

/** A response received by a client. */
export class IncomingResponse extends IncomingMessage {
  /** @internal */
  constructor(b: Batch, r: number) {
    super(b, r);
  }

  /** The response code, e.g. `'2.05'`. */
  get code(): string {
    return CODE_STRINGS[this._b.u32[this._r + RX_CODE] as number] as string;
  }

  /** Whether the code is a success (2.xx). */
  get ok(): boolean {
    return (this._b.u32[this._r + RX_CODE] as number) >> 5 === 2;
  }

  /** Whether the response came as a separate CON message (the client acknowledged it). */
  get confirmable(): boolean {
    return ((this._b.u32[this._r + RX_FLAGS] as number) & EVF_CONFIRMABLE) !== 0;
  }

  /** Max-Age (14) in seconds, or undefined (then 60 applies, RFC 7252 §5.10.5). */
  get maxAge(): number | undefined {
    return this.uintOption(14);
  }

  /** ETag (4), or undefined. */
  get etag(): Uint8Array | undefined {
    return this.option(4);
  }
}
