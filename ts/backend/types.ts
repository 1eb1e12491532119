/**
 * The backend contract shared by the native addon and the WebAssembly module.
 *
 * Both backends expose the same flat, number-only operations over one scratch
 * area (a uint32 table and a byte area); the codec in ../codec.ts is written
 * once against this interface. Nothing here is public API.
 *
 * @internal
 */

/** Words in a tc_msg and a tc_opt / tc_frame, the number of TC_E_* error codes (generated
 *  from the C declaration, ../driver/abi.ts). */
export { ERROR_COUNT, MSG_WORDS, OPT_WORDS } from '../driver/abi';

/** One option registry entry as read from the core. */
export interface RawOptionDef {
  number: number;
  format: number;
  repeatable: number;
  minLength: number;
  maxLength: number;
  signalCode: number;
  name: string;
}

/** A deframer instance (backend-specific memory). */
export interface DeframerHandle {
  /** @internal */ readonly _brand?: never;
}

/** Words of tc_bwc_config (native/include/turbocoap_bw.h). */
export const BWC_CONFIG_WORDS = 5;
/** Words of a client-transfer result: tc_bwc_result (8 words), then the progress (done, total). */
export const BWC_RES_WORDS = 10;
/** tc_obs_reregister_at's max_age_s when the notification has no Max-Age. */
export const OBS_NO_MAX_AGE = 0xffffffff;

/**
 * A client block-wise transfer (tc_bwc) with its download body (backend-specific memory).
 * `res` holds the outcome of the last call: tc_bwc_result words [0..7] (status, error, code,
 * block, offset, length, size, flags) and the progress [8] done, [9] total.
 */
export interface BwcHandle {
  readonly res: Uint32Array;
}

/**
 * The body capacity a download needs before its next response is fed: room for everything
 * received so far plus the datagram (which bounds its payload) and for the announced total
 * (Size2, so the core judges Size2 against maxBody, not against a body not grown yet), at
 * most maxBody. Grows geometrically from `cap`; returns `cap` when it suffices.
 */
export function bodyTarget(cap: number, done: number, datagramLength: number, size2: number, maxBody: number): number {
  const need = Math.min(maxBody, Math.max(done + datagramLength, size2));
  if (need <= cap) return cap;
  return Math.min(maxBody, Math.max(need, cap * 2, 4096));
}

/**
 * The client side of block-wise transfer and Observe (tc_bwc_*, tc_obs_fresh,
 * tc_obs_reregister_at). Every backend has it; the native addon also offers it without a
 * codec scratch area ({@link Backend} extends it).
 */
export interface ClientTransfers {
  readonly kind: 'native' | 'wasm';
  /**
   * A client block-wise transfer (tc_bwc_init) with `config` (BWC_CONFIG_WORDS words of
   * tc_bwc_config); returns the handle or an error code. Free it with {@link bwcFree}.
   */
  bwcCreate(config: Uint32Array): BwcHandle | number;
  /** tc_bwc_get_begin; the result in `h.res`. Returns the status or an error code. */
  bwcGetBegin(h: BwcHandle): number;
  /**
   * Decodes a received CoAP/UDP datagram and feeds it to tc_bwc_get_response, the body
   * first grown to {@link bodyTarget}(…, size2, maxBody) (`size2`: the response's Size2, or 0).
   * Returns the status or an error code (a decode error: the datagram is not CoAP).
   */
  bwcGetResponse(h: BwcHandle, datagram: Uint8Array, size2: number): number;
  /** tc_bwc_put_begin with the Request-Tag `tag` (0..8 bytes). */
  bwcPutBegin(h: BwcHandle, bodyLength: number, tag: Uint8Array): number;
  /** Decodes a received CoAP/UDP datagram and feeds it to tc_bwc_put_response. */
  bwcPutResponse(h: BwcHandle, datagram: Uint8Array): number;
  /** tc_bwc_request_tag: the transfer's Request-Tag (a copy). */
  bwcRequestTag(h: BwcHandle): Uint8Array;
  /** The first `length` bytes of a finished download's body, for the caller to keep (no
   *  view of WASM memory: a copy there). Call it once the transfer is over. */
  bwcBody(h: BwcHandle, length: number): Uint8Array;
  /** Releases the transfer's memory (no-op where memory is garbage-collected). */
  bwcFree(h: BwcHandle): void;
  /** tc_obs_fresh: whether notification (v2 at t2 ms) is newer than (v1 at t1 ms), RFC 7641 §3.4. */
  obsFresh(v1: number, t1: number, v2: number, t2: number): boolean;
  /** tc_obs_reregister_at (ms; maxAge OBS_NO_MAX_AGE when absent). */
  obsReregisterAt(arrival: number, maxAge: number, lead: number): number;
}

