/**
 * decode / encode / Deframer, written once over the {@link Backend} contract.
 *
 * Decode: one backend call fills the scratch table (tc_msg + tc_opt entries,
 * offsets into the input); the result object is built from it with views over
 * the caller's input (zero copy). Encode: the message is written into the
 * scratch (table + bytes), one backend call encodes, and the output is copied
 * out.
 */
import type { Backend, DeframerHandle } from './backend/types';
import { ERROR_COUNT, MSG_WORDS, OPT_WORDS } from './backend/types';
import { CODE_STRINGS, TYPE_NAMES, codeNumberOrInvalid, transportNumber } from './codes';
import type { MessageType, Transport } from './codes';
import { CoapArgRangeError, CoapEncodeError, CoapFrameError, CoapParseError, invalidArgType, invalidArgValue, outOfRange } from './errors';

/** One option: its number and raw value. */
export interface CoapOption {
  /** Option number, 0..65535. */
  number: number;
  /** Raw value bytes (see encodeUint/decodeUint for uint options). */
  value: Uint8Array;
}

/** A CoAP message, as decoded or to be encoded. */
export interface CoapMessage {
  /** Message type (UDP only; encode defaults to 'CON'). */
  type?: MessageType;
  /** Message ID 0..65535 (UDP only; encode defaults to 0). */
  messageId?: number;
  /** Code as 'c.dd', e.g. '0.01' (GET), '2.05' (Content), '7.01' (CSM). */
  code: string;
  /** Token, 0..65804 bytes (RFC 8974). */
  token: Uint8Array;
  /** Options in wire order (ascending numbers); encode sorts them stably by number. */
  options: CoapOption[];
  /** Payload (empty when absent). */
  payload: Uint8Array;
}

/** Options for decode and encode. */
export interface CodecOptions {
  /** Wire framing; default 'udp'. */
  transport?: Transport;
}

/** Options for a {@link Deframer}. */
export interface DeframerOptions {
  /**
   * Largest accepted message in bytes, header included (default 1152, the
   * RFC 8323 §5.3.1 default Max-Message-Size). A larger message makes push()
   * throw CoapFrameError('MESSAGE_TOO_LARGE').
   */
  maxMessageSize?: number;
}

const TC_E_TOO_MANY_OPTIONS = -12;
const TC_FRAME_BUFFER = 1;

/** Shared empty value for absent tokens, option values and payloads (length 0: immutable). */
const EMPTY = new Uint8Array(0);

const TYPE_NUMBERS: { readonly [k: string]: number | undefined } = { CON: 0, NON: 1, ACK: 2, RST: 3 };

/** Copies src into dst at pos; a loop beats TypedArray#set for short values. */
function put(dst: Uint8Array, pos: number, src: Uint8Array): void {
  const n = src.length;
  if (n > 24) dst.set(src, pos);
  else for (let i = 0; i < n; i++) dst[pos + i] = src[i];
}

/** A Uint8Array (or Buffer), also one from another realm (vm context, iframe). */
function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array || (ArrayBuffer.isView(v) && Object.prototype.toString.call(v) === '[object Uint8Array]');
}

function invalid(what: string): CoapEncodeError {
  return new CoapEncodeError('INVALID', `INVALID: ${what}`);
}

/** A codec bound to one backend. @internal */
export class Codec {
  readonly backend: Backend;
  private readonly errorNames: string[];

  constructor(backend: Backend) {
    this.backend = backend;
    this.errorNames = [];
    for (let i = 1; i <= ERROR_COUNT; i++) this.errorNames.push(backend.errorName(-i));
  }

  /** Stable name of a negative core error code. */
  errorName(rc: number): string {
    return this.errorNames[-rc - 1] ?? 'UNKNOWN';
  }

