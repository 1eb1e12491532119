/**
 * CoAP URIs: RFC 7252 §6 (`coap`, `coaps`) and RFC 8323 §8 (`coap+tcp`,
 * `coaps+tcp`, `coap+ws`, `coaps+ws`).
 *
 * - {@link parseUri} splits and validates a URI (RFC 3986 syntax, no
 *   userinfo, no fragment), removes dot segments and percent-decodes the path
 *   segments and query arguments.
 * - {@link uriToOptions} is the §6.4 decomposition into Uri-Host / Uri-Port /
 *   Uri-Path / Uri-Query options; {@link optionsToUri} is the §6.5
 *   composition back into a URI.
 * - {@link pathFromOptions}, {@link queryFromOptions} and
 *   {@link locationFromOptions} read the request target (or a response's
 *   Location) out of decoded options; {@link locationToOptions} builds
 *   Location-* options.
 *
 * Pure TypeScript: no I/O, no backend.
 */
import { CoapError } from './errors';
import { OptionNumber, decodeUint, encodeUint } from './options';
import { canonicalIPv6, formatIPv6, parseIPv6, parseIPv4 } from './net/ip';

/** URI schemes understood by turbocoap. */
export type CoapScheme = 'coap' | 'coaps' | 'coap+tcp' | 'coaps+tcp' | 'coap+ws' | 'coaps+ws';

/**
 * How a URI's requests are carried: UDP and DTLS (RFC 7252), TCP and TLS
 * (RFC 8323 §3), WebSocket and secure WebSocket (RFC 8323 §4).
 */
export type UriTransport = 'udp' | 'dtls' | 'tcp' | 'tls' | 'ws' | 'wss';

/** What kind of host a URI names. */
export type UriHostType = 'ipv4' | 'ipv6' | 'name';

/** A parsed CoAP URI (see {@link parseUri}). */
export interface CoapUri {
  /** Scheme, in lower case. */
  readonly scheme: CoapScheme;
  /** Transport the scheme selects. */
  readonly transport: UriTransport;
  /** Whether the transport is secured (coaps, coaps+tcp, coaps+ws). */
  readonly secure: boolean;
  /**
   * Host: an IPv6 address without brackets or zone, in RFC 5952 canonical
   * form (`2001:db8::1`); an IPv4 address; or a registered name, ASCII lower
   * case and percent-decoded.
   */
  readonly host: string;
  /** Kind of {@link CoapUri.host}. */
  readonly hostType: UriHostType;
  /**
   * IPv6 zone identifier (RFC 6874, written `%25` in the URI), decoded, e.g.
   * `'eth0'` for `coap://[fe80::1%25eth0]/`. Zones are local to this host:
   * they are never put in a Uri-Host option.
   */
  readonly zone?: string;
  /** Port: the explicit one, or the scheme's default ({@link defaultPort}). */
  readonly port: number;
  /**
   * Path segments, percent-decoded, after dot-segment removal. Empty for an
   * empty path and for `/` (RFC 7252 §6.4 step 8).
   */
  readonly path: readonly string[];
  /**
   * Query arguments (split on `&`), percent-decoded. Empty when the URI has
   * no `?`; a bare `?` gives one empty argument, as §6.4 step 9 reads.
   */
  readonly query: readonly string[];
  /**
   * For `coap+ws` / `coaps+ws`: the WebSocket resource path,
   * `'/.well-known/coap'` (RFC 8323 §8.3/§8.4). Undefined otherwise.
   */
  readonly wsPath?: string;
  /**
   * For `coap+ws` / `coaps+ws`: the `ws:` / `wss:` URL of the WebSocket
   * endpoint (authority of the URI + {@link CoapUri.wsPath}).
   */
  readonly wsUrl?: string;
  /** The URI in normalized form (see {@link formatUri}). */
  readonly href: string;
}

/** Why {@link CoapUriError} was thrown. */
export type CoapUriErrorReason =
  /** Not an absolute URI (no scheme): a relative reference or garbage. */
  | 'not-absolute'
  /** Scheme is not one of {@link CoapScheme}. */
  | 'unsupported-scheme'
  /** No `//authority` after the scheme. */
  | 'missing-authority'
  /** The authority has userinfo (`user@host`), which CoAP URIs do not allow. */
  | 'userinfo'
  /** Empty host. */
  | 'missing-host'
  /** Malformed host: bad IPv6/IPv4 literal, bad characters, bad zone. */
  | 'invalid-host'
  /** IPvFuture literal (`[v1.x]`). */
  | 'unsupported-host'
  /** Port not a decimal number in 1..65535. */
  | 'invalid-port'
  /** The URI has a `#fragment` (RFC 7252 §6.4 step 4). */
  | 'fragment'
  /** A character not allowed at that place in a URI (space, `<`, `|`, control, ...). */
  | 'invalid-character'
  /** `%` not followed by two hex digits. */
  | 'invalid-percent-encoding'
  /** Percent-decoded bytes (or an option value) are not valid UTF-8. */
  | 'invalid-utf8'
  /** Host, path segment or query argument longer than 255 bytes (the option maximum). */
  | 'too-long'
  /** Options that cannot be composed into a URI (RFC 7252 §6.5), e.g. a repeated Uri-Host. */
  | 'invalid-option';

