/**
 * The WebAssembly backend: wasm/turbocoap.wasm (the C core + wasm/glue.c, a
 * standalone module without emscripten's JS glue), instantiated synchronously
 * from bytes embedded in ../generated/wasm-bytes so that it needs neither fs
 * nor fetch (Node, browsers and workers alike).
 *
 * Views of linear memory are re-created whenever memory.buffer changes (it
 * is replaced when the memory grows, detaching the old views); every entry
 * point compares buffer identity before touching a view.
 *
 * @internal
 */
import { checkAbi } from '../driver/abi-check';
import { WASM_BASE64 } from '../generated/wasm-bytes';
import {
  BWC_CONFIG_WORDS,
  BWC_RES_WORDS,
  MSG_WORDS,
  OPT_WORDS,
  ascii,
  bodyTarget,
  readOptionRegistry,
  type Backend,
  type BwcHandle,
  type DeframerHandle,
  type RawOptionDef,
} from './types';
import { CoapArgRangeError } from '../errors';

/** The exports of wasm/glue.c (pointers are offsets into memory). */
interface Exports {
  memory: WebAssembly.Memory;
  _initialize(): void;
  tcw_abi_hash(): number;
  tcw_abi_layout(): number;
  tcw_abi_layout_words(): number;
  tcw_table(): number;
  tcw_table_words(): number;
  tcw_bytes(): number;
  tcw_bytes_size(): number;
  tcw_malloc(n: number): number;
  tcw_free(p: number): void;
  tcw_decode(input: number, len: number, transport: number): number;
  tcw_decode_with(input: number, len: number, transport: number, table: number, words: number): number;
  tcw_encode(transport: number, outOffset: number): number;
  tcw_encode_with(transport: number, table: number, words: number, buf: number, len: number, outOffset: number): number;
  tcw_deframer_size(max: number): number;
  tcw_deframer_init(d: number, memLen: number, max: number): number;
  tcw_deframer_feed(d: number, chunk: number, len: number): number;
  tcw_deframer_buffer(d: number): number;
  tcw_deframer_pending(d: number): number;
  tcw_option_count(): number;
  tcw_option_at(i: number): number;
  tcw_option_find(code: number, number: number): number;
  tcw_error_name(err: number): number;
  tcw_bwc_create(cfg: number): number;
  tcw_bwc_free(h: number): void;
  tcw_bwc_get_begin(h: number): number;
  tcw_bwc_get_response(h: number, d: number, len: number, bodyNeed: number): number;
  tcw_bwc_put_begin(h: number, bodyLength: number, tag: number, tagLen: number): number;
  tcw_bwc_put_response(h: number, d: number, len: number): number;
  tcw_bwc_request_tag(h: number): number;
  tcw_obs_fresh(v1: number, t1: number, v2: number, t2: number): number;
  tcw_obs_reregister_at(arrival: number, maxAge: number, lead: number): number;
}

/** A transfer: a handle in linear memory (glue_client.c: info words, then the tc_bwc state). */
interface WasmBwc extends BwcHandle {
  ptr: number;
  readonly maxBody: number;
}

/** glue_client.c info words: the body pointer, its capacity, the Request-Tag. */
const BWC_BODY_PTR = 10;
const BWC_BODY_CAP = 11;
const BWC_TAG = 12;

interface WasmDeframer extends DeframerHandle {
  ptr: number;
  buffer: number;
}

/** Decodes standard base64 (the embedded module). */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Copies src into dst at 0; a loop beats TypedArray#set for short inputs. */
function put(dst: Uint8Array, src: Uint8Array): void {
  const n = src.length;
  if (n > 32) dst.set(src);
  else for (let i = 0; i < n; i++) dst[i] = src[i];
}

/**
 * The raw module behind a WASM backend, for the UDP driver (ts/transport/udp-wasm.ts),
 * which calls the tcw_udp_* exports itself. Views of `memory.buffer` must be re-created
 * whenever the buffer changes (growth detaches them).
 */
export interface WasmRaw {
  readonly exports: Record<string, unknown>;
  readonly memory: WebAssembly.Memory;
  /** The scratch table and byte area (pointers into memory). */
  readonly tablePtr: number;
  readonly bytesPtr: number;
  readonly bytesSize: number;
}

