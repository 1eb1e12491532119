/**
 * Error classes. Every error turbocoap throws for bad input is a
 * {@link CoapError}; use `instanceof` to tell them apart.
 */

/** Base class of all turbocoap errors. */
export class CoapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
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
  /** Stable upper-case error name from the C core (tc_error_name). */
  readonly code: string;
  constructor(code: string, message?: string) {
    super(message ?? `${code}: ${describe(code)}`);
    this.code = code;
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
  /** Stable upper-case error name (tc_error_name). */
  readonly code: string;
  constructor(code: string, message?: string) {
    super(message ?? `${code}: ${describe(code)}`);
    this.code = code;
  }
}

/**
 * A request got no response in time: the CON request was retransmitted
 * MAX_RETRANSMIT times without an acknowledgement, the (separate or NON)
 * response did not come within the response timeout, or the `timeout` given
 * to `request()` elapsed.
 */
export class CoapTimeoutError extends CoapError {
  /** Stable upper-case error name: `'TIMEOUT'`. */
  readonly code = 'TIMEOUT';
  constructor(message = 'CoAP request timed out') {
    super(message);
  }
}

/** The peer answered a request with a Reset (RST) message (RFC 7252 §4.2). */
export class CoapResetError extends CoapError {
  /** Stable upper-case error name: `'RESET'`. */
  readonly code = 'RESET';
  constructor(message = 'the peer answered with a Reset (RST)') {
    super(message);
  }
}

/**
 * The request could not be sent or answered for a reason below CoAP: the
 * host name did not resolve, the socket could not be opened or bound, the
 * endpoint's tables are full, the agent was closed, or the response carried
 * an unrecognized critical option. `code` is a stable upper-case name
 * (`'FULL'`, `'BAD_OPTION'`, `'CLOSED'`, or a Node/libuv error code such as
 * `'ENOTFOUND'` or `'EADDRINUSE'`).
 */
export class CoapNetworkError extends CoapError {
  /** Stable upper-case error name. */
  readonly code: string;
  constructor(code: string, message?: string, options?: { cause?: unknown }) {
    super(message ?? `${code}: ${describe(code)}`);
    this.code = code;
    if (options !== undefined && 'cause' in options) {
      Object.defineProperty(this, 'cause', { value: options.cause, writable: true, configurable: true });
    }
  }
}

/**
 * The request was cancelled through its AbortSignal. Like DOM aborts, its
 * `name` is `'AbortError'`; `cause` is the signal's reason.
 */
export class CoapAbortError extends CoapError {
  /** Stable upper-case error name: `'ABORTED'`. */
  readonly code = 'ABORTED';
  constructor(message = 'the request was aborted', options?: { cause?: unknown }) {
    super(message);
    this.name = 'AbortError';
    if (options !== undefined && 'cause' in options) {
      Object.defineProperty(this, 'cause', { value: options.cause, writable: true, configurable: true });
    }
  }
}