/** {@link CoapUriError.code}: a {@link CoapUriErrorReason} in upper case, `-` as `_` (e.g. `'INVALID_HOST'`). */
export type CoapUriErrorCode = Uppercase<CoapUriErrorReason extends infer R extends string ? ReplaceDash<R> : never>;
type ReplaceDash<S extends string> = S extends `${infer A}-${infer B}` ? `${A}_${ReplaceDash<B>}` : S;

/** Thrown for an invalid CoAP URI or URI options; {@link CoapUriError.code} says why. */
export class CoapUriError extends CoapError {
  /** Stable upper-case reason, e.g. `'INVALID_HOST'`, `'UNSUPPORTED_SCHEME'`, `'INVALID_UTF8'`. */
  declare readonly code: CoapUriErrorCode;
  /** The offending input (possibly truncated to 200 characters). */
  readonly input: string;
  constructor(reason: CoapUriErrorReason, input: string, detail?: string) {
    const shown = input.length > 200 ? `${input.slice(0, 200)}…` : input;
    const code = reason.toUpperCase().replace(/-/g, '_');
    super(`invalid CoAP URI (${code})${detail === undefined ? '' : `: ${detail}`}: ${JSON.stringify(shown)}`, code);
    this.input = shown;
  }

  /** @deprecated use {@link CoapUriError.code}: the same reason in lower case with `-` (e.g. `'invalid-host'`). */
  get reason(): CoapUriErrorReason {
    return this.code.toLowerCase().replace(/_/g, '-') as CoapUriErrorReason;
  }
}

/** A CoAP option as produced and consumed by the helpers here. */
export interface UriOption {
  /** Option number (RFC 7252 §12.2). */
  readonly number: number;
  /** Option value bytes. */
  readonly value: Uint8Array;
}

interface SchemeInfo {
  readonly transport: UriTransport;
  readonly port: number;
  readonly secure: boolean;
}

const SCHEMES: ReadonlyMap<string, SchemeInfo> = new Map<string, SchemeInfo>([
  ['coap', { transport: 'udp', port: 5683, secure: false }],
  ['coaps', { transport: 'dtls', port: 5684, secure: true }],
  ['coap+tcp', { transport: 'tcp', port: 5683, secure: false }],
  ['coaps+tcp', { transport: 'tls', port: 5684, secure: true }],
  ['coap+ws', { transport: 'ws', port: 80, secure: false }],
  ['coaps+ws', { transport: 'wss', port: 443, secure: true }],
]);

/** The WebSocket resource path of `coap+ws` / `coaps+ws` endpoints (RFC 8323 §8.3). */
export const WS_PATH = '/.well-known/coap';

/** Largest Uri-Host / Uri-Path / Uri-Query / Location-* value in bytes (RFC 7252 §5.10). */
export const MAX_URI_OPTION_LENGTH = 255;

/** Whether `s` is one of the {@link CoapScheme}s (lower case). */
export function isCoapScheme(s: string): s is CoapScheme {
  return SCHEMES.has(s);
}

/**
 * Default port of a scheme: 5683 for coap and coap+tcp, 5684 for coaps and
 * coaps+tcp, 80 for coap+ws, 443 for coaps+ws.
 */
export function defaultPort(scheme: CoapScheme): number {
  const info = SCHEMES.get(scheme);
  if (info === undefined) throw new CoapUriError('unsupported-scheme', String(scheme));
  return info.port;
}

/** Transport a scheme selects, e.g. `'coaps+tcp'` → `'tls'`. */
export function schemeTransport(scheme: CoapScheme): UriTransport {
  const info = SCHEMES.get(scheme);
  if (info === undefined) throw new CoapUriError('unsupported-scheme', String(scheme));
  return info.transport;
}

// ---------------------------------------------------------------------------
// Character classes (RFC 3986 §2, §3.3)