class WasmBackend implements Backend {
  readonly kind = 'wasm' as const;
  table!: Uint32Array;
  bytes!: Uint8Array;
  readonly optCap: number;
  private u8!: Uint8Array;
  private ab: ArrayBuffer | undefined;
  private readonly ex: Exports;
  private readonly memory: WebAssembly.Memory;
  private readonly tablePtr: number;
  private readonly tableWords: number;
  private readonly bytesPtr: number;
  private readonly bytesSize: number;
  private stagedPtr = 0;
  private stagedLen = 0;
  private stagedOwned = false;
  private readonly finalizer: FinalizationRegistry<number> | undefined;
  /** Frees transfers dropped without bwcFree (their handle and body). */
  private readonly bwcFinalizer: FinalizationRegistry<number> | undefined;

  constructor(moduleBytes: Uint8Array) {
    const mod = new WebAssembly.Module(moduleBytes as Uint8Array<ArrayBuffer>);
    // Provide exactly what the module imports. The build leaves one import,
    // env.emscripten_notify_memory_growth; anything else fails loudly if called.
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
    for (const imp of WebAssembly.Module.imports(mod)) {
      if (imp.kind !== 'function') throw new Error(`turbocoap.wasm: unsupported import ${imp.module}.${imp.name}`);
      let fn: (...args: number[]) => unknown;
      if (imp.module === 'env' && imp.name === 'emscripten_notify_memory_growth') {
        fn = () => this.sync();
      } else {
        fn = () => {
          throw new Error(`turbocoap.wasm called the unexpected import ${imp.module}.${imp.name}`);
        };
      }
      (imports[imp.module] ??= {})[imp.name] = fn;
    }
    const instance = new WebAssembly.Instance(mod, imports);
    this.ex = instance.exports as unknown as Exports;
    this.memory = this.ex.memory;
    this.ex._initialize();
    const lp = this.ex.tcw_abi_layout() >>> 2;
    const layout = new Uint32Array(this.memory.buffer, lp * 4, this.ex.tcw_abi_layout_words());
    checkAbi('turbocoap.wasm', this.ex.tcw_abi_hash(), layout, 'npm run build:wasm');
    this.tablePtr = this.ex.tcw_table();
    this.tableWords = this.ex.tcw_table_words();
    this.optCap = Math.floor((this.tableWords - MSG_WORDS) / OPT_WORDS);
    this.bytesPtr = this.ex.tcw_bytes();
    this.bytesSize = this.ex.tcw_bytes_size();
    this.sync();
    this.finalizer =
      typeof FinalizationRegistry === 'function'
        ? new FinalizationRegistry<number>((ptr) => this.ex.tcw_free(ptr))
        : undefined;
    this.bwcFinalizer =
      typeof FinalizationRegistry === 'function'
        ? new FinalizationRegistry<number>((ptr) => this.ex.tcw_bwc_free(ptr))
        : undefined;
  }

  /** The raw module (see {@link WasmRaw}). */
  raw(): WasmRaw {
    return {
      exports: this.ex as unknown as Record<string, unknown>,
      memory: this.memory,
      tablePtr: this.tablePtr,
      bytesPtr: this.bytesPtr,
      bytesSize: this.bytesSize,
    };
  }

  /**
   * Re-creates the views if the memory buffer changed (growth detaches them).
   * Called on entry to every operation, after every allocation, and by the
   * module itself (emscripten_notify_memory_growth) whenever memory grows.
   */
  sync(): void {
    const ab = this.memory.buffer;
    if (ab === this.ab) return;
    this.ab = ab;
    this.u8 = new Uint8Array(ab);
    this.table = new Uint32Array(ab, this.tablePtr, this.tableWords);
    this.bytes = new Uint8Array(ab, this.bytesPtr, this.bytesSize);
  }

  private malloc(n: number): number {
    const p = this.ex.tcw_malloc(n);
    if (p === 0) throw new CoapArgRangeError('ERR_MEMORY_ALLOCATION_FAILED', `turbocoap.wasm: out of memory allocating ${n} bytes`);
    this.sync();
    return p;
  }

  /**
   * Runs fn with d copied into linear memory: into the scratch bytes when it fits, else into
   * a heap block freed afterwards.
   */
  private withStaged<T>(d: Uint8Array, fn: (p: number) => T): T {
    if (this.memory.buffer !== this.ab) this.sync();
    if (d.length <= this.bytesSize) {
      put(this.bytes, d);
      return fn(this.bytesPtr);
    }
    const p = this.malloc(d.length);
    try {
      this.u8.set(d, p);
      return fn(p);
    } finally {
      this.ex.tcw_free(p);
    }
  }

