/**
 * Request methods and code names: RFC 7252 §12.1, RFC 7959 (block-wise),
 * RFC 8132 (FETCH/PATCH/iPATCH), RFC 8516 (Too Many Requests), RFC 8768
 * (Hop-Limit) and the RFC 8323 §5 signal codes.
 *
 * Codes are accepted either as numbers (`class << 5 | detail`, 0..255) or as
 * `'c.dd'` strings, the same two forms the codec uses.
 */
import { CODE_STRINGS, codeNumberOrInvalid } from './codes';
import { outOfRange } from './errors';

/** A CoAP request method (RFC 7252 §5.8, RFC 8132). */
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH' | 'PATCH' | 'iPATCH';

/** Every method, in code order (0.01 .. 0.07). */
export const METHODS: readonly Method[] = Object.freeze([
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'FETCH',
  'PATCH',
  'iPATCH',
] as Method[]);

/** Method → code number (0.01 = 1 .. 0.07 = 7). */
export const METHOD_CODES: Readonly<Record<Method, number>> = Object.freeze({
  GET: 1,
  POST: 2,
  PUT: 3,
  DELETE: 4,
  FETCH: 5,
  PATCH: 6,
  iPATCH: 7,
});

/**
 * Index of a method in {@link METHODS} (0..6), or -1 if `m` is not a method
 * name (names are case-sensitive: `'iPATCH'`, not `'IPATCH'`). Allocation-free.
 */
export function methodIndex(m: string): number {
  switch (m) {
    case 'GET':
      return 0;
    case 'POST':
      return 1;
    case 'PUT':
      return 2;
    case 'DELETE':
      return 3;
    case 'FETCH':
      return 4;
    case 'PATCH':
      return 5;
    case 'iPATCH':
      return 6;
    default:
      return -1;
  }
}

/** A method name as requests and routes accept it: `'GET'`, or in lower case `'get'`. */
export type MethodName = Method | Lowercase<Method>;

/** Index of a method name in any letter case (`'get'`, `'Get'`, `'ipatch'`), or -1. */
export function methodIndexAnyCase(m: string): number {
  const i = methodIndex(m);
  if (i >= 0 || typeof m !== 'string' || m.length > 6) return i;
  const u = m.toUpperCase();
  return u === 'IPATCH' ? 6 : methodIndex(u);
}

/** Whether `m` is one of the {@link Method} names. */
export function isMethod(m: unknown): m is Method {
  return typeof m === 'string' && methodIndex(m) >= 0;
}

/** The code number of a method, e.g. `'GET'` → 1 (0.01). */
export function methodToCode(m: Method): number {
  const i = methodIndex(m);
  if (i < 0) throw outOfRange('method', 'a CoAP method name', m, 'ERR_INVALID_ARG_VALUE');
  return i + 1;
}

/**
 * The method of a request code (`1` or `'0.01'` → `'GET'`), or undefined for
 * any other code (including unassigned request codes 0.08..0.31).
 */
export function codeToMethod(code: number | string): Method | undefined {
  const n = toCodeNumber(code);
  return n >= 1 && n <= 7 ? METHODS[n - 1] : undefined;
}

/**
 * Names of the response codes, keyed by `'c.dd'`: every code of RFC 7252
 * §12.1.2 plus 2.31 Continue and 4.08 (RFC 7959), 4.09 and 4.22 (RFC 8132),
 * 4.29 (RFC 8516) and 5.08 (RFC 8768).
 */
export const RESPONSE_CODE_NAMES = Object.freeze({
  '2.01': 'Created',
  '2.02': 'Deleted',
  '2.03': 'Valid',
  '2.04': 'Changed',
  '2.05': 'Content',
  '2.31': 'Continue',
  '4.00': 'Bad Request',
  '4.01': 'Unauthorized',
  '4.02': 'Bad Option',
  '4.03': 'Forbidden',
  '4.04': 'Not Found',
  '4.05': 'Method Not Allowed',
  '4.06': 'Not Acceptable',
  '4.08': 'Request Entity Incomplete',
  '4.09': 'Conflict',
  '4.12': 'Precondition Failed',
  '4.13': 'Request Entity Too Large',
  '4.15': 'Unsupported Content-Format',
  '4.22': 'Unprocessable Entity',
  '4.29': 'Too Many Requests',
  '5.00': 'Internal Server Error',
  '5.01': 'Not Implemented',
  '5.02': 'Bad Gateway',
  '5.03': 'Service Unavailable',
  '5.04': 'Gateway Timeout',
  '5.05': 'Proxying Not Supported',
  '5.08': 'Hop Limit Reached',
} as const);

/** Names of the RFC 8323 §5 signal codes, keyed by `'c.dd'`. */
export const SIGNAL_CODE_NAMES: Readonly<Record<string, string>> = Object.freeze({
  '7.01': 'CSM',
  '7.02': 'Ping',
  '7.03': 'Pong',
  '7.04': 'Release',
  '7.05': 'Abort',
});

/** A response code string that has a registered name, e.g. `'4.04'`. */
export type ResponseCode = keyof typeof RESPONSE_CODE_NAMES;

const ALL_NAMES: Readonly<Record<string, string | undefined>> = { ...RESPONSE_CODE_NAMES, ...SIGNAL_CODE_NAMES };

/**
 * The registered name of any code: `'0.00'` → `'Empty'`, request codes →
 * their method, response codes → e.g. `'Not Found'`, signal codes → e.g.
 * `'Ping'`. Undefined for unassigned or invalid codes.
 */
export function codeName(code: number | string): string | undefined {
  const n = toCodeNumber(code);
  if (n < 0) return undefined;
  if (n === 0) return 'Empty';
  if (n <= 7) return METHODS[n - 1];
  const s = CODE_STRINGS[n];
  return s === undefined ? undefined : ALL_NAMES[s];
}

/** Request code: class 0 with a non-zero detail (0.01..0.31). */
export function isRequestCode(code: number | string): boolean {
  const n = toCodeNumber(code);
  return n >= 1 && n <= 31;
}

/** Response code: class 2, 4 or 5 (any detail). */
export function isResponseCode(code: number | string): boolean {
  const n = toCodeNumber(code);
  if (n < 0) return false;
  const c = n >> 5;
  return c === 2 || c === 4 || c === 5;
}

/** Success response code: class 2. */
export function isSuccessCode(code: number | string): boolean {
  return toCodeNumber(code) >> 5 === 2;
}

/** Signal code: class 7 (RFC 8323 §5; only valid on reliable transports). */
export function isSignalCode(code: number | string): boolean {
  return toCodeNumber(code) >> 5 === 7;
}

/** Empty message code 0.00. */
export function isEmptyCode(code: number | string): boolean {
  return toCodeNumber(code) === 0;
}

/** Code number of a number or 'c.dd' string, or -1 if invalid. */
function toCodeNumber(code: number | string): number {
  if (typeof code === 'number') return Number.isInteger(code) && code >= 0 && code <= 255 ? code : -1;
  return typeof code === 'string' ? codeNumberOrInvalid(code) : -1;
}