/** Bit flags per ASCII character. */
const UNRESERVED = 1;
const SUB_DELIM = 2;
const PCHAR_EXTRA = 4; // ':' and '@'
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  CLASS[c] =
    (/[A-Za-z0-9\-._~]/.test(ch) ? UNRESERVED : 0) |
    ("!$&'()*+,;=".includes(ch) ? SUB_DELIM : 0) |
    (ch === ':' || ch === '@' ? PCHAR_EXTRA : 0);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function hexVal(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

const HEX = '0123456789ABCDEF';

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks that every character of s[start, end) is allowed where the ASCII
 * class mask `allowed` applies; `%` must start a valid escape; non-ASCII is
 * allowed (IRI) when `nonAscii`, but lone surrogates never are.
 */
function checkChars(
  s: string,
  start: number,
  end: number,
  allowed: number,
  extra: string,
  nonAscii: boolean,
  input: string,
  what: string,
): void {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      if (((CLASS[c] as number) & allowed) !== 0) continue;
      if (c === 0x25) {
        if (i + 2 < end && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
          i += 2;
          continue;
        }
        throw new CoapUriError('invalid-percent-encoding', input, `in ${what} at ${i}`);
      }
      if (extra.includes(s[i] as string)) continue;
      throw new CoapUriError('invalid-character', input, `${JSON.stringify(s[i])} in ${what} at ${i}`);
    }
    if (!nonAscii) throw new CoapUriError('invalid-character', input, `non-ASCII character in ${what} at ${i}`);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (i + 1 < end && d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      throw new CoapUriError('invalid-character', input, `lone surrogate in ${what} at ${i}`);
    }
    if (c >= 0xdc00 && c <= 0xdfff) throw new CoapUriError('invalid-character', input, `lone surrogate in ${what} at ${i}`);
  }
}

/**
 * Percent-decodes an already syntax-checked component into a UTF-8 string.
 * Returns `s` itself when it has no `%`.
 */
function percentDecode(s: string, input: string): string {
  if (s.indexOf('%') < 0) return s;
  const raw = utf8Encoder.encode(s); // '%XX' stays ASCII, non-ASCII becomes UTF-8
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (b === 0x25 && i + 2 < raw.length && isHex(raw[i + 1] as number) && isHex(raw[i + 2] as number)) {
      out[n++] = (hexVal(raw[i + 1] as number) << 4) | hexVal(raw[i + 2] as number);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  try {
    return utf8Decoder.decode(out.subarray(0, n));
  } catch {
    throw new CoapUriError('invalid-utf8', input, 'percent-decoded bytes are not UTF-8');
  }
}

/** Percent-encodes every UTF-8 byte of `s` except ASCII characters in `keep` (class mask) or `extra`. */
function percentEncode(s: string, keep: number, extra: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (((CLASS[c] as number) & keep) === 0 && !extra.includes(s[i] as string))) break;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  const bytes = utf8Encoder.encode(s.slice(i));
  for (const b of bytes) {
    if (b < 128 && (((CLASS[b] as number) & keep) !== 0 || extra.includes(String.fromCharCode(b)))) {
      out += String.fromCharCode(b);
    } else {
      out += `%${HEX.charAt(b >> 4)}${HEX.charAt(b & 15)}`;
    }
  }
  return out;
}

/**
 * Percent-encodes a path segment for a URI as RFC 7252 §6.5 step 6 says:
 * everything except unreserved, sub-delims, `:` and `@` (so `/` → `%2F`,
 * `%` → `%25`, `?` → `%3F`, non-ASCII → UTF-8 escapes).
 */
export function encodePathSegment(segment: string): string {
  return percentEncode(segment, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, '');
}

/**
 * Percent-encodes a query argument for a URI as RFC 7252 §6.5 step 8 says:
 * everything except unreserved, sub-delims, `:`, `@`, `/` and `?` — except
 * that `&` (the argument separator) is encoded too, so the URI parses back
 * into the same arguments.
 */
export function encodeQueryArgument(arg: string): string {
  const s = percentEncode(arg, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, '/?');
  return s.indexOf('&') < 0 ? s : s.replace(/&/g, '%26');
}

// ---------------------------------------------------------------------------
// IP addresses

/** 16 address bytes of an IPv6 literal without a zone, or undefined. */
function ipv6Bytes(s: string): Uint8Array | undefined {
  if (s.indexOf('%') >= 0) return undefined;
  const b = new Uint8Array(16);
  return parseIPv6(s, b) ? b : undefined;
}

/** Canonical text (RFC 5952) of an IPv6 address (an optional `%zone` kept as is), or undefined. */
export { canonicalIPv6 };

/** Whether `s` is a dotted-decimal IPv4 address. */
export function isIPv4(s: string): boolean {
  return parseIPv4(s, new Uint8Array(4));
}

/** Whether `s` is an IPv6 address (without brackets; an optional `%zone` is allowed). */
export function isIPv6(s: string): boolean {
  return canonicalIPv6(s) !== undefined;
}

