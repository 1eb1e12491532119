/**
 * The connection driver for JavaScript-owned sockets on the native backend: a
 * {@link StreamFeed} over the addon's streamFeed* exports (native/binding/stream_feed.c), so
 * that ts/transport/stream-js.ts can carry WebSockets (or any socket JS holds) with the C core
 * running natively. Each call is one N-API crossing; collect() copies every connection's
 * pending bytes in one go, takeBatch() the whole batch.
 *
 * @internal
 */
import { SST_ACCEPTED, STREAM_STATS_BYTES } from '../driver/abi';
import { TX_AREA_BYTES, TX_TABLE_WORDS } from './udp-records';
import type { FeedBatch, StreamFeed, StreamFeedFactory } from './stream-feed';

/** The addon's feed exports. */
export interface StreamFeedAddon {
  streamFeedCreate(config: Uint32Array, seed: Uint8Array, info: Uint32Array, out: Uint32Array, txWords: Uint32Array, txBytes: Uint8Array): unknown;
  streamFeedFree(f: unknown): void;
  streamFeedOpen(f: unknown, now: number, id: number, addr: Uint32Array): number;
  streamFeedRecv(f: unknown, now: number, id: number, chunk: Uint8Array, start: number): number;
  streamFeedHostEvent(f: unknown, kind: number, id: number, addr: Uint32Array | null, status: number, flags: number, data: Uint8Array | null): number;
  streamFeedClose(f: unknown, now: number, id: number, status: number, flags: number): number;
  streamFeedShutdown(f: unknown, now: number, id: number): number;
  streamFeedAbort(f: unknown, now: number, id: number, diagnostic: string): number;
  streamFeedCollect(f: unknown): ArrayBuffer | undefined;
  streamFeedWrote(f: unknown): number;
  streamFeedKick(f: unknown, id: number): number;
  streamFeedTimer(f: unknown, now: number): number;
  streamFeedDeadline(f: unknown): number;
  streamFeedFlush(f: unknown, now: number, nwords: number, nbytes: number): number;
  streamFeedTxFailed(f: unknown): number;
  streamFeedBatchCount(f: unknown): number;
  streamFeedTakeBatch(f: unknown): ArrayBuffer | undefined;
  streamFeedReadBody(f: unknown, id: number, length: number): Uint8Array | number;
  streamFeedStats(f: unknown, out: Uint8Array): void;
}

const OUT_MAX = 1024;
const E_STALE = -17;
const EMPTY = new Uint8Array(0);

class NativeStreamFeed implements StreamFeed {
  readonly kind = 'native' as const;
  readonly txWords = new Uint32Array(TX_TABLE_WORDS);
  readonly txBytes = new Uint8Array(TX_AREA_BYTES);
  /** recv has no chunk limit of its own */
  readonly inCap = 1 << 30;
  private readonly info = new Uint32Array(4);
  private readonly out = new Uint32Array(4 * OUT_MAX);
  /** the last collect's bytes and entry lengths */
  private bytes: Uint8Array = EMPTY;
  private readonly lens = new Uint32Array(OUT_MAX);
  private f: unknown;
  private lastStats: DataView | undefined;
  private flushWords = 0;
  private flushBytes = 0;

  constructor(
    private readonly addon: StreamFeedAddon,
    config: Uint32Array,
    seed: Uint8Array,
  ) {
    this.f = addon.streamFeedCreate(config, seed, this.info, this.out, this.txWords, this.txBytes);
  }

  get used(): number {
    return this.info[0] as number;
  }

