/**
 * The one IP address parser and formatter of the TypeScript side: URIs, the client's
 * targets, the server's listen address and the drivers' records all use it. No Node
 * built-ins (the browser bundle includes it). Addresses are 16 bytes in network order, IPv4
 * in the first 4.
 */

/**
 * Parses a dotted-decimal IPv4 address strictly (RFC 3986 dec-octet: four parts, no leading
 * zeros) into out[at..at+4); false (out unspecified) if `s` is not one.
 */
export function parseIPv4(s: string, out: Uint8Array, at = 0): boolean {
  let part = 0;
  let digits = 0;
  let k = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || k > 3) return false;
      out[at + k++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return false; // leading zero
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return false;
    } else {
      return false;
    }
  }
  return k === 4;
}

function hexGroup(s: string, a: number, b: number): number {
  if (b <= a || b - a > 4) return -1;
  let v = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/** Groups of one side of `::` into g from index `from`; the count, or -1. */
function groups(s: string, a: number, b: number, g: number[], allowV4: boolean): number {
  if (a === b) return 0;
  let n = 0;
  let start = a;
  for (let i = a; i <= b; i++) {
    if (i < b && s.charCodeAt(i) !== 0x3a) continue;
    const last = i === b;
    if (last && allowV4 && s.lastIndexOf('.', b) >= start) {
      const v4 = new Uint8Array(4);
      if (!parseIPv4(s.slice(start, b), v4)) return -1;
      g.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      return n + 2;
    }
    const v = hexGroup(s, start, i);
    if (v < 0) return -1;
    g.push(v);
    n++;
    start = i + 1;
  }
  return n;
}

/**
 * Parses an IPv6 address (RFC 4291 §2.2 text forms, without brackets; a `%zone` suffix is
 * ignored, see {@link splitZone}) into out[at..at+16); false if `s` is not one.
 */
export function parseIPv6(s: string, out: Uint8Array, at = 0): boolean {
  const pct = s.indexOf('%');
  const end = pct >= 0 ? pct : s.length;
  if (end === 0 || end > 45) return false;
  const dbl = s.indexOf('::');
  const g: number[] = [];
  if (dbl < 0 || dbl >= end) {
    if (groups(s, 0, end, g, true) !== 8) return false;
  } else {
    if (s.indexOf('::', dbl + 1) >= 0 && s.indexOf('::', dbl + 1) < end) return false;
    const head: number[] = [];
    const tail: number[] = [];
    if (groups(s, 0, dbl, head, false) < 0 || groups(s, dbl + 2, end, tail, true) < 0) return false;
    if (head.length + tail.length > 7) return false;
    g.push(...head);
    for (let i = head.length + tail.length; i < 8; i++) g.push(0);
    g.push(...tail);
  }
  for (let i = 0; i < 8; i++) {
    const v = g[i] as number;
    out[at + 2 * i] = v >> 8;
    out[at + 2 * i + 1] = v & 0xff;
  }
  return true;
}

/** `'fe80::1%eth0'` → `['fe80::1', 'eth0']`; no zone: `[s, undefined]`. */
export function splitZone(s: string): [string, string | undefined] {
  const pct = s.indexOf('%');
  return pct < 0 ? [s, undefined] : [s.slice(0, pct), s.slice(pct + 1)];
}

/** 4 for an IPv4 address, 6 for an IPv6 one (a `%zone` allowed), else 0 (like node:net isIP). */
export function ipFamily(s: string): 0 | 4 | 6 {
  const tmp = new Uint8Array(16);
  if (parseIPv4(s, tmp)) return 4;
  if (parseIPv6(s, tmp)) return 6;
  return 0;
}

/** A parsed address: family, 16 bytes (IPv4 in the first 4) and the IPv6 zone, if any. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly zone: string | undefined;
}

/** Parses an IPv4 or IPv6 address (with an optional `%zone`); undefined if `s` is neither. */
export function parseIp(s: string): IpAddress | undefined {
  const bytes = new Uint8Array(16);
  if (parseIPv4(s, bytes)) return { family: 4, bytes, zone: undefined };
  if (parseIPv6(s, bytes)) return { family: 6, bytes, zone: splitZone(s)[1] };
  return undefined;
}

/** Dotted-decimal text of b[at..at+4). */
export function formatIPv4(b: ArrayLike<number>, at = 0): string {
  return `${b[at] as number}.${b[at + 1] as number}.${b[at + 2] as number}.${b[at + 3] as number}`;
}

/**
 * RFC 5952 canonical text of the IPv6 address b[at..at+16): lower-case hex, the longest run
 * of two or more zero groups (the first on ties) as `::`, IPv4-mapped addresses
 * (`::ffff:0:0/96`) in mixed notation.
 */
export function formatIPv6(b: ArrayLike<number>, at = 0): string {
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = ((b[at + 2 * i] as number) << 8) | (b[at + 2 * i + 1] as number);
  const mapped = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
  const hexGroups = mapped ? 6 : 8;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < hexGroups; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < hexGroups && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < hexGroups; i++) {
    if (i === best) {
      out += i === 0 ? '::' : ':';
      i += bestLen - 1;
      continue;
    }
    out += (g[i] as number).toString(16);
    if (i < hexGroups - 1) out += ':';
  }
  if (mapped) {
    if (!out.endsWith(':')) out += ':';
    out += formatIPv4(b, at + 12);
  }
  return out;
}

/** Text of a family-4 or -6 address in b[at..): {@link formatIPv4} or {@link formatIPv6}. */
export function formatIp(family: 4 | 6, b: ArrayLike<number>, at = 0): string {
  return family === 4 ? formatIPv4(b, at) : formatIPv6(b, at);
}

/** Canonical text (RFC 5952) of an IPv6 address (a `%zone` suffix kept as is), or undefined. */
export function canonicalIPv6(s: string): string | undefined {
  const b = new Uint8Array(16);
  if (!parseIPv6(s, b)) return undefined;
  const pct = s.indexOf('%');
  return formatIPv6(b) + (pct < 0 ? '' : s.slice(pct));
}
