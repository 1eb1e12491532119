/**
 * The connection driver (native/driver/stream.h) as a JavaScript socket host drives it: one
 * driver object per {@link StreamFeed}, whatever runs it (the WebAssembly module,
 * ts/transport/stream-wasm.ts; or the addon's feed exports). ts/transport/stream-js.ts owns
 * the sockets and calls a feed once per chunk read, once per round of writes, once per batch
 * of TX records and once per timer; the feed answers with what to do next (the TCS_*
 * actions below). Nothing here imports Node built-ins: the browser bundle carries it.
 *
 * @internal
 */
import type { BackendKind } from '../driver/driver';

/** stream.h actions (a call's answer). */
export const TCS_DONE = 0;
/** connections have bytes to write: collect / write / wrote, then go on */
export const TCS_WRITE = 1;
/** the batch is full: hand it over (takeBatch), then call again */
export const TCS_DELIVER = 2;
/** (recv) the connection's output has no room: keep the rest, write its output, feed the rest
 *  once it drained */
export const TCS_PAUSE = 3;

/** An out list entry (collect): the connection's bytes to write, or its end. */
export const OUT_WRITE = 1;
/** closed and drained: close the socket (then close()) */
export const OUT_CLOSE = 2;

/** A delivered batch (copies: nothing refers to the feed's memory). */
export interface FeedBatch {
  readonly words: Uint32Array;
  readonly data: Uint8Array;
  readonly count: number;
}

/** One driver object (tcs_stream) for a socket host. Times are ms on the host's clock. */
export interface StreamFeed {
  readonly kind: BackendKind;
  /** TX record areas (as UDP): JS writes records here, then {@link flush}. */
  readonly txWords: Uint32Array;
  readonly txBytes: Uint8Array;
  /** The largest chunk (or WebSocket message) one recv call takes. */
  readonly inCap: number;
  /** Bytes the last {@link recv} took. */
  readonly used: number;
  /** tcs_open: a connection is up; addr = the peer's record address words (FAMILY..SCOPE).
   *  TCS_WRITE, or a negative TC_E_* (TC_E_FULL: a bound; close the socket). */
  open(now: number, id: number, addr: Uint32Array): number;
  /** tcs_recv of chunk[start..start + min(len, inCap)): an action; {@link used} = bytes taken. */
  recv(now: number, id: number, chunk: Uint8Array, start: number): number;
  /** tcs_host_event (OPEN / CLOSED records the host makes): 0, E_FULL (deliver first) or E_INVALID. */
  hostEvent(kind: number, id: number, addr: Uint32Array | undefined, status: number, flags: number, data?: Uint8Array): number;
  /** tcs_close_status: the socket of connection id is gone. */
  close(now: number, id: number, status: number, flags: number): number;
  /** tcs_shutdown: closes connection id gracefully (CLOSED record now; its output drains,
   *  then OUT_CLOSE). TCS_WRITE, TCS_DELIVER (hand the batch over, call again) or TC_E_*. */
  shutdown(now: number, id: number): number;
  /** tcs_abort: as shutdown, after an Abort signal with the diagnostic. */
  abort(now: number, id: number, diagnostic: string): number;
  /** Fills the out list (tcs_next_out / tcs_out); returns its length. */
  collect(): number;
  outId(i: number): number;
  outOp(i: number): number;
  /** Entry i's bytes: a view valid until the next call on the feed. */
  outBytes(i: number): Uint8Array;
  /** How many of entry i's bytes the socket took (0: congested, keep them). The host sets it
   *  for every WRITE entry before {@link wrote}. */
  setDone(i: number, n: number): void;
  /** Reports the list (tcs_written); returns how many connections have more to write. */
  wrote(count: number): number;
  /** The socket of connection id drained: queue what its connection holds. */
  kick(id: number): void;
  /** tcs_timer: an action. */
  timer(now: number): number;
  /** tcs_deadline (Infinity: none). */
  deadline(): number;
  /** Copies the TX records in; then {@link flushRun} until it answers TCS_DONE or an error. */
  flushStart(nwords: number, nbytes: number): void;
  flushRun(now: number): number;
  /** Copies the TX record words back (IDs, RCs); returns the failed record count. */
  flushEnd(nwords: number): number;
  /** Records waiting in the batch. */
  batchCount(): number;
  /** The batch as copies, emptied (tcs_delivered). */
  takeBatch(): FeedBatch;
  readBody(id: number, length: number): Uint8Array | number;
  /** The stats struct (SST_* offsets), with the host's counters written in by JS first. */
  stats(host: ArrayLike<number>): DataView;
  free(): void;
}

/** Makes a feed: config = STREAM_CONFIG_WORDS words, seed = SEED_BYTES bytes. */
export type StreamFeedFactory = (config: Uint32Array, seed: Uint8Array) => StreamFeed;