// ---------------------------------------------------------------------------
// Parsing

/** RFC 3986 §5.2.4 remove_dot_segments, on a path that is empty or starts with '/'. */
function removeDotSegments(path: string): string {
  if (path.indexOf('.') < 0) return path;
  const input = path.split('/');
  // input[0] is '' (leading slash). Process segments 1..n.
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i] as string;
    const last = i === input.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return out.length === 0 ? '/' : `/${out.join('/')}`;
}

function byteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function checkOptionLength(value: string, input: string, what: string): void {
  if (value.length > MAX_URI_OPTION_LENGTH / 4 && byteLength(value) > MAX_URI_OPTION_LENGTH) {
    throw new CoapUriError('too-long', input, `${what} is ${byteLength(value)} bytes (max ${MAX_URI_OPTION_LENGTH})`);
  }
}

const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/**
 * Parses a CoAP URI (RFC 7252 §6.1/§6.2, RFC 8323 §8).
 *
 * The scheme and a registered-name host are case-insensitive (returned in
 * lower case); an empty port (`coap://h:/`) means the default; dot segments
 * are removed (RFC 3986 §5.2.4); path segments and query arguments are
 * percent-decoded (as UTF-8). Non-ASCII characters in the path and query
 * are accepted (IRI style) and treated as their UTF-8 bytes; a host must be
 * ASCII (apply IDNA/punycode first).
 *
 * @example
 * ```ts
 * parseUri('coap://EXAMPLE.com:/%7esensors/temp.xml')
 * // { scheme: 'coap', transport: 'udp', host: 'example.com', port: 5683,
 * //   path: ['~sensors', 'temp.xml'], query: [], ... }
 * ```
 * @throws CoapUriError for a relative reference, a scheme other than the
 *   six CoAP schemes, userinfo, a fragment, a bad host or port, a bad
 *   character or percent-escape, non-UTF-8 escapes, or a host / segment /
 *   argument longer than 255 bytes.
 */
