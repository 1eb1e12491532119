/**
 * CoRE Link Format (RFC 6690, content-format 40): formatting, parsing and
 * the `/.well-known/core` query filter (§4.1). Pure TypeScript.
 */
import { CoapError } from './errors';

/**
 * A link attribute value:
 * - `true`: a flag written bare (`;obs`); `false`: left out;
 * - a number: written bare (`;ct=40`, `;sz=1280`);
 * - a string: quoted where RFC 6690 quotes it (see {@link formatLinks});
 * - an array: several values, written space-separated in one quoted value
 *   (`;rt="a b"`, `;ct="0 40"`).
 */
export type LinkAttributeValue = string | number | boolean | readonly (string | number)[];

/** Attributes of a link, by name (`rt`, `if`, `ct`, `sz`, `obs`, `title`, `anchor`, `rel`, ...). */
export type LinkAttributes = Record<string, LinkAttributeValue>;

/** One link: a target URI reference and its attributes. */
export interface Link {
  /** Target URI reference, written between `<` and `>` (e.g. `'/sensors/temp'`). */
  href: string;
  /** Target attributes, in output order. */
  attributes?: LinkAttributes;
}

/** Thrown for malformed link-format text or links that cannot be written; `code` `INVALID_LINK_FORMAT`. */
export class CoapLinkFormatError extends CoapError {
  declare readonly code: 'INVALID_LINK_FORMAT';
  /** Character offset of the problem in the parsed text, or -1 when formatting. */
  readonly position: number;
  constructor(message: string, position = -1) {
    super(position >= 0 ? `${message} at offset ${position}` : message, 'INVALID_LINK_FORMAT');
    this.position = position;
  }
}

/** Limits for {@link parseLinks}. */
export interface ParseLinksOptions {
  /** Most links accepted; more is an error. Default {@link DEFAULT_MAX_LINKS}. */
  readonly maxLinks?: number;
  /** Most attributes accepted on one link; more is an error. Default {@link DEFAULT_MAX_ATTRIBUTES}. */
  readonly maxAttributes?: number;
}

/** Default {@link ParseLinksOptions.maxLinks}. */
export const DEFAULT_MAX_LINKS = 65536;
/** Default {@link ParseLinksOptions.maxAttributes}. */
export const DEFAULT_MAX_ATTRIBUTES = 256;