  open(now: number, id: number, addr: Uint32Array): number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedOpen(this.f, now, id >>> 0, addr);
  }

  recv(now: number, id: number, chunk: Uint8Array, start: number): number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedRecv(this.f, now, id >>> 0, chunk, start);
  }

  hostEvent(kind: number, id: number, addr: Uint32Array | undefined, status: number, flags: number, data?: Uint8Array): number {
    if (this.f === undefined) return E_STALE;
    return this.addon.streamFeedHostEvent(this.f, kind, id >>> 0, addr ?? null, status | 0, flags >>> 0, data ?? null);
  }

  close(now: number, id: number, status: number, flags: number): number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedClose(this.f, now, id >>> 0, status | 0, flags >>> 0);
  }

  shutdown(now: number, id: number): number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedShutdown(this.f, now, id >>> 0);
  }

  abort(now: number, id: number, diagnostic: string): number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedAbort(this.f, now, id >>> 0, diagnostic);
  }

  collect(): number {
    if (this.f === undefined) return 0;
    const ab = this.addon.streamFeedCollect(this.f);
    const n = this.info[3] as number;
    this.bytes = ab === undefined ? EMPTY : new Uint8Array(ab);
    for (let i = 0; i < n; i++) this.lens[i] = this.out[4 * i + 3] as number;
    return n;
  }

  outId(i: number): number {
    return this.out[4 * i] as number;
  }

  outOp(i: number): number {
    return this.out[4 * i + 1] as number;
  }

  outBytes(i: number): Uint8Array {
    const off = this.out[4 * i + 2] as number;
    return this.bytes.subarray(off, off + (this.lens[i] as number));
  }

  setDone(i: number, n: number): void {
    this.out[4 * i + 3] = Math.min(n, this.lens[i] as number);
  }

  wrote(count: number): number {
    if (this.f === undefined) return 0;
    this.info[3] = Math.min(count, this.info[3] as number);
    return this.addon.streamFeedWrote(this.f);
  }

  kick(id: number): void {
    if (this.f !== undefined) this.addon.streamFeedKick(this.f, id >>> 0);
  }

  timer(now: number): number {
    return this.f === undefined ? 0 : this.addon.streamFeedTimer(this.f, now);
  }

  deadline(): number {
    return this.f === undefined ? Infinity : this.addon.streamFeedDeadline(this.f);
  }

  flushStart(nwords: number, nbytes: number): void {
    this.flushWords = nwords;
    this.flushBytes = nbytes;
  }

  flushRun(now: number): number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedFlush(this.f, now, this.flushWords, this.flushBytes);
  }

  flushEnd(): number {
    return this.f === undefined ? 0 : this.addon.streamFeedTxFailed(this.f);
  }

  batchCount(): number {
    return this.f === undefined ? 0 : this.addon.streamFeedBatchCount(this.f);
  }

  takeBatch(): FeedBatch {
    const ab = this.f === undefined ? undefined : this.addon.streamFeedTakeBatch(this.f);
    if (ab === undefined) return { words: new Uint32Array(0), data: EMPTY, count: 0 };
    const wbytes = this.info[2] as number;
    return { words: new Uint32Array(ab, 0, wbytes >>> 2), data: new Uint8Array(ab, wbytes), count: this.info[1] as number };
  }

  readBody(id: number, length: number): Uint8Array | number {
    return this.f === undefined ? E_STALE : this.addon.streamFeedReadBody(this.f, id >>> 0, length);
  }

  stats(host: ArrayLike<number>): DataView {
    if (this.f === undefined) return this.lastStats ?? new DataView(new ArrayBuffer(STREAM_STATS_BYTES));
    const buf = new Uint8Array(STREAM_STATS_BYTES);
    this.addon.streamFeedStats(this.f, buf);
    const v = new DataView(buf.buffer);
    for (let i = 0; i < host.length; i++) v.setBigUint64(SST_ACCEPTED + 8 * i, BigInt(host[i] as number), true);
    return v;
  }

  free(): void {
    if (this.f === undefined) return;
    this.lastStats = this.stats([]);
    this.addon.streamFeedFree(this.f);
    this.f = undefined;
  }
}

/** Feeds over the addon (the addon's streamFeed* exports). */
export function nativeStreamFeed(addon: StreamFeedAddon): StreamFeedFactory {
  return (config: Uint32Array, seed: Uint8Array) => new NativeStreamFeed(addon, config, seed);
}