  decode(input: Uint8Array, transport: number): number {
    // withStaged's logic, written out: the codec's hot path allocates no closure.
    if (this.memory.buffer !== this.ab) this.sync();
    const n = input.length;
    if (n <= this.bytesSize) {
      put(this.bytes, input);
      return this.ex.tcw_decode(this.bytesPtr, n, transport);
    }
    const p = this.malloc(n);
    try {
      this.u8.set(input, p);
      return this.ex.tcw_decode(p, n, transport);
    } finally {
      this.ex.tcw_free(p);
    }
  }

  decodeLarge(input: Uint8Array, transport: number, cap: number): { rc: number; table: Uint32Array } {
    const words = MSG_WORDS + OPT_WORDS * cap;
    const p = this.malloc(input.length);
    let t = 0;
    try {
      t = this.malloc(words * 4);
      this.u8.set(input, p);
      const rc = this.ex.tcw_decode_with(p, input.length, transport, t, words);
      this.sync();
      return { rc, table: new Uint32Array(this.u8.buffer, t, words).slice() };
    } finally {
      this.ex.tcw_free(p);
      if (t !== 0) this.ex.tcw_free(t);
    }
  }

  encode(transport: number, outOffset: number): number {
    // The caller wrote through the views after sync(); encoding allocates nothing.
    return this.ex.tcw_encode(transport, outOffset);
  }

  encodeLarge(
    transport: number,
    tableWords: number,
    byteLength: number,
    outOffset: number,
    fill: (table: Uint32Array, bytes: Uint8Array) => void,
  ): Uint8Array | number {
    const t = this.malloc(tableWords * 4);
    let b = 0;
    try {
      b = this.malloc(byteLength);
      const ab = this.u8.buffer;
      fill(new Uint32Array(ab, t, tableWords), new Uint8Array(ab, b, byteLength));
      const rc = this.ex.tcw_encode_with(transport, t, tableWords, b, byteLength, outOffset);
      this.sync();
      return rc < 0 ? rc : this.u8.slice(b + outOffset, b + outOffset + rc);
    } finally {
      this.ex.tcw_free(t);
      if (b !== 0) this.ex.tcw_free(b);
    }
  }

  deframerCreate(maxMessageSize: number): WasmDeframer | number {
    const size = this.ex.tcw_deframer_size(maxMessageSize >>> 0);
    if (size === 0) return -16; // TC_E_INVALID: not representable
    const ptr = this.malloc(size);
    const rc = this.ex.tcw_deframer_init(ptr, size, maxMessageSize >>> 0);
    if (rc < 0) {
      this.ex.tcw_free(ptr);
      return rc;
    }
    const h: WasmDeframer = { ptr, buffer: this.ex.tcw_deframer_buffer(ptr) };
    this.finalizer?.register(h, ptr, h);
    return h;
  }

  deframerFeed(h: DeframerHandle, chunk: Uint8Array, start: number, restage: boolean): number {
    if (restage) {
      this.deframerUnstage();
      if (this.memory.buffer !== this.ab) this.sync();
      const n = chunk.length;
      if (n <= this.bytesSize) {
        put(this.bytes, chunk);
        this.stagedPtr = this.bytesPtr;
      } else {
        this.stagedPtr = this.malloc(n);
        this.stagedOwned = true;
        this.u8.set(chunk, this.stagedPtr);
      }
      this.stagedLen = n;
    }
    const rc = this.ex.tcw_deframer_feed((h as WasmDeframer).ptr, this.stagedPtr + start, this.stagedLen - start);
    if (this.memory.buffer !== this.ab) this.sync();
    return rc;
  }

  deframerUnstage(): void {
    if (this.stagedOwned) this.ex.tcw_free(this.stagedPtr);
    this.stagedOwned = false;
    this.stagedPtr = 0;
    this.stagedLen = 0;
  }

  deframerCopy(h: DeframerHandle, offset: number, length: number): Uint8Array {
    if (this.memory.buffer !== this.ab) this.sync();
    const at = (h as WasmDeframer).buffer + offset;
    return this.u8.slice(at, at + length);
  }

  deframerPending(h: DeframerHandle): number {
    return this.ex.tcw_deframer_pending((h as WasmDeframer).ptr);
  }

  deframerFree(h: DeframerHandle): void {
    const d = h as WasmDeframer;
    if (d.ptr === 0) return;
    this.finalizer?.unregister(d);
    this.ex.tcw_free(d.ptr);
    d.ptr = 0;
  }

  optionRegistry(): RawOptionDef[] {
    return readOptionRegistry(this, this.ex.tcw_option_count(), (i) => this.ex.tcw_option_at(i));
  }

  optionFind(code: number, number: number): number {
    return this.ex.tcw_option_find(code >>> 0, number >>> 0);
  }

