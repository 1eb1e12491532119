/**
 * The backend contract shared by the native addon and the WebAssembly module.
 *
 * Both backends expose the same flat, number-only operations over one scratch
 * area (a uint32 table and a byte area); the codec in ../codec.ts is written
 * once against this interface. Nothing here is public API.
 *
 * @internal
 */

/** Words in a tc_msg (see native/include/turbocoap.h). */
export const MSG_WORDS = 9;
/** Words in a tc_opt / tc_frame. */
export const OPT_WORDS = 3;
/** Number of TC_E_* error codes. */
export const ERROR_COUNT = 21;

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

export interface Backend {
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