  decode(input: Uint8Array, opts?: CodecOptions): CoapMessage {
    if (!isBytes(input)) throw invalidArgType('decode: input', 'a Uint8Array', input);
    const transport = opts === undefined ? 0 : transportNumber(opts.transport);
    if (transport < 0) throw invalidArgValue('decode: transport', 'a known transport', opts?.transport);
    const be = this.backend;
    let rc = be.decode(input, transport);
    let t = be.table; // valid: decode() re-validated it
    if (rc < 0) {
      // More options than the scratch table holds: retry with a table sized
      // for the input (a message of n bytes has at most n options).
      if (rc === TC_E_TOO_MANY_OPTIONS && input.length > be.optCap) {
        const r = be.decodeLarge(input, transport, input.length);
        rc = r.rc;
        t = r.table;
      }
      if (rc < 0) throw new CoapParseError(this.errorName(rc));
    }
    const ab = input.buffer;
    const base = input.byteOffset;
    const options: CoapOption[] = new Array(rc);
    for (let i = 0, w = MSG_WORDS; i < rc; i++, w += OPT_WORDS) {
      const len = t[w + 2];
      options[i] = { number: t[w], value: len === 0 ? EMPTY : new Uint8Array(ab, base + t[w + 1], len) };
    }
    const tokenLength = t[4];
    const payloadLength = t[7];
    const token = tokenLength === 0 ? EMPTY : new Uint8Array(ab, base + t[3], tokenLength);
    const payload = payloadLength === 0 ? EMPTY : new Uint8Array(ab, base + t[6], payloadLength);
    if (transport === 0) {
      return { type: TYPE_NAMES[t[0]], messageId: t[2], code: CODE_STRINGS[t[1]], token, options, payload };
    }
    return { code: CODE_STRINGS[t[1]], token, options, payload };
  }

  encode(msg: CoapMessage, opts?: CodecOptions): Uint8Array {
    const transport = opts === undefined ? 0 : transportNumber(opts.transport);
    if (transport < 0) throw invalidArgValue('encode: transport', 'a known transport', opts?.transport);
    if (msg === null || typeof msg !== 'object') throw invalid('message must be an object');
    const code = codeNumberOrInvalid(msg.code);
    if (code < 0) throw invalid(`code ${JSON.stringify(msg.code)} (expected 'c.dd')`);
    let type = 0;
    let messageId = 0;
    if (transport === 0) {
      if (msg.type !== undefined) {
        const n = TYPE_NUMBERS[msg.type];
        if (n === undefined) throw invalid(`type ${JSON.stringify(msg.type)}`);
        type = n;
      }
      if (msg.messageId !== undefined) {
        messageId = msg.messageId;
        if (messageId >>> 0 !== messageId) throw invalid(`messageId ${messageId}`);
      }
    }
    const token = msg.token ?? EMPTY;
    const payload = msg.payload ?? EMPTY;
    const options = msg.options ?? [];
    if (!isBytes(token)) throw invalid('token must be a Uint8Array');
    if (!isBytes(payload)) throw invalid('payload must be a Uint8Array');
    if (!Array.isArray(options)) throw invalid('options must be an array');
    const count = options.length;
    let srcLength = token.length + payload.length;
    for (let i = 0; i < count; i++) {
      const o = options[i];
      if (o === null || typeof o !== 'object' || !isBytes(o.value)) {
        throw invalid(`option ${i}: value must be a Uint8Array`);
      }
      const n = o.number;
      if (n >>> 0 !== n) throw invalid(`option ${i}: number ${n}`);
      srcLength += o.value.length;
    }
    // Output bound: header <= 8 + token, each option <= 5 + value, marker 1.
    const bound = 9 + 5 * count + srcLength;
    const be = this.backend;
    be.sync();
    const b = be.bytes;
    let result: Uint8Array | number;
    if (count <= be.optCap && srcLength + bound <= b.length) {
      write(be.table, b, type, code, messageId, token, options, payload);
      const rc = be.encode(transport, srcLength); // allocates nothing: b stays valid
      result = rc < 0 ? rc : copyOut(b, srcLength, rc);
    } else {
      result = be.encodeLarge(transport, MSG_WORDS + OPT_WORDS * Math.max(count, 1), srcLength + bound, srcLength, (t, b) =>
        write(t, b, type, code, messageId, token, options, payload),
      );
    }
    if (typeof result === 'number') throw new CoapEncodeError(this.errorName(result));
    return result;
  }

  /** Creates a deframer on this codec's backend. */
  createDeframer(opts?: DeframerOptions): DeframerImpl {
    return new DeframerImpl(this, opts);
  }
}

/*
 * Output allocation. Small results (<= 64 bytes) are sliced: V8 keeps them on
 * its heap, which is cheap. Larger ones would each need an off-heap
 * ArrayBuffer, which costs far more than the encoding itself, so, like Node's
 * Buffer pool, they are carved out of a shared 16 KiB ArrayBuffer (results
 * up to 4 KiB); bigger results get their own buffer.
 */
const POOL_SIZE = 16384;
const POOL_MAX = 4096;
let pool = new Uint8Array(0);
let poolOffset = 0;