  errorName(err: number): string {
    const len = this.ex.tcw_error_name(err | 0);
    this.sync();
    return ascii(this.bytes, len);
  }

  // ------------------------------------------------------------ client transfers

  /** The handle's info word i. */
  private bwcWord(h: WasmBwc, i: number): number {
    if (this.memory.buffer !== this.ab) this.sync();
    return new Uint32Array(this.u8.buffer, h.ptr + 4 * i, 1)[0] as number;
  }

  /** Copies the result and progress words out of the handle; returns rc. */
  private bwcOut(h: WasmBwc, rc: number): number {
    if (this.memory.buffer !== this.ab) this.sync();
    if (rc >= 0) h.res.set(new Uint32Array(this.u8.buffer, h.ptr, BWC_RES_WORDS));
    return rc;
  }

  bwcCreate(config: Uint32Array): WasmBwc | number {
    if (this.memory.buffer !== this.ab) this.sync();
    this.table.set(config.subarray(0, BWC_CONFIG_WORDS));
    const ptr = this.ex.tcw_bwc_create(this.tablePtr) >>> 0;
    this.sync();
    if (ptr === 0) return -16; // TC_E_INVALID (or no memory)
    const h: WasmBwc = { ptr, maxBody: config[0] as number, res: new Uint32Array(BWC_RES_WORDS) };
    this.bwcFinalizer?.register(h, ptr, h);
    return h;
  }

  bwcGetBegin(h: BwcHandle): number {
    return this.bwcOut(h as WasmBwc, this.ex.tcw_bwc_get_begin((h as WasmBwc).ptr));
  }

  bwcGetResponse(h: BwcHandle, datagram: Uint8Array, size2: number): number {
    const w = h as WasmBwc;
    const cap = this.bwcWord(w, BWC_BODY_CAP);
    const need = bodyTarget(cap, h.res[8] as number, datagram.length, size2, w.maxBody);
    const rc = this.withStaged(datagram, (p) => this.ex.tcw_bwc_get_response(w.ptr, p, datagram.length, need > cap ? need : 0));
    return this.bwcOut(w, rc);
  }

  bwcPutBegin(h: BwcHandle, bodyLength: number, tag: Uint8Array): number {
    const w = h as WasmBwc;
    return this.bwcOut(w, this.withStaged(tag, (p) => this.ex.tcw_bwc_put_begin(w.ptr, bodyLength >>> 0, p, tag.length)));
  }

  bwcPutResponse(h: BwcHandle, datagram: Uint8Array): number {
    const w = h as WasmBwc;
    return this.bwcOut(w, this.withStaged(datagram, (p) => this.ex.tcw_bwc_put_response(w.ptr, p, datagram.length)));
  }

  bwcRequestTag(h: BwcHandle): Uint8Array {
    const w = h as WasmBwc;
    const n = this.ex.tcw_bwc_request_tag(w.ptr);
    this.sync();
    const at = w.ptr + 4 * BWC_TAG;
    return n > 0 ? this.u8.slice(at, at + n) : new Uint8Array(0);
  }

  bwcBody(h: BwcHandle, length: number): Uint8Array {
    const at = this.bwcWord(h as WasmBwc, BWC_BODY_PTR);
    return length > 0 ? this.u8.slice(at, at + length) : new Uint8Array(0);
  }

  bwcFree(h: BwcHandle): void {
    const w = h as WasmBwc;
    if (w.ptr === 0) return;
    this.bwcFinalizer?.unregister(w);
    this.ex.tcw_bwc_free(w.ptr);
    w.ptr = 0;
  }

  obsFresh(v1: number, t1: number, v2: number, t2: number): boolean {
    return this.ex.tcw_obs_fresh(v1 >>> 0, t1, v2 >>> 0, t2) === 1;
  }

  obsReregisterAt(arrival: number, maxAge: number, lead: number): number {
    return this.ex.tcw_obs_reregister_at(arrival, maxAge >>> 0, lead >>> 0);
  }
}

/**
 * Instantiates the WebAssembly backend synchronously, from `moduleBytes` or
 * from the module embedded in the package.
 */
export function loadWasmBackend(moduleBytes?: Uint8Array): Backend {
  return new WasmBackend(moduleBytes ?? fromBase64(WASM_BASE64));
}

/** The raw module of a backend made by {@link loadWasmBackend}, else undefined. */
export function wasmRaw(backend: Backend): WasmRaw | undefined {
  return backend instanceof WasmBackend ? backend.raw() : undefined;
}
