/**
 * The connection driver (native/driver/stream.c, without TLS) in WebAssembly, as a
 * {@link StreamFeed}: wasm/glue_stream.c's tcw_stream_* exports over one module instance.
 * No Node built-ins: the browser bundle carries it.
 *
 * Inputs are staged in the handle's input area (a chunk, one WebSocket message, address
 * words); outputs are read from the out list (views of linear memory, valid until the next
 * call); batches are handed over as copies. Views are re-created whenever memory grows.
 *
 * @internal
 */
import type { WasmRaw } from '../backend/wasm';
import {
  E_STALE,
  STREAM_CONFIG_WORDS,
  STREAM_STATS_BYTES,
  SST_ACCEPTED,
  WASM_OUT_DONE,
  WASM_OUT_ID,
  WASM_OUT_LEN,
  WASM_OUT_OFF,
  WASM_OUT_OP,
  WASM_OUT_WORDS,
  WASM_STREAM_IN,
  WASM_STREAM_IN_CAP,
  WASM_STREAM_IN_USED,
  WASM_STREAM_MAX_BODY,
  WASM_STREAM_OUT,
  WASM_STREAM_RX_COUNT,
  WASM_STREAM_RX_DATA,
  WASM_STREAM_RX_DATA_USED,
  WASM_STREAM_RX_USED,
  WASM_STREAM_RX_WORDS,
  WASM_STREAM_STATS,
  WASM_STREAM_TXB,
  WASM_STREAM_TXW,
  WASM_STREAM_TX_FAILED,
} from '../driver/abi';
import type { FeedBatch, StreamFeed, StreamFeedFactory } from './stream-feed';
import { WasmHandle, type WasmCommonExports } from './wasm-handle';

/** TX areas of a stream core (as UDP's). */
export const STREAM_TX_WORDS = 1 << 16;
export const STREAM_TX_BYTES = 2 * 1024 * 1024 + 64 * 1024;

interface StreamExports extends WasmCommonExports {
  tcw_stream_create(cfg: number, cfgWords: number, seed: number, txWords: number, txBytes: number): number;
  tcw_stream_free(h: number): void;
  tcw_stream_open(h: number, now: number, id: number): number;
  tcw_stream_recv(h: number, now: number, id: number, off: number, len: number): number;
  tcw_stream_event(h: number, kind: number, id: number, status: number, flags: number, dlen: number): number;
  tcw_stream_close(h: number, now: number, id: number, status: number, flags: number): number;
  tcw_stream_abort(h: number, now: number, id: number, dlen: number): number;
  tcw_stream_shutdown(h: number, now: number, id: number): number;
  tcw_stream_collect(h: number): number;
  tcw_stream_wrote(h: number, count: number): number;
  tcw_stream_kick(h: number, id: number): number;
  tcw_stream_timer(h: number, now: number): number;
  tcw_stream_deadline(h: number): number;
  tcw_stream_flush(h: number, now: number, nwords: number, nbytes: number): number;
  tcw_stream_delivered(h: number): void;
  tcw_stream_read_body(h: number, id: number, out: number, cap: number): number;
  tcw_stream_stats(h: number): void;
}

/** Address words (FAMILY, PORT, IP x4, SCOPE) before identity bytes in the input area. */
const ADDR_WORDS = 7;
const ADDR_BYTES = ADDR_WORDS * 4;
const utf8 = new TextEncoder();

class WasmStreamFeed extends WasmHandle<StreamExports> implements StreamFeed {
  readonly kind = 'wasm' as const;
  readonly txWords = new Uint32Array(STREAM_TX_WORDS);
  readonly txBytes = new Uint8Array(STREAM_TX_BYTES);
  readonly inCap: number;
  used = 0;
  private readonly inPtr: number;
  private lastStats: DataView | undefined;

  constructor(raw: WasmRaw, config: Uint32Array, seed: Uint8Array) {
    super(raw);
    this.create(raw, 'stream', config, STREAM_CONFIG_WORDS, seed, (cfg, sp) =>
      this.ex.tcw_stream_create(cfg, STREAM_CONFIG_WORDS, sp, STREAM_TX_WORDS, STREAM_TX_BYTES),
    );
    this.inPtr = this.info(WASM_STREAM_IN);
    this.inCap = this.info(WASM_STREAM_IN_CAP);
    this.maxBody = this.info(WASM_STREAM_MAX_BODY);
  }

  private stageAddr(addr: Uint32Array): void {
    this.sync();
    this.u32.set(addr.subarray(0, ADDR_WORDS), this.inPtr >>> 2);
  }

  open(now: number, id: number, addr: Uint32Array): number {
    if (this.h === 0) return E_STALE;
    this.stageAddr(addr);
    return this.ex.tcw_stream_open(this.h, now, id >>> 0);
  }

  recv(now: number, id: number, chunk: Uint8Array, start: number): number {
    if (this.h === 0) return E_STALE;
    const n = Math.min(chunk.length - start, this.inCap);
    this.sync();
    this.u8.set(start === 0 && n === chunk.length ? chunk : chunk.subarray(start, start + n), this.inPtr);
    const rc = this.ex.tcw_stream_recv(this.h, now, id >>> 0, 0, n);
    this.sync();
    this.used = this.info(WASM_STREAM_IN_USED);
    return rc;
  }

