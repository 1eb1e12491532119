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