export interface Backend extends ClientTransfers {
  readonly kind: 'native' | 'wasm';
  /**
   * View of the scratch table. Valid after sync() or any other backend call
   * returns, until the next backend call (WASM memory growth replaces it).
   */
  readonly table: Uint32Array;
  /** View of the scratch bytes (same validity as `table`). */
  readonly bytes: Uint8Array;
  /** Re-validates `table` and `bytes` (WASM: re-creates them if memory grew). */
  sync(): void;
  /** Option (and frame) entries the scratch table holds. */
  readonly optCap: number;

  /** tc_decode into the scratch table; returns the option count or an error. */
  decode(input: Uint8Array, transport: number): number;
  /**
   * tc_decode into a private table of capacity `cap` options. Returns the
   * result code and a table (a copy on WASM) to read the result from.
   */
  decodeLarge(input: Uint8Array, transport: number, cap: number): { rc: number; table: Uint32Array };
  /**
   * tc_encode from the scratch: the caller wrote the tc_msg + tc_opt entries
   * into `table` and the sources into `bytes[0..outOffset)`. Output lands in
   * `bytes[outOffset..]`; returns its length or an error.
   */
  encode(transport: number, outOffset: number): number;
  /**
   * tc_encode with private memory: `fill` writes the table and sources into
   * the views it is given; returns a copy of the output or an error code.
   */
  encodeLarge(
    transport: number,
    tableWords: number,
    byteLength: number,
    outOffset: number,
    fill: (table: Uint32Array, bytes: Uint8Array) => void,
  ): Uint8Array | number;

  /** Creates and initialises a deframer; returns the handle or an error code. */
  deframerCreate(maxMessageSize: number): DeframerHandle | number;
  /**
   * Feeds chunk[start..]. With `restage`, the chunk is (re)staged first (WASM
   * copies it into linear memory once per push); otherwise the chunk staged
   * last is reused. Writes bytes consumed to table[0] and tc_frame entries
   * from table[MSG_WORDS]; returns the frame count or an error.
   */
  deframerFeed(h: DeframerHandle, chunk: Uint8Array, start: number, restage: boolean): number;
  /** Releases memory staged by deframerFeed. */
  deframerUnstage(): void;
  /** Copy of bytes [offset, offset+length) of the deframer's buffer. */
  deframerCopy(h: DeframerHandle, offset: number, length: number): Uint8Array;
  /** tc_deframer_pending. */
  deframerPending(h: DeframerHandle): number;
  /** Frees a deframer (no-op where memory is garbage-collected). */
  deframerFree(h: DeframerHandle): void;

  /** The whole option registry, read once. */
  optionRegistry(): RawOptionDef[];
  /** Registry index of tc_option_find(code, number), or -1 (tests only). */
  optionFind(code: number, number: number): number;
  /** tc_error_name. */
  errorName(err: number): string;
}

/**
 * Reads the whole option registry through a backend's scratch: `count` entries, each
 * written into the scratch by `load(i)` (which returns the name's length, negative when
 * there is no entry i) and read after `sync()`: six words from `table`, the name from `bytes`.
 */
export function readOptionRegistry(
  scratch: Pick<Backend, 'table' | 'bytes' | 'sync'>,
  count: number,
  load: (i: number) => number,
): RawOptionDef[] {
  const out: RawOptionDef[] = [];
  for (let i = 0; i < count; i++) {
    const len = load(i);
    if (len < 0) break;
    scratch.sync();
    const t = scratch.table;
    out.push({
      number: t[0],
      format: t[1],
      repeatable: t[2],
      minLength: t[3],
      maxLength: t[4],
      signalCode: t[5],
      name: ascii(scratch.bytes, len),
    });
  }
  return out;
}

/** Decodes ASCII bytes (names from the core) to a string. */
export function ascii(bytes: Uint8Array, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}