  hostEvent(kind: number, id: number, addr: Uint32Array | undefined, status: number, flags: number, data?: Uint8Array): number {
    if (this.h === 0) return E_STALE;
    this.sync();
    if (addr !== undefined) this.stageAddr(addr);
    let dlen = 0;
    if (data !== undefined) {
      dlen = Math.min(data.length, this.inCap - ADDR_BYTES);
      this.u8.set(data.subarray(0, dlen), this.inPtr + ADDR_BYTES);
    }
    return this.ex.tcw_stream_event(this.h, kind, id >>> 0, status | 0, flags >>> 0, addr === undefined ? -1 : dlen);
  }

  close(now: number, id: number, status: number, flags: number): number {
    if (this.h === 0) return E_STALE;
    return this.ex.tcw_stream_close(this.h, now, id >>> 0, status | 0, flags >>> 0);
  }

  shutdown(now: number, id: number): number {
    if (this.h === 0) return E_STALE;
    return this.ex.tcw_stream_shutdown(this.h, now, id >>> 0);
  }

  abort(now: number, id: number, diagnostic: string): number {
    if (this.h === 0) return E_STALE;
    this.sync();
    const d = utf8.encode(diagnostic).subarray(0, 128);
    this.u8.set(d, this.inPtr);
    return this.ex.tcw_stream_abort(this.h, now, id >>> 0, d.length);
  }

  collect(): number {
    if (this.h === 0) return 0;
    const n = this.ex.tcw_stream_collect(this.h);
    this.sync();
    return n;
  }

  private entry(i: number): number {
    return (this.info(WASM_STREAM_OUT) >>> 2) + i * WASM_OUT_WORDS;
  }

  outId(i: number): number {
    return this.u32[this.entry(i) + WASM_OUT_ID] as number;
  }

  outOp(i: number): number {
    return this.u32[this.entry(i) + WASM_OUT_OP] as number;
  }

  outBytes(i: number): Uint8Array {
    const e = this.entry(i);
    const off = this.u32[e + WASM_OUT_OFF] as number;
    return this.u8.subarray(off, off + (this.u32[e + WASM_OUT_LEN] as number));
  }

  setDone(i: number, n: number): void {
    this.u32[this.entry(i) + WASM_OUT_DONE] = n;
  }

  wrote(count: number): number {
    return this.h === 0 ? 0 : this.ex.tcw_stream_wrote(this.h, count);
  }

  kick(id: number): void {
    if (this.h !== 0) this.ex.tcw_stream_kick(this.h, id >>> 0);
  }

  timer(now: number): number {
    return this.h === 0 ? TCS_DONE_ : this.ex.tcw_stream_timer(this.h, now);
  }

  deadline(): number {
    return this.h === 0 ? Infinity : this.ex.tcw_stream_deadline(this.h);
  }

  private txw = 0;
  private txn = 0;

  flushStart(nwords: number, nbytes: number): void {
    if (this.h === 0) return;
    this.sync();
    this.u32.set(this.txWords.subarray(0, nwords), this.info(WASM_STREAM_TXW) >>> 2);
    this.u8.set(this.txBytes.subarray(0, nbytes), this.info(WASM_STREAM_TXB));
    this.txw = nwords;
    this.txn = nbytes;
  }

  flushRun(now: number): number {
    if (this.h === 0) return E_STALE;
    return this.ex.tcw_stream_flush(this.h, now, this.txw, this.txn);
  }

  flushEnd(nwords: number): number {
    if (this.h === 0) return 0;
    this.sync();
    const p = this.info(WASM_STREAM_TXW) >>> 2;
    this.txWords.set(this.u32.subarray(p, p + nwords));
    return this.info(WASM_STREAM_TX_FAILED);
  }

  batchCount(): number {
    if (this.h === 0) return 0;
    this.sync();
    return this.info(WASM_STREAM_RX_COUNT);
  }

  takeBatch(): FeedBatch {
    this.sync();
    const words = this.copyWords(WASM_STREAM_RX_WORDS, WASM_STREAM_RX_USED);
    const data = this.copyBytes(WASM_STREAM_RX_DATA, WASM_STREAM_RX_DATA_USED);
    const count = this.info(WASM_STREAM_RX_COUNT);
    this.ex.tcw_stream_delivered(this.h);
    return { words, data, count };
  }

  readBody(id: number, length: number): Uint8Array | number {
    if (this.h === 0) return E_STALE;
    return this.readBodyWith(this.ex.tcw_stream_read_body, id, length);
  }

  stats(host: ArrayLike<number>): DataView {
    if (this.h === 0) return this.lastStats ?? new DataView(new ArrayBuffer(STREAM_STATS_BYTES));
    this.ex.tcw_stream_stats(this.h);
    this.sync();
    const p = this.info(WASM_STREAM_STATS);
    const v = new DataView(this.u8.slice(p, p + STREAM_STATS_BYTES).buffer);
    for (let i = 0; i < host.length; i++) v.setBigUint64(SST_ACCEPTED + 8 * i, BigInt(host[i] as number), true);
    return v;
  }

  free(): void {
    if (this.h === 0) return;
    this.lastStats = this.stats([]);
    this.ex.tcw_stream_free(this.h);
    this.h = 0;
  }
}

const TCS_DONE_ = 0;

/** Feeds over a module instance (the one the codec uses, or its own). */
export function wasmStreamFeed(raw: WasmRaw): StreamFeedFactory {
  return (config: Uint32Array, seed: Uint8Array) => new WasmStreamFeed(raw, config, seed);
}
