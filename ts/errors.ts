/**
 * Error classes. Every error turbocoap throws for bad input is a
 * {@link CoapError}; use `instanceof` to tell them apart.
 */
import type { IncomingResponse } from './incoming';

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
  /** Stable upper-case reason. */
  readonly code: BlockwiseFailure;
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
    super(message);
    this.code = code;
    this.direction = direction;
    this.responseCode = info.responseCode;
    this.size = info.size;
    this.bytes = info.bytes ?? 0;
  }
}

/**
 * An observation (RFC 7641) ended with an error response: the server refused the
 * registration, or ended the observation with a 4.xx/5.xx notification (§3.2). `response` is
 * that response.
 */
export class CoapObserveError extends CoapError {
  /** Stable upper-case error name: `'OBSERVE_ENDED'`. */
  readonly code = 'OBSERVE_ENDED';
  /** The error response (its `code`, e.g. `'4.04'`, options and diagnostic payload). */
  readonly response: IncomingResponse;
  constructor(response: IncomingResponse, message?: string) {
    super(message ?? `the observation ended with ${response.code}`);
    this.response = response;
  }
}
