/**
 * Error classes. Every error turbocoap throws for bad input is a {@link CoapError} with a
 * stable upper-case `code`; use `instanceof` or `code` to tell them apart. A mistake in an
 * API argument is a TypeError / RangeError with a Node-style `code` instead
 * ({@link CoapArgTypeError}, {@link CoapArgRangeError}, made by the factories at the end). This module
 * imports nothing (it is the leaf every other module may import).
 * {@link CoapUriError} lives in ./uri and CoapObserveError in ./observe.
 */

/** Base class of all turbocoap errors: every one has a stable upper-case `code`. */
export class CoapError extends Error {
  /** Stable upper-case error name (e.g. `'TIMEOUT'`, `'INVALID_OPTION'`). */
  readonly code: string;
  constructor(message: string, code = 'ERROR', options?: { cause?: unknown }) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    if (options !== undefined && 'cause' in options) {
      Object.defineProperty(this, 'cause', { value: options.cause, writable: true, configurable: true });
    }
  }
}

/** Human-readable explanations of the core's error codes. */
const DESCRIPTIONS: Record<string, string> = {
  TRUNCATED_HEADER: 'fewer bytes than the fixed header needs',
  BAD_VERSION: 'the UDP version field is not 1',
  RESERVED_TKL: 'token length nibble 15 is reserved (RFC 8974)',
  TOKEN_PAST_END: 'the token (or its extended length) runs past the end',
  RESERVED_NIBBLE: 'option delta or length nibble 15 that is not the payload marker',
  OPTION_PAST_END: 'option extension bytes or value run past the end',
  OPTION_NUMBER_OVERFLOW: 'option number above 65535',
  EMPTY_PAYLOAD: 'payload marker 0xFF followed by nothing',
  EMPTY_WITH_CONTENT: 'empty message (code 0.00) with a token, options or payload',
  LENGTH_PAST_END: 'the framed length (or its extension bytes) runs past the end',
  TRAILING_BYTES: 'bytes left after the framed message',
  TOO_MANY_OPTIONS: 'more options than the option table holds',
  MESSAGE_TOO_LARGE: 'message larger than the configured maximum',
  WS_LENGTH: 'WebSocket framing with a non-zero Len nibble',
  BUFFER_TOO_SMALL: 'output buffer too small',
  INVALID: 'an argument is out of range',
  STALE: 'unknown or finished exchange',
  FULL: 'a bounded table is full',
  TIMEOUT: 'no answer in time',
  RESET: 'the peer answered with a Reset (RST)',
  BAD_OPTION: 'the response has an unrecognized critical option',
  UNREACHABLE: 'the peer refused a datagram (ICMP port unreachable)',
};

/** Describes a core error code for messages. */
export function describe(code: string): string {
  return DESCRIPTIONS[code] ?? 'unknown error';
}

/**
 * Thrown by `decode` (and `Deframer#push`) when the input is not a valid
 * CoAP message. `code` is the core's stable error name, for example
 * `'RESERVED_TKL'`, `'OPTION_PAST_END'` or `'MESSAGE_TOO_LARGE'`.
 */
export class CoapParseError extends CoapError {
  constructor(code: string, message?: string) {
    super(message ?? `${code}: ${describe(code)}`, code);
  }
}

/**
 * Thrown by `Deframer#push` when the byte stream is broken. The stream is
 * unusable afterwards; `frames` holds the complete frames that preceded the
 * error in the same push (they are valid and may still be processed).
 */
export class CoapFrameError extends CoapParseError {
  /** Complete frames found in this push before the error. */
  readonly frames: Uint8Array[];
  constructor(code: string, frames: Uint8Array[]) {
    super(code);
    this.frames = frames;
  }
}

/**
 * Thrown by `encode` when a message cannot be encoded. `code` is `'INVALID'`
 * (a field out of range or of the wrong type) or `'BUFFER_TOO_SMALL'`.
 */
export class CoapEncodeError extends CoapError {
  constructor(code: string, message?: string) {
    super(message ?? `${code}: ${describe(code)}`, code);
  }
}

/**
 * An option the application gave (in a request, a response or a notification) cannot be
 * sent: its number is not 0..65535, its value is not bytes, a string or an unsigned
 * integer, or its length is outside what the option registry allows (for example an ETag
 * of 0 or more than 8 bytes; RFC 7252 §5.10). `code` is `'INVALID_OPTION'`.
 */