function copyOut(src: Uint8Array, start: number, n: number): Uint8Array {
  if (n <= 64 || n > POOL_MAX) return src.slice(start, start + n);
  if (poolOffset + n > pool.length) {
    pool = new Uint8Array(POOL_SIZE);
    poolOffset = 0;
  }
  const out = new Uint8Array(pool.buffer, poolOffset, n);
  out.set(src.subarray(start, start + n));
  poolOffset = (poolOffset + n + 7) & ~7;
  return out;
}

/** Writes the tc_msg + tc_opt table and the source bytes. */
function write(
  t: Uint32Array,
  b: Uint8Array,
  type: number,
  code: number,
  messageId: number,
  token: Uint8Array,
  options: CoapOption[],
  payload: Uint8Array,
): void {
  const count = options.length;
  let pos = token.length;
  put(b, 0, token);
  t[0] = type;
  t[1] = code;
  t[2] = messageId;
  t[3] = 0;
  t[4] = pos;
  t[5] = count;
  for (let i = 0, w = MSG_WORDS; i < count; i++, w += OPT_WORDS) {
    const o = options[i];
    const v = o.value;
    t[w] = o.number;
    t[w + 1] = pos;
    t[w + 2] = v.length;
    put(b, pos, v);
    pos += v.length;
  }
  t[6] = pos;
  t[7] = payload.length;
  t[8] = 0;
  put(b, pos, payload);
}

/**
 * Streaming RFC 8323 (TCP/TLS) deframer bound to a codec's backend.
 * @internal (exported publicly as Deframer)
 */
export class DeframerImpl {
  private readonly codec: Codec;
  private handle: DeframerHandle | undefined;
  /** Largest accepted message size in bytes. */
  readonly maxMessageSize: number;

  constructor(codec: Codec, opts?: DeframerOptions) {
    const max = opts?.maxMessageSize ?? 1152;
    if (!Number.isInteger(max) || max < 2 || max > 0xffffffff) {
      throw outOfRange('Deframer: maxMessageSize', 'a valid message size', max);
    }
    this.codec = codec;
    this.maxMessageSize = max;
    const h = codec.backend.deframerCreate(max);
    if (typeof h === 'number') {
      throw new CoapArgRangeError('ERR_INVALID_ARG_VALUE', `Deframer: cannot create (${codec.errorName(h)}) for maxMessageSize ${max}`);
    }
    this.handle = h;
  }

  /**
   * Feeds a chunk of the byte stream; returns the complete messages it
   * finished, in stream order. A message that lies whole inside `chunk` is
   * returned as a view of `chunk` (zero copy); one that spanned chunks is a
   * copy. Decode each with `decode(frame, { transport: 'tcp' })`.
   * @throws CoapFrameError if the stream is broken (message too large,
   *   reserved token length); the deframer is unusable afterwards.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (!isBytes(chunk)) throw invalidArgType('Deframer.push: chunk', 'a Uint8Array', chunk);
    const h = this.handle;
    if (h === undefined) throw new Error('Deframer: closed');
    const be = this.codec.backend;
    const frames: Uint8Array[] = [];
    const len = chunk.length;
    let start = 0;
    let restage = true;
    try {
      for (;;) {
        const n = be.deframerFeed(h, chunk, start, restage);
        restage = false;
        if (n < 0) throw new CoapFrameError(this.codec.errorName(n), frames);
        const t = be.table;
        const consumed = t[0];
        for (let i = 0, w = MSG_WORDS; i < n; i++, w += OPT_WORDS) {
          const off = t[w + 1];
          const flen = t[w + 2];
          if (t[w] === TC_FRAME_BUFFER) {
            frames.push(be.deframerCopy(h, off, flen));
          } else {
            frames.push(chunk.subarray(start + off, start + off + flen));
          }
        }
        start += consumed;
        // The core stops early after a buffered frame or a full frame table;
        // otherwise it used the whole chunk.
        if (start >= len || (n === 0 && consumed === 0)) break;
      }
    } finally {
      be.deframerUnstage();
    }
    return frames;
  }

  /** Bytes buffered for an incomplete message (0 at a message boundary). */
  get pending(): number {
    return this.handle === undefined ? 0 : this.codec.backend.deframerPending(this.handle);
  }

  /**
   * Releases the deframer's memory now (WASM; otherwise garbage collection
   * does it). The deframer cannot be used afterwards.
   */
  close(): void {
    if (this.handle !== undefined) this.codec.backend.deframerFree(this.handle);
    this.handle = undefined;
  }
}
