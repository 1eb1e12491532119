/** The CoAP option registry (read from the C core) and option value helpers. */
import type { RawOptionDef } from './backend/types';
import { codeNumberOrInvalid } from './codes';
import { loadWasmBackend } from './backend/wasm';
import { defaultBackend, hasBackendProvider } from './state';
import { outOfRange } from './errors';

/** Option numbers of the ordinary options in the registry (RFC 7252 §12.2 and later RFCs). */
export const OptionNumber = {
  IfMatch: 1,
  UriHost: 3,
  ETag: 4,
  IfNoneMatch: 5,
  Observe: 6,
  UriPort: 7,
  LocationPath: 8,
  OSCORE: 9,
  UriPath: 11,
  ContentFormat: 12,
  MaxAge: 14,
  UriQuery: 15,
  HopLimit: 16,
  Accept: 17,
  QBlock1: 19,
  LocationQuery: 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  QBlock2: 31,
  ProxyUri: 35,
  ProxyScheme: 39,
  Size1: 60,
  Echo: 252,
  NoResponse: 258,
  RequestTag: 292,
} as const;

/** Option numbers of the RFC 8323 §5 signaling options (valid only in 7.xx messages). */
export const SignalingOptionNumber = {
  /** 7.01 CSM */
  MaxMessageSize: 2,
  /** 7.01 CSM */
  BlockWiseTransfer: 4,
  /** 7.02 Ping, 7.03 Pong */
  Custody: 2,
  /** 7.04 Release */
  AlternativeAddress: 2,
  /** 7.04 Release */
  HoldOff: 4,
  /** 7.05 Abort */
  BadCSMOption: 2,
} as const;

/** Option value formats (RFC 7252 §3.2). */
export type OptionFormat = 'empty' | 'opaque' | 'uint' | 'string';

/** What the registry knows about an option. */
export interface OptionInfo {
  /** Option number. */
  readonly number: number;
  /** Registered name, e.g. `'Uri-Path'`. */
  readonly name: string;
  /** Value format. */
  readonly format: OptionFormat;
  /** Smallest valid value length in bytes. */
  readonly minLength: number;
  /** Largest valid value length in bytes. */
  readonly maxLength: number;
  /** Whether the option may occur more than once. */
  readonly repeatable: boolean;
  /** Critical (odd number; RFC 7252 §5.4.1). */
  readonly critical: boolean;
  /** Unsafe to forward (RFC 7252 §5.4.2). */
  readonly unsafe: boolean;
  /** NoCacheKey (RFC 7252 §5.4.2). */
  readonly noCacheKey: boolean;
  /** For an RFC 8323 signaling option, the signal code it belongs to (e.g. `'7.01'`); else undefined. */
  readonly signalCode: string | undefined;
}

const FORMATS: readonly OptionFormat[] = ['empty', 'opaque', 'uint', 'string'];

/** Lookup tables built from the core's registry. @internal */
export interface Registry {
  readonly entries: readonly OptionInfo[];
  /** key: signal code (0 for ordinary) * 65536 + number → entry index */
  readonly byKey: ReadonlyMap<number, number>;
  readonly byName: ReadonlyMap<string, number>;
}

/** Critical option (odd number). */
export function isCritical(number: number): boolean {
  return (number & 1) === 1;
}
/** Unsafe-to-forward option. */
export function isUnsafe(number: number): boolean {
  return (number & 2) === 2;
}
/** NoCacheKey option. */
export function isNoCacheKey(number: number): boolean {
  return (number & 0x1e) === 0x1c;
}