export class CoapOptionError extends CoapEncodeError {
  /** The option number (NaN when it was not a number). */
  readonly option: number;
  constructor(option: number, message: string) {
    super('INVALID_OPTION', `INVALID_OPTION: ${message}`);
    this.option = option;
  }
}

/** Why a server could not send what a handler returned (see {@link CoapResponseError}). */
export type ResponseFailure = 'NO_RESPONSE' | 'INVALID_CODE' | 'INVALID_PAYLOAD' | 'INVALID_OPTION' | 'TOO_LARGE';

/**
 * A handler (or `notify()`) produced a response the server cannot send. The client gets
 * 5.00 Internal Server Error instead, and this error goes to the server's `onError`:
 *  - `'NO_RESPONSE'`: the handler returned (or resolved to) something that is not an object;
 *  - `'INVALID_CODE'`: the code is not a 2.xx/4.xx/5.xx response code: `'4.04'`, or the raw
 *    CoAP code byte as `code: 0x84` (an HTTP-style number such as 404 is refused);
 *  - `'INVALID_PAYLOAD'`: the payload is not a string, Uint8Array, ArrayBuffer or ArrayBufferView;
 *  - `'INVALID_OPTION'`: an option (contentFormat, maxAge, etag, location, options) is invalid
 *    (`cause` is the {@link CoapOptionError} when there is one);
 *  - `'TOO_LARGE'`: the response does not fit the endpoint's buffers or message size.
 */
export class CoapResponseError extends CoapError {
  declare readonly code: ResponseFailure;
  constructor(code: ResponseFailure, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, code, options);
  }
}

/** Why a server call was refused (see {@link CoapServerError}). */
export type ServerFailure = 'NOT_OBSERVABLE' | 'NOT_LISTENING' | 'ALREADY_LISTENING' | 'TOO_MANY_RESOURCES' | 'UNSUPPORTED_TRANSPORT';

/**
 * A server method was called in a state or with an argument it cannot serve:
 *  - `'NOT_OBSERVABLE'`: `resource(path).notify()` for a path no observable route serves
 *    (without a Router: a path no client registered for);
 *  - `'NOT_LISTENING'`: `notify()` or `address()` before `listen()` or after `close()`;
 *  - `'ALREADY_LISTENING'`: `listen()` for a transport the server listens on already;
 *  - `'UNSUPPORTED_TRANSPORT'`: `listen()` for a transport not built in here (DTLS under WASM);
 *  - `'TOO_MANY_RESOURCES'`: more than 2^31 observable paths.
 */
export class CoapServerError extends CoapError {
  declare readonly code: ServerFailure;
  constructor(code: ServerFailure, message: string) {
    super(`${code}: ${message}`, code);
  }
}

/**
 * A request got no response in time: the CON request was retransmitted
 * MAX_RETRANSMIT times without an acknowledgement, the (separate or NON)
 * response did not come within the response timeout, or the `timeout` given
 * to `request()` elapsed.
 */
export class CoapTimeoutError extends CoapError {
  declare readonly code: 'TIMEOUT';
  constructor(message = 'CoAP request timed out') {
    super(message, 'TIMEOUT');
  }
}

/** The peer answered a request with a Reset (RST) message (RFC 7252 §4.2). */
export class CoapResetError extends CoapError {
  declare readonly code: 'RESET';
  constructor(message = 'the peer answered with a Reset (RST)') {
    super(message, 'RESET');
  }
}

/**
 * The request could not be sent or answered for a reason below CoAP: the
 * host name did not resolve, the socket could not be opened or bound, the
 * endpoint's tables are full, the agent was closed, the response carried
 * an unrecognized critical option, or the peer's port is closed (ICMP port
 * unreachable, native backend on Linux). `code` is a stable upper-case name
 * (`'FULL'`, `'BAD_OPTION'`, `'CLOSED'`, `'ECONNREFUSED'`, or a Node/libuv error
 * code such as `'ENOTFOUND'` or `'EADDRINUSE'`).
 */
export class CoapNetworkError extends CoapError {
  constructor(code: string, message?: string, options?: { cause?: unknown }) {
    super(message ?? `${code}: ${describe(code)}`, code, options);
  }
}