export function parseUri(uri: string | URL): CoapUri {
  const input: unknown = typeof uri === 'string' ? uri : uri instanceof URL ? uri.href : undefined;
  if (typeof input !== 'string') throw new CoapUriError('not-absolute', String(uri), 'expected a string or URL');
  const m = SCHEME_RE.exec(input);
  if (m === null) throw new CoapUriError('not-absolute', input, 'no scheme');
  const scheme = (m[1] as string).toLowerCase();
  const info = SCHEMES.get(scheme);
  if (info === undefined) throw new CoapUriError('unsupported-scheme', input, `scheme ${JSON.stringify(scheme)}`);
  if (input.indexOf('#') >= 0) throw new CoapUriError('fragment', input);
  let i = (m[0] as string).length;
  if (input.charCodeAt(i) !== 0x2f || input.charCodeAt(i + 1) !== 0x2f) {
    throw new CoapUriError('missing-authority', input, 'expected "//" after the scheme');
  }
  i += 2;
  let authEnd = i;
  while (authEnd < input.length) {
    const c = input.charCodeAt(authEnd);
    if (c === 0x2f || c === 0x3f) break;
    authEnd++;
  }
  const authority = input.slice(i, authEnd);
  if (authority.indexOf('@') >= 0) throw new CoapUriError('userinfo', input);

  // Host and port.
  let hostPart: string;
  let portPart: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw new CoapUriError('invalid-host', input, 'unterminated IP literal');
    hostPart = authority.slice(0, close + 1);
    const after = authority.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw new CoapUriError('invalid-host', input, 'junk after IP literal');
      portPart = after.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    hostPart = colon < 0 ? authority : authority.slice(0, colon);
    portPart = colon < 0 ? undefined : authority.slice(colon + 1);
  }
  if (hostPart === '') throw new CoapUriError('missing-host', input);

  let port = info.port;
  if (portPart !== undefined && portPart !== '') {
    if (!/^[0-9]+$/.test(portPart)) throw new CoapUriError('invalid-port', input, `port ${JSON.stringify(portPart)}`);
    const digits = portPart.replace(/^0+(?=.)/, '');
    port = digits.length > 5 ? Infinity : Number(digits);
    if (port < 1 || port > 65535) throw new CoapUriError('invalid-port', input, `port ${portPart} out of range 1..65535`);
  }

  let host: string;
  let hostType: UriHostType;
  let zone: string | undefined;
  if (hostPart.startsWith('[')) {
    const lit = hostPart.slice(1, -1);
    if (/^[vV]/.test(lit)) throw new CoapUriError('unsupported-host', input, 'IPvFuture literal');
    const pct = lit.indexOf('%');
    const addr = pct < 0 ? lit : lit.slice(0, pct);
    const groups = ipv6Bytes(addr);
    if (groups === undefined) throw new CoapUriError('invalid-host', input, `bad IPv6 address ${JSON.stringify(addr)}`);
    if (pct >= 0) {
      // RFC 6874: ZoneID = 1*( unreserved / pct-encoded ), introduced by "%25".
      if (!lit.startsWith('%25', pct) || lit.length === pct + 3) {
        throw new CoapUriError('invalid-host', input, 'IPv6 zone must be written "%25<zone>" (RFC 6874)');
      }
      const z = lit.slice(pct + 3);
      checkChars(z, 0, z.length, UNRESERVED, '', false, input, 'IPv6 zone');
      zone = percentDecode(z, input);
    }
    host = formatIPv6(groups);
    hostType = 'ipv6';
  } else if (isIPv4(hostPart)) {
    host = hostPart;
    hostType = 'ipv4';
  } else {
    checkChars(hostPart, 0, hostPart.length, UNRESERVED | SUB_DELIM, '', false, input, 'host');
    if (/^[0-9.]+$/.test(hostPart)) throw new CoapUriError('invalid-host', input, 'not a valid IPv4 address');
    host = percentDecode(hostPart, input).replace(/[A-Z]+/g, (s) => s.toLowerCase());
    if (host === '') throw new CoapUriError('missing-host', input);
    checkOptionLength(host, input, 'host');
    hostType = 'name';
  }

  // Path and query.
  const q = input.indexOf('?', authEnd);
  const pathEnd = q < 0 ? input.length : q;
  checkChars(input, authEnd, pathEnd, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, '/', true, input, 'path');
  const rawPath = removeDotSegments(input.slice(authEnd, pathEnd));
  const path: string[] = [];
  if (rawPath !== '' && rawPath !== '/') {
    const segs = rawPath.split('/');
    for (let k = 1; k < segs.length; k++) {
      const seg = percentDecode(segs[k] as string, input);
      checkOptionLength(seg, input, 'path segment');
      path.push(seg);
    }
  }
  const query: string[] = [];
  if (q >= 0) {
    checkChars(input, q + 1, input.length, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, '/?', true, input, 'query');
    for (const a of input.slice(q + 1).split('&')) {
      const arg = percentDecode(a, input);
      checkOptionLength(arg, input, 'query argument');
      query.push(arg);
    }
  }

  const parts = {
    scheme: scheme as CoapScheme,
    transport: info.transport,
    secure: info.secure,
    host,
    hostType,
    port,
    path,
    query,
  };
  const result: CoapUri = {
    ...parts,
    ...(zone === undefined ? {} : { zone }),
    ...(info.transport === 'ws' || info.transport === 'wss'
      ? { wsPath: WS_PATH, wsUrl: `${info.secure ? 'wss' : 'ws'}://${formatAuthority(host, hostType, zone, port, info.port)}${WS_PATH}` }
      : {}),
    href: formatUri({ ...parts, zone }),
  };
  return result;
}

/** Formats host (bracketed when IPv6) and port (when not the default). */
function formatAuthority(host: string, hostType: UriHostType | undefined, zone: string | undefined, port: number, dflt: number): string {
  let h: string;
  const type = hostType ?? (host.indexOf(':') >= 0 ? 'ipv6' : isIPv4(host) ? 'ipv4' : 'name');
  if (type === 'ipv6') {
    const z = zone === undefined || zone === '' ? '' : `%25${percentEncode(zone, UNRESERVED, '')}`;
    h = `[${canonicalIPv6(host) ?? host}${z}]`;
  } else if (type === 'ipv4') {
    h = host;
  } else {
    h = percentEncode(host, UNRESERVED | SUB_DELIM, '');
  }
  return port === dflt ? h : `${h}:${port}`;
}

/** The parts of a URI {@link formatUri} needs. */
export interface UriParts {
  /** Scheme. */
  readonly scheme: CoapScheme;
  /** Host: IPv6 (no brackets), IPv4 or a registered name (not percent-encoded). */
  readonly host: string;
  /** Kind of host; inferred from `host` when omitted. */
  readonly hostType?: UriHostType;
  /** IPv6 zone identifier (not percent-encoded). */
  readonly zone?: string | undefined;
  /** Port; omitted from the URI when it is the scheme's default. Default: the scheme's default. */
  readonly port?: number;
  /** Path segments (not percent-encoded). */
  readonly path?: readonly string[];
  /** Query arguments (not percent-encoded). */
  readonly query?: readonly string[];
}