/** Builds the lookup tables from raw registry entries. @internal */
export function buildRegistry(raw: readonly RawOptionDef[]): Registry {
  const entries: OptionInfo[] = [];
  const byKey = new Map<number, number>();
  const byName = new Map<string, number>();
  raw.forEach((r, i) => {
    const sc = r.signalCode;
    entries.push(
      Object.freeze({
        number: r.number,
        name: r.name,
        format: FORMATS[r.format] ?? 'opaque',
        minLength: r.minLength,
        maxLength: r.maxLength,
        repeatable: r.repeatable !== 0,
        critical: isCritical(r.number),
        unsafe: isUnsafe(r.number),
        noCacheKey: isNoCacheKey(r.number),
        signalCode: sc === 0 ? undefined : `${sc >> 5}.${String(sc & 31).padStart(2, '0')}`,
      }),
    );
    const key = sc * 65536 + r.number;
    if (!byKey.has(key)) byKey.set(key, i);
    // Ordinary names win over signaling names (they never clash today).
    if (!byName.has(r.name) || sc === 0) byName.set(r.name, r.number);
    const lower = r.name.toLowerCase();
    if (!byName.has(lower)) byName.set(lower, r.number);
  });
  return { entries, byKey, byName };
}

/**
 * Registry index for (code, number), mirroring tc_option_find: the signal
 * codes 7.01..7.05 select their signaling options, every other code the
 * ordinary ones. @internal
 */
export function findIndex(reg: Registry, code: number, number: number): number {
  const sc = code >= 0xe1 && code <= 0xe5 ? code : 0;
  const i = reg.byKey.get(sc * 65536 + number);
  return i === undefined ? -1 : i;
}

let registry: Registry | undefined;

function defaultRegistry(): Registry {
  // Without an entry point (internal use, e.g. a server built from ts/server directly), the
  // registry comes from the WebAssembly build of the same C table.
  return (registry ??= buildRegistry((hasBackendProvider() ? defaultBackend() : loadWasmBackend()).optionRegistry()));
}

let lengths: Map<number, number> | undefined;

/**
 * Value length bounds of an ordinary (non-signaling) registered option, packed as
 * `min << 16 | max`, or -1 for an unregistered number (cached from the core's registry). @internal
 */
export function optionLengths(number: number): number {
  if (lengths === undefined) {
    lengths = new Map();
    for (const e of defaultRegistry().entries) {
      if (e.signalCode === undefined && !lengths.has(e.number)) lengths.set(e.number, (e.minLength << 16) | e.maxLength);
    }
  }
  return lengths.get(number) ?? -1;
}

/**
 * Looks up an option in the registry.
 *
 * @param number the option number.
 * @param code the code of the message it appears in (`'c.dd'` or a number);
 *   signaling codes 7.01..7.05 select the RFC 8323 signaling options, which
 *   reuse small numbers. Default: an ordinary request/response.
 * @returns the option's definition, or undefined if it is not registered.
 */
export function optionInfo(number: number, code?: string | number): OptionInfo | undefined {
  const c = code === undefined ? 0 : typeof code === 'number' ? code : codeNumberOrInvalid(code);
  const reg = defaultRegistry();
  const i = findIndex(reg, c, number);
  return i < 0 ? undefined : reg.entries[i];
}

/**
 * The number of a registered option by name, e.g. `'Uri-Path'` → 11 (names
 * are matched exactly or in lower case).
 */
export function optionNumber(name: string): number | undefined {
  const reg = defaultRegistry();
  return reg.byName.get(name) ?? reg.byName.get(name.toLowerCase());
}

/** All registry entries, in the core's order. */
export function optionRegistry(): readonly OptionInfo[] {
  return defaultRegistry().entries;
}

/**
 * Encodes a uint option value (RFC 7252 §3.2): big-endian, shortest form
 * (0 is the empty value).
 * @throws RangeError unless `n` is an integer in 0..Number.MAX_SAFE_INTEGER.
 */
export function encodeUint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw outOfRange('uint option value', 'a safe integer >= 0', n);
  let len = 0;
  for (let v = n; v > 0; v = Math.floor(v / 256)) len++;
  const out = new Uint8Array(len);
  for (let i = len - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

/**
 * Decodes a uint option value (big-endian, leading zeros allowed; empty is 0).
 * @throws RangeError if the value exceeds Number.MAX_SAFE_INTEGER.
 */
export function decodeUint(b: Uint8Array): number {
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    v = v * 256 + b[i];
    if (v > Number.MAX_SAFE_INTEGER) throw outOfRange('uint option value', `at most ${Number.MAX_SAFE_INTEGER}`, v);
  }
  return v;
}
