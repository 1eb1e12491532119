/**
 * What the WebAssembly drivers (udp-wasm.ts, stream-wasm.ts) share: views of linear memory
 * re-created whenever it grows, the ABI check, creating a handle from config words and a seed
 * (staged in the scratch area, the seed wiped afterwards), the handle's info words, copies
 * out of memory and Block1 bodies read into a temporary buffer. No Node built-ins: the
 * browser bundle carries it.
 *
 * @internal
 */
import type { WasmRaw } from '../backend/wasm';
import { checkAbi } from '../driver/abi-check';
import { SEED_BYTES } from '../driver/abi';
import { CoapArgRangeError, outOfRange } from '../errors';

/** The exports every WASM driver uses. */
export interface WasmCommonExports {
  tcw_abi_hash(): number;
  tcw_abi_layout(): number;
  tcw_abi_layout_words(): number;
  tcw_malloc(n: number): number;
  tcw_free(p: number): void;
}

export abstract class WasmHandle<E extends WasmCommonExports> {
  protected readonly ex: E;
  private readonly memory: WebAssembly.Memory;
  private ab: ArrayBuffer | undefined;
  protected u8!: Uint8Array;
  protected u32!: Uint32Array;
  /** The driver handle (0 once freed). */
  protected h = 0;
  /** The handle's info words, as a word index into u32. */
  protected info0 = 0;
  /** tc_bw1_config.max_body: no body is longer */
  protected maxBody = 0;

  constructor(raw: WasmRaw) {
    this.ex = raw.exports as unknown as E;
    this.memory = raw.memory;
    this.sync();
    const lp = this.ex.tcw_abi_layout() >>> 2;
    checkAbi('turbocoap.wasm', this.ex.tcw_abi_hash(), this.u32.subarray(lp, lp + this.ex.tcw_abi_layout_words()), 'npm run build:wasm');
  }

  /**
   * Checks and stages config and seed, runs `make(configPtr, seedPtr)` and wipes the seed;
   * throws when the handle could not be made. `what` names the handle in errors.
   */
  protected create(raw: WasmRaw, what: string, config: Uint32Array, configWords: number, seed: Uint8Array, make: (cfg: number, seed: number) => number): void {
    if (config.length !== configWords) throw outOfRange(`turbocoap: ${what} config length`, `${configWords}`, config.length);
    if (seed.length !== SEED_BYTES) throw outOfRange('turbocoap: seed length', `${SEED_BYTES} bytes`, seed.length);
    this.u32.set(config, raw.tablePtr >>> 2);
    this.u8.set(seed, raw.bytesPtr);
    this.h = make(raw.tablePtr, raw.bytesPtr);
    this.info0 = this.h >>> 2;
    this.sync(); // creation allocates: memory may have grown
    this.u8.fill(0, raw.bytesPtr, raw.bytesPtr + SEED_BYTES);
    if (this.h === 0) throw new CoapArgRangeError('ERR_INVALID_ARG_VALUE', `turbocoap: invalid ${what} configuration (or out of WASM memory)`);
  }

  protected sync(): void {
    const ab = this.memory.buffer;
    if (ab === this.ab) return;
    this.ab = ab;
    this.u8 = new Uint8Array(ab);
    this.u32 = new Uint32Array(ab);
  }

  protected info(i: number): number {
    return this.u32[this.info0 + i] as number;
  }

  /** A copy of the words at the address in info word `ptr`, as many as info word `used` says. */
  protected copyWords(ptr: number, used: number): Uint32Array {
    const p = this.info(ptr) >>> 2;
    return this.u32.slice(p, p + this.info(used));
  }

  /** A copy of the bytes at the address in info word `ptr`, as many as info word `used` says. */
  protected copyBytes(ptr: number, used: number): Uint8Array {
    const p = this.info(ptr);
    return this.u8.slice(p, p + this.info(used));
  }

  /** A Block1 body (at most maxBody bytes) through `read(h, id, out, cap)`, or its error code. */
  protected readBodyWith(read: (h: number, id: number, out: number, cap: number) => number, id: number, length: number): Uint8Array | number {
    const cap = Math.min(length >>> 0, this.maxBody);
    const p = this.ex.tcw_malloc(cap);
    if (p === 0) throw new CoapArgRangeError('ERR_MEMORY_ALLOCATION_FAILED', 'turbocoap: out of WASM memory');
    try {
      const rc = read(this.h, id >>> 0, p, cap);
      if (rc < 0) return rc;
      this.sync();
      return this.u8.slice(p, p + rc);
    } finally {
      this.ex.tcw_free(p);
    }
  }
}
