/**
 * Writing message options and payloads into an endpoint's TX area: ResponseInit for
 * servers, request options for clients. Values go straight into the area (strings with
 * an ASCII loop or TextEncoder.encodeInto), nothing is encoded twice.
 *
 * @internal
 */
import { codeNumberOrInvalid } from './codes';
import { contentFormatNumber } from './content-format';
import { locationToOptions } from './uri';
import type { Endpoint } from './transport/endpoint';

/** An option to send: its number and value (bytes, UTF-8 text, or an unsigned integer). */
export interface OptionInit {
  /** Option number 0..65535. */
  readonly number: number;
  /** Value: bytes, a string (sent as UTF-8) or an unsigned integer (minimal big-endian). */
  readonly value: Uint8Array | string | number;
}

/** A Content-Format number, or a media type name known to the registry. */
export type ContentFormatInit = number | string;

/** Code number of a code given as `'c.dd'` or a number, or -1. */
export function codeOf(code: string | number): number {
  if (typeof code === 'number') return Number.isInteger(code) && code >= 0 && code <= 255 ? code : -1;
  return codeNumberOrInvalid(code);
}

/** A Content-Format / Accept value as a number, or -1 if invalid. */
export function formatOf(f: ContentFormatInit): number {
  if (typeof f === 'number') return Number.isInteger(f) && f >= 0 && f <= 65535 ? f : -1;
  if (typeof f === 'string') return contentFormatNumber(f) ?? -1;
  return -1;
}

/** Upper bound of the bytes a value takes in the area. */
export function valueBound(v: Uint8Array | string | number): number {
  if (typeof v === 'string') return 3 * v.length;
  if (typeof v === 'number') return 4;
  return v.length;
}

/** Whether v is a valid option value; writes it and its triple k of record p (header hdr words). */
export function putOption(ep: Endpoint, p: number, hdr: number, k: number, number: number, v: Uint8Array | string | number): boolean {
  if (!(number >= 0 && number <= 65535 && Number.isInteger(number))) return false;
  const off = ep.bpos;
  let len: number;
  if (typeof v === 'string') len = ep.putString(v);
  else if (typeof v === 'number') {
    if (!(v >= 0 && v <= 0xffffffff && Number.isInteger(v))) return false;
    len = ep.putUint(v);
  } else if (v instanceof Uint8Array) {
    ep.putBytes(v);
    len = v.length;
  } else return false;
  ep.opt(p, hdr, k, number, off, len);
  return true;
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