/**
 * Formats URI parts as a normalized URI string: lower-case scheme, IPv6 in
 * RFC 5952 form, default port omitted, path segments and query arguments
 * percent-encoded as RFC 7252 §6.5 steps 6 and 8 say (with `&` encoded in
 * arguments), and `/` for an empty path.
 *
 * `parseUri(formatUri(p))` gives back `p`'s path and query, except that a
 * path of a single empty segment becomes an empty path (both are `/`).
 */
export function formatUri(parts: UriParts): string {
  const dflt = defaultPort(parts.scheme);
  const port = parts.port ?? dflt;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CoapUriError('invalid-port', String(port));
  let out = `${parts.scheme}://${formatAuthority(parts.host, parts.hostType, parts.zone, port, dflt)}`;
  const path = parts.path ?? [];
  if (path.length === 0) out += '/';
  else for (const seg of path) out += `/${encodePathSegment(seg)}`;
  const query = parts.query ?? [];
  for (let k = 0; k < query.length; k++) out += (k === 0 ? '?' : '&') + encodeQueryArgument(query[k] as string);
  return out;
}

// ---------------------------------------------------------------------------
// Options

/** Options for {@link uriToOptions}. */
export interface UriToOptionsOptions {
  /**
   * Always include Uri-Host, even for an IP-literal host (IPv6 is then sent
   * bracketed, without zone). Use when the request goes to another address
   * than the URI's host (a proxy, a resolved name you want to keep).
   */
  readonly includeHost?: boolean;
  /**
   * Always include Uri-Port. By default none is sent: the request goes to
   * the URI's own port, which RFC 7252 §6.4 step 7 then omits.
   */
  readonly includePort?: boolean;
}

/**
 * The RFC 7252 §6.4 decomposition of a URI into request options, in option
 * number order: Uri-Host (3) when the host is a registered name (or
 * `includeHost`), Uri-Port (7) only with `includePort`, one Uri-Path (11)
 * per segment (none for an empty path or `/`), one Uri-Query (15) per
 * argument. Values are UTF-8.
 *
 * This assumes the request is sent to the URI's host and port, so an IP
 * literal needs no Uri-Host and the port never needs Uri-Port.
 *
 * @throws CoapUriError if a string URI is invalid, or a value of a
 *   hand-built {@link CoapUri} exceeds 255 bytes.
 */
export function uriToOptions(uri: CoapUri | string | URL, opts: UriToOptionsOptions = {}): UriOption[] {
  const u = typeof uri === 'string' || uri instanceof URL ? parseUri(uri) : uri;
  const out: UriOption[] = [];
  const push = (number: number, s: string, what: string): void => {
    const value = utf8Encoder.encode(s);
    if (value.length > MAX_URI_OPTION_LENGTH) throw new CoapUriError('too-long', s, `${what} is ${value.length} bytes`);
    out.push({ number, value });
  };
  if (u.hostType === 'name' || opts.includeHost === true) {
    const h = u.hostType === 'ipv6' ? `[${u.host}]` : u.hostType === 'name' ? u.host.toLowerCase() : u.host;
    if (h === '') throw new CoapUriError('missing-host', h);
    push(OptionNumber.UriHost, h, 'Uri-Host');
  }
  if (opts.includePort === true) out.push({ number: OptionNumber.UriPort, value: encodeUint(u.port) });
  for (const seg of u.path) push(OptionNumber.UriPath, seg, 'Uri-Path');
  for (const arg of u.query) push(OptionNumber.UriQuery, arg, 'Uri-Query');
  return out;
}

/** Where a request was received (or sent), for {@link optionsToUri}. */
export interface UriDestination {
  /**
   * Destination IP address (IPv4, or IPv6 without brackets, optionally with
   * `%zone`) — or a host name, used as is when there is no Uri-Host.
   */
  readonly host: string;
  /** Destination port. */
  readonly port: number;
  /**
   * Scheme to compose. Default `'coap'` (RFC 7252 §6.5 step 1 says `coaps`
   * when the request came over DTLS: pass it).
   */
  readonly scheme?: CoapScheme;
}

function decodeOptionString(value: Uint8Array, what: string): string {
  try {
    return utf8Decoder.decode(value);
  } catch {
    throw new CoapUriError('invalid-utf8', `<${what} option>`, `${what} value is not UTF-8`);
  }
}

/**
 * Composes the request URI from Uri-Host / Uri-Port / Uri-Path / Uri-Query
 * options and the destination (RFC 7252 §6.5). Other options are ignored.
 *
 * Without Uri-Host the destination address is used (IPv6 bracketed, RFC 5952
 * form); without Uri-Port the destination port; the port is left out when it
 * is the scheme's default; no Uri-Path gives `/`.
 *
 * @throws CoapUriError (`invalid-option`) for a repeated Uri-Host or
 *   Uri-Port, a Uri-Host that is not a valid host, a Uri-Port outside
 *   1..65535; (`invalid-utf8`) for a non-UTF-8 string option.
 */
