/** Message codes, types and transports. */
import { outOfRange } from './errors';

/** Wire framings: UDP/DTLS (RFC 7252), TCP/TLS (RFC 8323 §3) and WebSocket (RFC 8323 §4). */
export type Transport = 'udp' | 'tcp' | 'ws';

/** UDP message types (RFC 7252 §3). */
export type MessageType = 'CON' | 'NON' | 'ACK' | 'RST';

/** Type names by number. @internal */
export const TYPE_NAMES: readonly MessageType[] = ['CON', 'NON', 'ACK', 'RST'];

/** 'c.dd' strings for every code 0..255, precomputed. @internal */
export const CODE_STRINGS: readonly string[] = Array.from(
  { length: 256 },
  (_, n) => `${n >> 5}.${String(n & 31).padStart(2, '0')}`,
);

const CODE_NUMBERS: ReadonlyMap<string, number> = new Map(CODE_STRINGS.map((s, n) => [s, n]));

/**
 * Formats a code number (class << 5 | detail, 0..255) as `'c.dd'`,
 * e.g. `69` → `'2.05'`.
 * @throws RangeError if `n` is not an integer in 0..255.
 */
export function codeToString(n: number): string {
  const s = CODE_STRINGS[n];
  if (s === undefined || !Number.isInteger(n)) throw outOfRange('code', 'a CoAP code 0..255', n);
  return s;
}

/** Code number of a `'c.dd'` string, or -1 (hot path of encode). @internal */
export function codeNumberOrInvalid(s: string): number {
  if (typeof s !== 'string' || s.length !== 4 || s.charCodeAt(1) !== 46 /* . */) return -1;
  const c = s.charCodeAt(0) - 48;
  const d1 = s.charCodeAt(2) - 48;
  const d0 = s.charCodeAt(3) - 48;
  if (c < 0 || c > 7 || d1 < 0 || d1 > 3 || d0 < 0 || d0 > 9) return -1;
  const detail = d1 * 10 + d0;
  return detail > 31 ? -1 : (c << 5) | detail;
}

/**
 * Parses a `'c.dd'` code string (class 0..7, detail 00..31), e.g.
 * `'2.05'` → `69`.
 * @throws RangeError if the string is not a valid code.
 */
export function parseCode(s: string): number {
  const n = CODE_NUMBERS.get(s);
  if (n === undefined) throw outOfRange('code', "a CoAP code 'c.dd'", s, 'ERR_INVALID_ARG_VALUE');
  return n;
}

/** Transport number for the core, or -1. @internal */
export function transportNumber(t: Transport | undefined): number {
  if (t === undefined || t === 'udp') return 0;
  if (t === 'tcp') return 1;
  if (t === 'ws') return 2;
  return -1;
}