// RFC 5988 attr-char (parmname characters) plus '*' for ext-name-star.
const PARMNAME_RE = /^[A-Za-z0-9!#$&+\-.^_`|~]+\*?$/;
// RFC 6690 ptokenchar.
const PTOKEN_RE = /^[!#$%&'()*+\-./0-9:<=>?@A-Z[\]^_`a-z{|}~]+$/;
const PTOKEN_CHAR = new Uint8Array(128);
for (const ch of "!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~") {
  PTOKEN_CHAR[ch.charCodeAt(0)] = 1;
}
const PARMNAME_CHAR = new Uint8Array(128);
for (const ch of '!#$&+-.^_`|~*0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') {
  PARMNAME_CHAR[ch.charCodeAt(0)] = 1;
}
const CANONICAL_UINT_RE = /^(0|[1-9][0-9]{0,14})$/;

function quote(s: string, name: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      throw new CoapLinkFormatError(`control character in the value of attribute ${JSON.stringify(name)}`);
    }
  }
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

function checkNumber(n: number, name: string): string {
  if (!Number.isFinite(n)) throw new CoapLinkFormatError(`attribute ${JSON.stringify(name)} is not a finite number`);
  return String(n);
}

function formatValue(name: string, v: LinkAttributeValue): string | undefined {
  if (v === true) return '';
  if (v === false) return undefined;
  if (typeof v === 'number') return `=${checkNumber(v, name)}`;
  if (typeof v === 'string') {
    if (name.endsWith('*') || name === 'hreflang') {
      // ext-value (RFC 5987) and Language-Tag are written bare.
      if (!PTOKEN_RE.test(v)) throw new CoapLinkFormatError(`invalid value for attribute ${JSON.stringify(name)}`);
      return `=${v}`;
    }
    if (name === 'ct' || name === 'sz') {
      if (CANONICAL_UINT_RE.test(v)) return `=${v}`;
    }
    return `=${quote(v, name)}`;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    const parts: string[] = [];
    for (const e of v as readonly unknown[]) {
      let s: string;
      if (typeof e === 'number') s = checkNumber(e, name);
      else if (typeof e === 'string') s = e;
      else throw new CoapLinkFormatError(`attribute ${JSON.stringify(name)} has a non-string, non-number list element`);
      if (s === '' || /[\s]/.test(s)) {
        throw new CoapLinkFormatError(`list element ${JSON.stringify(s)} of attribute ${JSON.stringify(name)} is empty or has whitespace`);
      }
      parts.push(s);
    }
    if (parts.length === 1 && typeof v[0] === 'number') return `=${parts[0] as string}`;
    return `=${quote(parts.join(' '), name)}`;
  }
  throw new CoapLinkFormatError(`attribute ${JSON.stringify(name)} has an unsupported value type`);
}

/**
 * Serializes links as RFC 6690 link-format text: `<href>;name=value,...`,
 * links separated by `,` without whitespace.
 *
 * Quoting: string values are quoted (`rt="temperature-c"`, `if="sensor"`,
 * `title="..."`, `anchor="..."`, with `"` and `\` escaped), except
 * `hreflang` and `name*` (RFC 5987 ext-value) values, which are bare, and a
 * `ct` / `sz` string holding an integer, written as a number; numbers are
 * bare (`ct=40`, `sz=1280`); flags (`true`) are bare names (`;obs`);
 * `false`, `undefined` and empty arrays are left out; arrays become one
 * quoted space-separated value (`rt="a b"`, `ct="0 40"`), except a
 * one-number array, which is bare.
 *
 * @throws CoapLinkFormatError for an href containing `>`, whitespace or
 *   control characters; an invalid attribute name; a non-finite number; a
 *   control character in a value; a list element that is empty or contains
 *   whitespace.
 */
export function formatLinks(links: readonly Link[]): string {
  let out = '';
  for (let i = 0; i < links.length; i++) {
    const link = links[i] as Link;
    const href = link.href;
    if (typeof href !== 'string' || /[<>\s\x00-\x1f\x7f]/.test(href)) {
      throw new CoapLinkFormatError(`invalid link target ${JSON.stringify(href)}`);
    }
    if (i > 0) out += ',';
    out += `<${href}>`;
    const attrs = link.attributes;
    if (attrs === undefined) continue;
    for (const name of Object.keys(attrs)) {
      const v = attrs[name];
      if (v === undefined) continue;
      if (!PARMNAME_RE.test(name)) throw new CoapLinkFormatError(`invalid attribute name ${JSON.stringify(name)}`);
      const f = formatValue(name, v);
      if (f !== undefined) out += `;${name}${f}`;
    }
  }
  return out;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function setAttr(attrs: LinkAttributes, name: string, v: LinkAttributeValue): void {
  if (name === '__proto__') {
    Object.defineProperty(attrs, name, { value: v, enumerable: true, writable: true, configurable: true });
  } else {
    attrs[name] = v;
  }
}

function convert(name: string, raw: string, quoted: boolean): LinkAttributeValue {
  if (name === 'ct') {
    const parts = raw.split(/[ \t]+/).filter((p) => p !== '');
    if (parts.length > 0 && parts.every((p) => CANONICAL_UINT_RE.test(p))) {
      return parts.length === 1 ? Number(parts[0]) : parts.map(Number);
    }
    return raw;
  }
  if (!quoted && CANONICAL_UINT_RE.test(raw)) return Number(raw);
  return raw;
}

/**
 * Parses RFC 6690 link-format text into links.
 *
 * Whitespace (space, tab, CR, LF) is accepted around `,`, `;` and `=`, and a
 * trailing `,` is tolerated. Quoted values may contain `,` and `;` and use
 * `\` escapes. Values are returned as: `true` for a flag; for `ct`, a number
 * or a number array (`"0 40"` → `[0, 40]`); for other unquoted canonical
 * integers, a number (`sz=1280` → 1280); otherwise the (unescaped) string.
 * An attribute repeated on one link keeps its first value (RFC 8288 §3.3
 * for `rel`). Empty or whitespace-only text gives `[]`.
 *
 * @throws CoapLinkFormatError (with the offset) for malformed text — a
 *   missing `<`, an unterminated `<...>` or quoted string, a bad attribute
 *   name or value, junk between links — or when a limit of `opts` is hit.
 */
export function parseLinks(text: string, opts: ParseLinksOptions = {}): Link[] {
  if (typeof text !== 'string') throw new CoapLinkFormatError('link-format input must be a string');
  const maxLinks = opts.maxLinks ?? DEFAULT_MAX_LINKS;
  const maxAttrs = opts.maxAttributes ?? DEFAULT_MAX_ATTRIBUTES;
  const n = text.length;
  const links: Link[] = [];
  let pos = 0;
  const skipWs = (): void => {
    while (pos < n && isWs(text.charCodeAt(pos))) pos++;
  };
  skipWs();
  while (pos < n) {
    if (text.charCodeAt(pos) !== 0x3c /* < */) throw new CoapLinkFormatError("expected '<'", pos);
    const close = text.indexOf('>', pos + 1);
    if (close < 0) throw new CoapLinkFormatError("unterminated '<'", pos);
    const href = text.slice(pos + 1, close);
    for (let k = 0; k < href.length; k++) {
      const c = href.charCodeAt(k);
      if (c <= 0x20 || c === 0x7f || c === 0x3c) throw new CoapLinkFormatError('invalid character in link target', pos + 1 + k);
    }
    if (links.length >= maxLinks) throw new CoapLinkFormatError(`more than ${maxLinks} links`, pos);
    pos = close + 1;
    const attrs: LinkAttributes = {};
    let nattrs = 0;
    skipWs();
    while (pos < n && text.charCodeAt(pos) === 0x3b /* ; */) {
      pos++;
      skipWs();
      const nameStart = pos;
      while (pos < n) {
        const c = text.charCodeAt(pos);
        if (c >= 128 || PARMNAME_CHAR[c] !== 1) break;
        pos++;
      }
      const name = text.slice(nameStart, pos);
      if (!PARMNAME_RE.test(name)) throw new CoapLinkFormatError('invalid attribute name', nameStart);
      skipWs();
      let value: LinkAttributeValue = true;
      if (pos < n && text.charCodeAt(pos) === 0x3d /* = */) {
        pos++;
        skipWs();
        if (pos < n && text.charCodeAt(pos) === 0x22 /* " */) {
          const qStart = pos;
          pos++;
          let s = '';
          let segStart = pos;
          for (;;) {
            if (pos >= n) throw new CoapLinkFormatError('unterminated quoted string', qStart);
            const c = text.charCodeAt(pos);
            if (c === 0x22) break;
            if (c === 0x5c /* \ */) {
              if (pos + 1 >= n) throw new CoapLinkFormatError('unterminated quoted string', qStart);
              s += text.slice(segStart, pos) + text.charAt(pos + 1);
              pos += 2;
              segStart = pos;
              continue;
            }
            if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new CoapLinkFormatError('control character in quoted string', pos);
            pos++;
          }
          s += text.slice(segStart, pos);
          pos++; // closing quote
          value = convert(name, s, true);
        } else {
          const vStart = pos;
          while (pos < n) {
            const c = text.charCodeAt(pos);
            if (c >= 128 || PTOKEN_CHAR[c] !== 1) break;
            pos++;
          }
          if (pos === vStart) throw new CoapLinkFormatError(`missing value for attribute ${JSON.stringify(name)}`, vStart);
          value = convert(name, text.slice(vStart, pos), false);
        }
      }
      if (!Object.prototype.hasOwnProperty.call(attrs, name)) {
        if (++nattrs > maxAttrs) throw new CoapLinkFormatError(`more than ${maxAttrs} attributes on one link`, nameStart);
        setAttr(attrs, name, value);
      }
      skipWs();
    }
    links.push(nattrs === 0 ? { href } : { href, attributes: attrs });
    if (pos >= n) break;
    if (text.charCodeAt(pos) !== 0x2c /* , */) throw new CoapLinkFormatError("expected ',' or ';'", pos);
    pos++;
    skipWs();
  }
  return links;
}

function matches(candidate: string, value: string, prefix: boolean): boolean {
  return prefix ? candidate.startsWith(value) : candidate === value;
}

function attrLookup(attrs: LinkAttributes | undefined, name: string): LinkAttributeValue | undefined {
  if (attrs === undefined) return undefined;
  if (Object.prototype.hasOwnProperty.call(attrs, name)) return attrs[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(attrs)) if (k.toLowerCase() === lower) return attrs[k];
  return undefined;
}

function valueMatches(v: LinkAttributeValue, value: string, prefix: boolean): boolean {
  if (v === true) return matches('', value, prefix);
  if (v === false) return false;
  if (typeof v === 'number') return matches(String(v), value, prefix);
  if (typeof v === 'string') {
    if (matches(v, value, prefix)) return true;
    if (!/[ \t]/.test(v)) return false;
    return v.split(/[ \t]+/).some((e) => e !== '' && matches(e, value, prefix));
  }
  return v.some((e) => matches(String(e), value, prefix));
}

/**
 * Filters links by `/.well-known/core` query arguments (RFC 6690 §4.1), e.g.
 * the Uri-Query values `['rt=temperature-c']`.
 *
 * Each argument is `name=value` or a bare `name`:
 * - `href=...` matches the link target, any other name the attribute of
 *   that name (names compared case-insensitively);
 * - a value ending in `*` matches by prefix (`rt=temp*`, and `name=*` means
 *   "has the attribute"); otherwise the match is exact;
 * - a space-separated value (`rt="a b"`, `ct="0 40"`) or an array matches if
 *   any element matches (a whole string value may match too);
 * - a flag attribute (`obs`) matches a bare name or an empty / `*` value;
 * - a bare `name` matches links that have the attribute.
 *
 * RFC 6690 requires servers to support one argument; several are ANDed here.
 * Arguments with an empty name are ignored. No arguments: all links.
 */
export function filterLinks(links: readonly Link[], query: readonly string[]): Link[] {
  const filters: { name: string; value: string | undefined; prefix: boolean }[] = [];
  for (const q of query) {
    const eq = q.indexOf('=');
    const name = eq < 0 ? q : q.slice(0, eq);
    if (name === '') continue;
    let value = eq < 0 ? undefined : q.slice(eq + 1);
    let prefix = false;
    if (value !== undefined && value.endsWith('*')) {
      prefix = true;
      value = value.slice(0, -1);
    }
    filters.push({ name, value, prefix });
  }
  if (filters.length === 0) return links.slice();
  return links.filter((link) =>
    filters.every((f) => {
      if (f.name.toLowerCase() === 'href') {
        return f.value === undefined || matches(link.href, f.value, f.prefix);
      }
      const v = attrLookup(link.attributes, f.name);
      if (v === undefined || v === false) return false;
      return f.value === undefined || valueMatches(v, f.value, f.prefix);
    }),
  );
}
