/**
 * Writing message options and payloads through a {@link Driver}: ResponseInit for servers,
 * request options for clients. Values go straight into the driver's area (strings with an
 * ASCII loop or TextEncoder.encodeInto), nothing is encoded twice; every option is checked
 * against the option registry's lengths before it is written.
 *
 * @internal
 */
import { codeNumberOrInvalid } from './codes';
import { contentFormatNumber } from './content-format';
import type { Driver } from './driver/driver';
import { CoapOptionError } from './errors';
import { optionLengths } from './options';
import type { ResponseCode } from './methods';
import { locationToOptions } from './uri';

/**
 * Bytes to send: a Uint8Array, an ArrayBuffer, or any other ArrayBufferView (a Buffer,
 * a DataView, a typed array: its bytes as they are in memory).
 */
export type BytesInit = Uint8Array | ArrayBuffer | ArrayBufferView;

/** A payload: bytes ({@link BytesInit}), or a string sent as UTF-8. */
export type PayloadInit = string | BytesInit;

/** An option to send: its number and value (bytes, UTF-8 text, or an unsigned integer). */
export interface OptionInit {
  /** Option number 0..65535. */
  readonly number: number;
  /** Value: bytes, a string (sent as UTF-8) or an unsigned integer (minimal big-endian). */
  readonly value: BytesInit | string | number;
}

/** A Content-Format number, or a media type name known to the registry. */
export type ContentFormatInit = number | string;

/** What a server handler answers with. */
export interface ResponseInit {
  /**
   * Response code as `'c.dd'`, class 2, 4 or 5 (e.g. `'2.05'`, `'4.04'`). Numbers are refused
   * (CoapResponseError `INVALID_CODE`, the client gets 5.00): `404` is not a CoAP code; for
   * a raw CoAP code byte write `codeToString(0x84)` (`'4.04'`).
   */
  readonly code: ResponseCode | (string & {});
  /** Payload: a string (sent as UTF-8), or bytes (Uint8Array, ArrayBuffer, any ArrayBufferView). */
  readonly payload?: PayloadInit;
  /** Content-Format (12): a number or a registered media type (`'application/json'`). */
  readonly contentFormat?: ContentFormatInit;
  /** Max-Age (14) in seconds, 0..2^32-1. */
  readonly maxAge?: number;
  /** ETag (4), 1..8 bytes (a string is sent as UTF-8). */
  readonly etag?: BytesInit | string;
  /** Location-Path / Location-Query from a relative reference such as `'/things/42?v=1'`. */
  readonly location?: string;
  /** More options, in any order (sent sorted, repeated options keep their order). */
  readonly options?: readonly OptionInit[];
  /**
   * Observe (RFC 7641): when the request asked to observe (`req.observe` is 0) and the code
   * is 2.xx, `true` registers the client for notifications of the request's path
   * (`server.resource(path)`), `false` declines. Default: `true` for routes whose attributes
   * carry `obs` (`router.get('/t', h, { obs: true })`), else `false`.
   */
  readonly observe?: boolean;
}

/** The bytes of a BytesInit (a view, no copy), or undefined if `v` is not bytes. */
function bytesOf(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/** A payload as a string or bytes, or undefined if it is neither. */
export function payloadOf(v: unknown): string | Uint8Array | undefined {
  return typeof v === 'string' ? v : bytesOf(v);
}

/**
 * Code number of a response code: `'c.dd'` (e.g. `'4.04'`), or the raw CoAP code byte as a
 * number (class << 5 | detail, e.g. `0x84` for 4.04). Numbers in 100..599 (HTTP status
 * codes, e.g. 404) are refused: -1.
 */
export function codeOf(code: string | number): number {
  if (typeof code === 'number') {
    return Number.isInteger(code) && code >= 0 && code <= 255 && !(code >= 100 && code <= 599) ? code : -1;
  }
  return codeNumberOrInvalid(code);
}

/** A Content-Format / Accept value as a number, or -1 if invalid. */
export function formatOf(f: ContentFormatInit): number {
  if (typeof f === 'number') return Number.isInteger(f) && f >= 0 && f <= 65535 ? f : -1;
  if (typeof f === 'string') return contentFormatNumber(f) ?? -1;
  return -1;
}

/** Upper bound of the bytes a value takes in the area. */
export function valueBound(v: unknown): number {
  if (typeof v === 'string') return 3 * v.length;
  if (typeof v === 'number') return 4;
  if (v instanceof Uint8Array) return v.length;
  if (v instanceof ArrayBuffer) return v.byteLength;
  if (ArrayBuffer.isView(v)) return v.byteLength;
  return 0;
}

function describeLength(number: number, len: number, lo: number, hi: number): CoapOptionError {
  const range = lo === hi ? `${lo}` : `${lo}..${hi}`;
  return new CoapOptionError(number, `option ${number}: a value of ${len} bytes (the registry allows ${range})`);
}

/** Whether `len` is a valid value length for option `number` (registered options only). */
function checkLength(number: number, len: number): CoapOptionError | undefined {
  const b = optionLengths(number);
  if (b < 0) return undefined;
  const lo = b >>> 16;
  const hi = b & 0xffff;
  return len < lo || len > hi ? describeLength(number, len, lo, hi) : undefined;
}

/**
 * Writes option k (number, value v) of the message begun on `d`: undefined, or the error (the
 * caller rewinds). Checks the number, the value's type and its length against the registry.
 */
export function putOption(d: Driver, k: number, number: number, v: unknown): CoapOptionError | undefined {
  if (!(number >= 0 && number <= 65535 && Number.isInteger(number))) {
    return new CoapOptionError(typeof number === 'number' ? number : NaN, `option number ${JSON.stringify(number)} is not an integer in 0..65535`);
  }
  const off = d.mark();
  let len: number;
  if (typeof v === 'string') len = d.putString(v);
  else if (typeof v === 'number') {
    if (!(v >= 0 && v <= 0xffffffff && Number.isInteger(v))) {
      return new CoapOptionError(number, `option ${number}: ${String(v)} is not an unsigned 32-bit integer`);
    }
    len = d.putUint(v);
  } else {
    const bytes = bytesOf(v);
    if (bytes === undefined) return new CoapOptionError(number, `option ${number}: the value must be bytes, a string or an unsigned integer`);
    d.putBytes(bytes);
    len = bytes.length;
  }
  const bad = checkLength(number, len);
  if (bad !== undefined) return bad;
  d.option(k, number, off, len);
  return undefined;
}

/** Location-Path / Location-Query options for a relative reference (cached: servers repeat them). */
const locationCache = new Map<string, { number: number; value: Uint8Array }[]>();
export function locationOptions(location: string): { number: number; value: Uint8Array }[] {
  let o = locationCache.get(location);
  if (o === undefined) {
    o = locationToOptions(location) as { number: number; value: Uint8Array }[];
    if (locationCache.size >= 256) locationCache.clear();
    locationCache.set(location, o);
  }
  return o;
}