/**
 * A connection of a reliable transport (CoAP over TCP, TLS or WebSockets, RFC 8323; or a
 * DTLS session) failed or ended, and with it the requests outstanding on it. `code`:
 *  - an errno name from the socket: `'ECONNREFUSED'`, `'ECONNRESET'`, `'ETIMEDOUT'`, ...;
 *  - `'ABORTED'`: the peer sent Abort (RFC 8323 §5.6); `'RELEASED'`: the peer released the
 *    connection (Release, §5.5) and closed it; `'CLOSED'`: it closed (either side, or the agent
 *    or server was closed) with requests outstanding; `'TIMEOUT'`: the peer stopped answering
 *    Pings; `'PROTOCOL'`: the peer broke RFC 8323 (no CSM first, a frame too large...);
 *  - TLS: `'HANDSHAKE'` (the handshake failed, e.g. no shared cipher, or the peer refused our
 *    credentials), `'VERIFY'` (a certificate failed verification, or none was sent where one is
 *    required), `'PSK'` (unknown PSK identity or wrong key), `'ALPN'` (the peer does not speak
 *    `coap`), `'TLS_CONFIG'` (our certificate, key, CA or PSK could not be used), `'TLS'`.
 * It is a {@link CoapNetworkError}.
 */
export class CoapConnectionError extends CoapNetworkError {
  constructor(code: string, message?: string, options?: { cause?: unknown }) {
    super(code, message ?? `${code}: the connection failed`, options);
  }
}

/** TC_TLS_E_* (native/driver/tls.h) -> CoapConnectionError codes. */
const TLS_CODES: Readonly<Record<number, string>> = {
  [-102]: 'TLS_CONFIG',
  [-103]: 'TLS_UNSUPPORTED',
  [-104]: 'HANDSHAKE',
  [-105]: 'VERIFY',
  [-106]: 'VERIFY',
  [-107]: 'PSK',
  [-108]: 'ALPN',
  [-109]: 'HANDSHAKE',
  [-110]: 'HANDSHAKE',
  [-111]: 'CLOSED',
};
const TLS_MESSAGES: Readonly<Record<string, string>> = {
  TLS_CONFIG: 'bad TLS configuration (certificate, key, CA bundle or PSK)',
  TLS_UNSUPPORTED: 'a TLS feature this build or OpenSSL lacks',
  HANDSHAKE: 'the TLS/DTLS handshake failed',
  VERIFY: "the peer's certificate failed verification (or none was sent where one is required)",
  PSK: 'unknown identity or wrong key',
  ALPN: 'the peer did not agree on ALPN "coap"',
  CLOSED: 'the secure session was closed',
};

/** The connection error of a TC_TLS_E_* status (-100 and below; native/driver/tls.h). @internal */
export function tlsFailure(status: number): CoapConnectionError {
  const code = TLS_CODES[status] ?? 'TLS';
  return new CoapConnectionError(code, `${code}: ${TLS_MESSAGES[code] ?? `TLS error ${status}`}`);
}

/** Whether a connection error is a TLS/DTLS handshake or certificate failure. */
export function isSecurityFailure(code: string): boolean {
  return code === 'HANDSHAKE' || code === 'VERIFY' || code === 'PSK' || code === 'ALPN' || code === 'TLS_CONFIG' || code === 'TLS';
}

/**
 * A URL's scheme names a transport this client does not speak (it speaks `coap://`,
 * `coap+tcp://`, `coaps+tcp://`, `coap+ws://`, `coaps+ws://`, and `coaps://` where DTLS is
 * built in). `code` is `'UNSUPPORTED_SCHEME'`; `scheme` is the URL's.
 */
export class CoapSchemeError extends CoapError {
  declare readonly code: 'UNSUPPORTED_SCHEME';
  /** The scheme, e.g. `'coaps'`. */
  readonly scheme: string;
  /** @param reason why there is no transport for it here (default: none is built in). */
  constructor(scheme: string, reason?: string) {
    super(`UNSUPPORTED_SCHEME: ${JSON.stringify(scheme)}: ${reason ?? 'no transport for this scheme here'}`, 'UNSUPPORTED_SCHEME');
    this.scheme = scheme;
  }
}

/**
 * The request was cancelled through its AbortSignal. Like DOM aborts, its
 * `name` is `'AbortError'`; `cause` is the signal's reason.
 */
export class CoapAbortError extends CoapError {
  declare readonly code: 'ABORTED';
  constructor(message = 'the request was aborted', options?: { cause?: unknown }) {
    super(message, 'ABORTED', options);
    this.name = 'AbortError';
  }
}