export function optionsToUri(options: Iterable<UriOption>, destination: UriDestination): string {
  const scheme = destination.scheme ?? 'coap';
  const dflt = defaultPort(scheme);
  let uriHost: string | undefined;
  let uriPort: number | undefined;
  let path = '';
  let query = '';
  for (const o of options) {
    switch (o.number) {
      case OptionNumber.UriHost:
        if (uriHost !== undefined) throw new CoapUriError('invalid-option', '<Uri-Host option>', 'repeated Uri-Host');
        uriHost = decodeOptionString(o.value, 'Uri-Host');
        break;
      case OptionNumber.UriPort:
        if (uriPort !== undefined) throw new CoapUriError('invalid-option', '<Uri-Port option>', 'repeated Uri-Port');
        uriPort = o.value.length > 3 ? Infinity : decodeUint(o.value);
        break;
      case OptionNumber.UriPath:
        path += `/${encodePathSegment(decodeOptionString(o.value, 'Uri-Path'))}`;
        break;
      case OptionNumber.UriQuery:
        query += (query === '' ? '?' : '&') + encodeQueryArgument(decodeOptionString(o.value, 'Uri-Query'));
        break;
      default:
        break;
    }
  }
  let host: string;
  if (uriHost !== undefined) {
    host = hostFromUriHost(uriHost);
  } else {
    const d = destination.host;
    const v6 = canonicalIPv6(d);
    if (v6 !== undefined) {
      const pct = v6.indexOf('%');
      host = pct < 0 ? `[${v6}]` : `[${v6.slice(0, pct)}%25${percentEncode(v6.slice(pct + 1), UNRESERVED, '')}]`;
    } else if (isIPv4(d)) {
      host = d;
    } else {
      host = hostFromUriHost(d);
    }
  }
  const port = uriPort ?? destination.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CoapUriError('invalid-option', String(port), 'port outside 1..65535');
  }
  return `${scheme}://${host}${port === dflt ? '' : `:${port}`}${path === '' ? '/' : path}${query}`;
}

/** §6.5 step 2 for a Uri-Host value: percent-encode non-ASCII, then require IP-literal / IPv4 / reg-name. */
function hostFromUriHost(h: string): string {
  if (h.startsWith('[')) {
    const g = h.endsWith(']') ? ipv6Bytes(h.slice(1, -1)) : undefined;
    if (g === undefined) throw new CoapUriError('invalid-option', h, 'Uri-Host is not a valid IP literal');
    return `[${formatIPv6(g)}]`;
  }
  if (isIPv4(h)) return h;
  let ascii = '';
  for (const ch of h.replace(/[A-Z]+/g, (s) => s.toLowerCase())) ascii += ch.charCodeAt(0) < 128 ? ch : percentEncode(ch, 0, '');
  if (ascii === '') throw new CoapUriError('invalid-option', h, 'empty Uri-Host');
  try {
    checkChars(ascii, 0, ascii.length, UNRESERVED | SUB_DELIM, '', false, h, 'Uri-Host');
  } catch (e) {
    throw new CoapUriError('invalid-option', h, `Uri-Host is not a valid reg-name (${(e as CoapUriError).reason})`);
  }
  return ascii;
}

/**
 * Decodes a string option value for the request-target helpers, with a fast
 * path for ASCII. When `escape` is set, `%` and `/` become `%25` and `%2F`.
 */
function optionText(v: Uint8Array, escape: boolean, what: string): string {
  const n = v.length;
  let ascii = true;
  let needsEscape = false;
  for (let i = 0; i < n; i++) {
    const b = v[i] as number;
    if (b >= 0x80) {
      ascii = false;
      break;
    }
    if (b === 0x25 || b === 0x2f) needsEscape = true;
  }
  let s: string;
  if (ascii) {
    if (n <= 64) {
      s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(v[i] as number);
    } else {
      s = String.fromCharCode.apply(null, v as unknown as number[]);
    }
  } else {
    s = decodeOptionString(v, what);
    needsEscape = s.indexOf('%') >= 0 || s.indexOf('/') >= 0;
  }
  if (escape && needsEscape) s = escapeSegment(s);
  return s;
}