/** Why a block-wise transfer failed (see {@link CoapBlockwiseError}). */
export type BlockwiseFailure = 'TOO_LARGE' | 'INCOMPLETE' | 'CHANGED' | 'PROTOCOL';

/**
 * A block-wise transfer (RFC 7959) failed. `code` says why:
 *  - `'TOO_LARGE'`: the server refused the upload with 4.13 Request Entity Too Large (`size`
 *    is the largest body it accepts when it sent Size1), or the response body is larger than
 *    the request's `maxBodySize` (`size` is the announced Size2, when there was one);
 *  - `'INCOMPLETE'`: the server lost the upload (4.08 Request Entity Incomplete);
 *  - `'CHANGED'`: the representation kept changing during the download (its ETag or code
 *    differed between blocks more often than the client restarts);
 *  - `'PROTOCOL'`: the server broke RFC 7959 (a Block option of bad length, a block of the
 *    wrong size, 2.31 to the last block...), or kept answering with blocks not asked for.
 */
export class CoapBlockwiseError extends CoapError {
  declare readonly code: BlockwiseFailure;
  /** Which way the body was moving. */
  readonly direction: 'upload' | 'download';
  /** The code of the response that ended the transfer (e.g. `'4.13'`), if one did. */
  readonly responseCode: string | undefined;
  /** Size1 of a 4.13 (the server's limit), or Size2 of a download over `maxBodySize`. */
  readonly size: number | undefined;
  /** Body bytes acknowledged (upload) or received (download) before the failure. */
  readonly bytes: number;
  constructor(
    code: BlockwiseFailure,
    direction: 'upload' | 'download',
    message: string,
    info: { responseCode?: string; size?: number; bytes?: number } = {},
  ) {
    super(message, code);
    this.direction = direction;
    this.responseCode = info.responseCode;
    this.size = info.size;
    this.bytes = info.bytes ?? 0;
  }
}

/** Node-style codes of the argument errors (see {@link CoapArgTypeError}). */
export type ArgErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE' | 'ERR_MEMORY_ALLOCATION_FAILED';

/**
 * A mistake in an API argument: the wrong type (`code` `'ERR_INVALID_ARG_TYPE'`) or a value
 * not allowed (`'ERR_INVALID_ARG_VALUE'`). Like Node's own, it is a TypeError.
 */
export class CoapArgTypeError extends TypeError {
  readonly code: ArgErrorCode;
  constructor(code: ArgErrorCode, message: string) {
    super(message);
    this.name = 'TypeError';
    this.code = code;
  }
}

/**
 * An API argument out of its range (`code` `'ERR_OUT_OF_RANGE'`, or `'ERR_INVALID_ARG_VALUE'`
 * for a value that is not one of those allowed). Like Node's own, it is a RangeError.
 */
export class CoapArgRangeError extends RangeError {
  readonly code: ArgErrorCode;
  constructor(code: ArgErrorCode, message: string) {
    super(message);
    this.name = 'RangeError';
    this.code = code;
  }
}

/** Shows a received argument in a message. */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (v !== null && typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}

/** `name` has the wrong type: TypeError ERR_INVALID_ARG_TYPE. @internal */
export function invalidArgType(name: string, expected: string, actual: unknown): CoapArgTypeError {
  return new CoapArgTypeError('ERR_INVALID_ARG_TYPE', `${name} must be ${expected}, not ${shown(actual)}`);
}

/** `name` has a value not allowed: TypeError ERR_INVALID_ARG_VALUE. @internal */
export function invalidArgValue(name: string, expected: string, actual: unknown): CoapArgTypeError {
  return new CoapArgTypeError('ERR_INVALID_ARG_VALUE', `${name} must be ${expected}, not ${shown(actual)}`);
}

/** `name` is out of range: RangeError ERR_OUT_OF_RANGE (or ERR_INVALID_ARG_VALUE). @internal */
export function outOfRange(name: string, expected: string, actual: unknown, code: ArgErrorCode = 'ERR_OUT_OF_RANGE'): CoapArgRangeError {
  return new CoapArgRangeError(code, `${name} must be ${expected}, not ${shown(actual)}`);
}

/** An optional boolean argument that is neither undefined nor a boolean (no truthy strings): its TypeError ERR_INVALID_ARG_TYPE. @internal */
export function notBoolean(name: string, v: unknown): CoapArgTypeError | undefined {
  return v !== undefined && typeof v !== 'boolean' ? invalidArgType(name, 'a boolean', v) : undefined;
}