/** The escaping of {@link pathFromOptions}: `%` → `%25`, `/` → `%2F`. */
function escapeSegment(s: string): string {
  return s.replace(/%/g, '%25').replace(/\//g, '%2F');
}

function pathOf(options: Iterable<UriOption>, number: number, what: string): string | undefined {
  let path: string | undefined;
  for (const o of options) {
    if (o.number === number) {
      const seg = optionText(o.value, true, what);
      path = path === undefined ? `/${seg}` : `${path}/${seg}`;
    }
  }
  return path;
}

function queryOf(options: Iterable<UriOption>, number: number, what: string): string[] {
  const out: string[] = [];
  for (const o of options) if (o.number === number) out.push(optionText(o.value, false, what));
  return out;
}

/**
 * The request path from the Uri-Path options: `'/'` + segments joined by
 * `'/'`, `'/'` when there are none. Segments are the option values as text
 * with only `%` and `/` escaped (`%25`, `%2F`), so the result splits back
 * into exactly the original segments; it is the form `Router` expects.
 * A single empty Uri-Path also gives `'/'`; `['a', '']` gives `'/a/'`.
 *
 * @throws CoapUriError (`invalid-utf8`) if a value is not UTF-8.
 */
export function pathFromOptions(options: Iterable<UriOption>): string {
  return pathOf(options, OptionNumber.UriPath, 'Uri-Path') ?? '/';
}

/**
 * The Uri-Query option values, decoded as UTF-8, in order (not escaped).
 * @throws CoapUriError (`invalid-utf8`) if a value is not UTF-8.
 */
export function queryFromOptions(options: Iterable<UriOption>): string[] {
  return queryOf(options, OptionNumber.UriQuery, 'Uri-Query');
}

/** A response's Location (RFC 7252 §5.10.7), see {@link locationFromOptions}. */
export interface CoapLocation {
  /**
   * `'/'`-joined Location-Path values, escaped like {@link pathFromOptions};
   * undefined when there is no Location-Path (the location then only
   * replaces the query of the request URI).
   */
  readonly path: string | undefined;
  /** Location-Query values. */
  readonly query: string[];
  /**
   * The location as a relative reference, percent-encoded per RFC 7252
   * §6.5, e.g. `'/things/42?v=1'`; `''` when there are no Location-* options.
   */
  readonly href: string;
}

/**
 * Reads Location-Path (8) and Location-Query (20) options.
 * @throws CoapUriError (`invalid-utf8`) if a value is not UTF-8.
 */
export function locationFromOptions(options: Iterable<UriOption>): CoapLocation {
  // One pass, so one-shot iterables (generators) work too.
  let path: string | undefined;
  let pathHref = '';
  const query: string[] = [];
  for (const o of options) {
    if (o.number === OptionNumber.LocationPath) {
      const seg = decodeOptionString(o.value, 'Location-Path');
      path = `${path ?? ''}/${escapeSegment(seg)}`;
      pathHref += `/${encodePathSegment(seg)}`;
    } else if (o.number === OptionNumber.LocationQuery) {
      query.push(decodeOptionString(o.value, 'Location-Query'));
    }
  }
  let href = pathHref;
  for (let k = 0; k < query.length; k++) href += (k === 0 ? '?' : '&') + encodeQueryArgument(query[k] as string);
  return { path, query, href };
}

/**
 * Location-Path / Location-Query options for a relative reference such as
 * `'/things/42'` or `'/things/42?rev=3'` (an absolute path, optional query;
 * percent-escapes are decoded). `'/'` gives no Location-Path.
 *
 * @throws CoapUriError if `location` does not start with `/`, has a
 *   fragment, a bad character or escape, a `.` or `..` segment (forbidden in
 *   Location-Path by RFC 7252 §5.10.7), or a value over 255 bytes.
 */
export function locationToOptions(location: string): UriOption[] {
  if (!location.startsWith('/')) throw new CoapUriError('not-absolute', location, 'location must start with "/"');
  if (location.indexOf('#') >= 0) throw new CoapUriError('fragment', location);
  const q = location.indexOf('?');
  const pathEnd = q < 0 ? location.length : q;
  checkChars(location, 0, pathEnd, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, '/', true, location, 'path');
  const out: UriOption[] = [];
  const rawPath = location.slice(0, pathEnd);
  if (rawPath !== '/') {
    const segs = rawPath.split('/');
    for (let k = 1; k < segs.length; k++) {
      const raw = segs[k] as string;
      if (raw === '.' || raw === '..') throw new CoapUriError('invalid-character', location, 'dot segment in Location-Path');
      const seg = percentDecode(raw, location);
      checkOptionLength(seg, location, 'Location-Path');
      out.push({ number: OptionNumber.LocationPath, value: utf8Encoder.encode(seg) });
    }
  }
  if (q >= 0) {
    checkChars(location, q + 1, location.length, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, '/?', true, location, 'query');
    for (const a of location.slice(q + 1).split('&')) {
      const arg = percentDecode(a, location);
      checkOptionLength(arg, location, 'Location-Query');
      out.push({ number: OptionNumber.LocationQuery, value: utf8Encoder.encode(arg) });
    }
  }
  return out;
}
