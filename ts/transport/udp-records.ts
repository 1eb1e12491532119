/**
 * The UDP driver contract shared by the native host (native/binding/udp.c) and the
 * WebAssembly one (./udp-wasm.ts), both running the datagram driver of native/driver/: the
 * batch records (generated: ../driver/abi.ts), the driver interface the server and client
 * are written against, endpoint configuration (tc_ep_config + tc_srv_config), stats read
 * from the driver's stats struct, and address helpers.
 *
 * @internal
 */
import { formatIp } from '../net/ip';
import { networkInterfaces } from '../platform';
import type { EndpointOptions, EndpointStats, SocketAddress } from '../driver/driver';

export type { BlockwiseOptions, EndpointOptions, EndpointStats, ObserveOptions, SocketAddress } from '../driver/driver';
import {
  CONFIG_WORDS,
  EPC_ACK_RANDOM_FACTOR_X1000,
  EPC_AMPLIFICATION_FACTOR,
  EPC_ECHO_LIFETIME_MS,
  EPC_ACK_TIMEOUT_MS,
  EPC_CON_SLOTS,
  EPC_DEDUP_ENTRIES,
  EPC_MAX_CLIENT_REQUESTS,
  EPC_MAX_IN_PROGRESS,
  EPC_MAX_IN_PROGRESS_PER_PEER,
  EPC_MAX_LATENCY_MS,
  EPC_MAX_MESSAGE_SIZE,
  EPC_MAX_RETRANSMIT,
  EPC_NSTART,
  EPC_OVERLOAD_MAX_AGE,
  EPC_PROCESSING_DELAY_MS,
  EPC_RESPONSE_CACHE_BYTES,
  EPC_RESPONSE_TIMEOUT_MS,
  EPC_SEPARATE_ACK_DELAY_MS,
  EPC_VERIFIED_LIFETIME_MS,
  EPC_FLAGS,
  EPF_PROXY,
  EPC_VERIFIED_PEERS,
  RX_WORDS,
  SRVC_BW1_BUSY_MAX_AGE,
  SRVC_BW1_CHUNK_SIZE,
  SRVC_BW1_IDLE_TIMEOUT_MS,
  SRVC_BW1_MAX_BODY,
  SRVC_BW1_MAX_KEY,
  SRVC_BW1_MAX_PER_HOST,
  SRVC_BW1_MAX_PER_PEER,
  SRVC_BW1_MAX_TRANSFERS,
  SRVC_BW1_POOL_BYTES,
  SRVC_BW1_PORT_OFFSET,
  SRVC_BW1_PREFERRED_SZX,
  SRVC_BW1_RECLAIM_IDLE_MS,
  SRVC_BW2_CHUNK_SIZE,
  SRVC_BW2_DEFAULT_LIFETIME_MS,
  SRVC_BW2_MAX_KEY,
  SRVC_BW2_MAX_OPTS,
  SRVC_BW2_MAX_OPT_BYTES,
  SRVC_BW2_MAX_REPS,
  SRVC_BW2_POOL_BYTES,
  SRVC_BW2_PREFERRED_SZX,
  SRVC_MAX_IN_PROGRESS,
  SRVC_MAX_MESSAGE_SIZE,
  SRVC_MAX_RESOURCE_KEYS,
  SRVC_OBS_CONFIRM_FIRST,
  SRVC_OBS_CON_EVERY,
  SRVC_OBS_CON_INTERVAL_MS,
  SRVC_OBS_MAX_JOBS,
  SRVC_OBS_MAX_MESSAGE_SIZE,
  SRVC_OBS_MAX_OBSERVERS,
  SRVC_OBS_MAX_OPTS,
  SRVC_OBS_MAX_PER_HOST,
  SRVC_OBS_MAX_PER_RESOURCE,
  SRVC_OBS_MAX_RESOURCES,
  SRVC_OBS_PORT_OFFSET,
  ST_BAD_OPTIONS,
  ST_BATCHES,
  ST_BLOCKS_IN,
  ST_BLOCKS_OUT,
  ST_BLOCKS_REUSED,
  ST_CLIENT_REQUESTS,
  ST_CON_SLOTS_USED,
  ST_DEDUP_EVICTIONS,
  ST_DEDUP_USED,
  ST_DROPPED,
  ST_DUPLICATES,
  ST_ECHO_CHALLENGES,
  ST_FALLBACK,
  ST_FORMAT_ERRORS,
  ST_GSO_SENDS,
  ST_IN_PROGRESS,
  ST_NON_DUPLICATES,
  ST_NOTIFICATIONS,
  ST_NOTIFICATIONS_SKIPPED,
  ST_OBSERVERS,
  ST_OBSERVERS_REFUSED,
  ST_OBSERVERS_REMOVED,
  ST_OVERLOADS,
  ST_PEERS,
  ST_RECORDS,
  ST_REPLAYS,
  ST_REPS,
  ST_RESETS_SENT,
  ST_RESPONSES_DROPPED,
  ST_RESPONSES_NON,
  ST_RETRANSMITS,
  ST_RX,
  ST_SEND_CALLS,
  ST_SEND_ERRORS,
  ST_SENT,
  ST_TIMEOUTS,
  ST_TX,
  ST_UNMATCHED,
  ST_UPLOADS,
  ST_UPLOADS_DONE,
  ST_UPLOADS_RECLAIMED,
  ST_UPLOADS_REFUSED,
  ST_VERIFIED,
} from '../driver/abi';
import { invalidArgType, outOfRange } from '../errors';

// The record layout, error codes, config word order and stats offsets: generated from the C
// declaration (native/driver/abi.h, scripts/gen-abi.mjs).
export * from '../driver/abi';

/** First tc_opt triple (number, offset, length) of an RX record. */
export const RX_OPTS = RX_WORDS;

/** Size of the tx areas every driver gets: 64 Ki words of records, 2 MiB + 64 KiB of bytes
 *  (a 1 MiB response, served block-wise by the pipeline, fits with room to spare). */
export const TX_TABLE_WORDS = 1 << 16;
export const TX_AREA_BYTES = 2 * 1024 * 1024 + 64 * 1024;

/** Receives batches from a driver: `count` records in `u32`, bytes in `u8` at `base`. */
export type BatchHandler = (u32: Uint32Array, u8: Uint8Array, count: number, base: number) => void;


/**
 * A UDP socket run by tc_ep. Implemented by the native driver and the WASM driver;
 * the server and client code is written once against it.
 */
export interface UdpDriver {
  readonly kind: 'native' | 'wasm';
  /** Address family of the socket. */
  readonly family: 4 | 6;
  /** TX record table and byte area (JS writes records, then calls flush). */
  readonly txWords: Uint32Array;
  readonly txBytes: Uint8Array;
  /** Binds and starts receiving. flags: 1 = IPv6 only, 2 = reuse address. */
  bind(host: string, port: number, flags: number): Promise<void>;
  /** Bound address. */
  address(): SocketAddress;
  /**
   * Runs the tx records in txWords[0, nwords) / txBytes[0, nbytes) and sends what they
   * produce. Returns how many records failed (their rc word is not 0), or a negative core
   * error for a malformed table (or STALE once closed).
   */
  flush(nwords: number, nbytes: number): number;
  /** Whether the socket keeps the event loop (and this driver) alive. */
  setRef(on: boolean): void;
  /**
   * Copies out the Block1 body `id` of a delivered request (SRVF_BODY; `length` from its
   * record) and releases it from the pipeline. Returns the bytes, or a negative core error
   * (E_STALE: unknown, expired, already read, or the driver is closed).
   */
  readBody(id: number, length: number): Uint8Array | number;
  /** Closes the socket; resolves once closed. Records written later are ignored. */
  close(): Promise<void>;
  /** Counters. */
  stats(): EndpointStats;
}

/**
 * Creates a driver of one kind. config: {@link CONFIG_WORDS} words (tc_ep_config then
 * tc_srv_config, see {@link endpointConfig}); seed: {@link SEED_BYTES} random bytes.
 */
export type UdpDriverFactory = (family: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler) => UdpDriver;

/**
 * EndpointStats from the driver's stats struct (tcd_stats, native/driver/abi.h) seen through
 * `v` at byte `at`: the fields at their generated offsets (ST_*), 64-bit ones little-endian.
 */
export function statsFromView(v: DataView, at = 0): EndpointStats {
  const u32 = (o: number): number => v.getUint32(at + o, true);
  const u64 = (o: number): number => v.getUint32(at + o, true) + v.getUint32(at + o + 4, true) * 4294967296;
  return {
    rx: u64(ST_RX),
    tx: u64(ST_TX),
    duplicates: u64(ST_DUPLICATES),
    replays: u64(ST_REPLAYS),
    retransmits: u64(ST_RETRANSMITS),
    resetsSent: u64(ST_RESETS_SENT),
    formatErrors: u64(ST_FORMAT_ERRORS),
    overloads: u64(ST_OVERLOADS),
    badOptions: u64(ST_BAD_OPTIONS),
    dedupEvictions: u64(ST_DEDUP_EVICTIONS),
    timeouts: u64(ST_TIMEOUTS),
    unmatched: u64(ST_UNMATCHED),
    inProgress: u32(ST_IN_PROGRESS),
    clientRequests: u32(ST_CLIENT_REQUESTS),
    conSlotsUsed: u32(ST_CON_SLOTS_USED),
    dedupUsed: u32(ST_DEDUP_USED),
    peers: u32(ST_PEERS),
    batches: u64(ST_BATCHES),
    records: u64(ST_RECORDS),
    sent: u64(ST_SENT) + u64(ST_FALLBACK),
    sendCalls: u64(ST_SEND_CALLS),
    sendErrors: u64(ST_SEND_ERRORS) + u64(ST_DROPPED),
    gsoSends: u64(ST_GSO_SENDS),
    uploads: u32(ST_UPLOADS),
    uploadsDone: u32(ST_UPLOADS_DONE),
    blocksIn: u32(ST_BLOCKS_IN),
    representations: u32(ST_REPS),
    blocksOut: u32(ST_BLOCKS_OUT),
    observers: u32(ST_OBSERVERS),
    notifications: u32(ST_NOTIFICATIONS),
    observersRemoved: u32(ST_OBSERVERS_REMOVED),
    observersRefused: u32(ST_OBSERVERS_REFUSED),
    uploadsRefused: u32(ST_UPLOADS_REFUSED),
    uploadsReclaimed: u32(ST_UPLOADS_RECLAIMED),
    notificationsSkipped: u32(ST_NOTIFICATIONS_SKIPPED),
    blocksReused: u32(ST_BLOCKS_REUSED),
    echoChallenges: u64(ST_ECHO_CHALLENGES),
    verifiedPeers: u32(ST_VERIFIED),
    responsesNon: u64(ST_RESPONSES_NON),
    responsesDropped: u64(ST_RESPONSES_DROPPED),
    nonDuplicates: u64(ST_NON_DUPLICATES),
  };
}

// ------------------------------------------------------------------- configuration

/** An integer option in min..max (dflt when undefined); throws the typed arg errors otherwise. */
export function uint(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw invalidArgType(name, `an integer in ${min}..${max}`, v);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw outOfRange(name, `an integer in ${min}..${max}`, v);
  }
  return v;
}

function flag(name: string, v: boolean | undefined, dflt: boolean): number {
  if (v === undefined) return dflt ? 1 : 0;
  if (typeof v !== 'boolean') throw invalidArgType(name, 'a boolean', v);
  return v ? 1 : 0;
}

function group<T extends object>(name: string, v: T | undefined): Partial<T> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object') throw invalidArgType(name, 'an object', v);
  return v;
}

/**
 * The driver config for the options: tc_ep_config words, then tc_srv_config words (Block1
 * store, Block2 store, Observe registry, then max_in_progress, max_message_size,
 * max_resource_keys; all in struct order). Throws RangeError for bad values (TypeError for a
 * group that is not an object).
 */
export function endpointConfig(o: EndpointOptions & { readonly acceptProxy?: boolean } = {}, role: 'server' | 'client' = 'server'): Uint32Array {
  // A client endpoint serves no uploads, downloads or observers of its own: its server-side
  // tables default to their minimum (a few KiB instead of megabytes); options still apply.
  const client = role === 'client';
  const ackTimeout = uint('ackTimeout', o.ackTimeout, 2000, 1, 600000);
  let factor = 1500;
  if (o.ackRandomFactor !== undefined) {
    const f = o.ackRandomFactor;
    if (typeof f !== 'number') throw invalidArgType('ackRandomFactor', 'a number in 1..10', f);
    if (!(f >= 1 && f <= 10)) throw outOfRange('ackRandomFactor', 'a number in 1..10', f);
    factor = Math.round(f * 1000);
  }
  const maxRetransmit = uint('maxRetransmit', o.maxRetransmit, 4, 0, 20);
  const maxInProgress = uint('maxInProgress', o.maxInProgress, client ? 16 : 4096, 1, 65535);
  const dedupEntries = uint('dedupEntries', o.dedupEntries, Math.max(16384, maxInProgress + 1), maxInProgress + 1, 1 << 26);
  // MAX_TRANSMIT_WAIT = ACK_TIMEOUT * (2^(MAX_RETRANSMIT+1) - 1) * ACK_RANDOM_FACTOR
  const wait = Math.floor((ackTimeout * (2 ** (maxRetransmit + 1) - 1) * factor) / 1000);
  const cfg = new Uint32Array(CONFIG_WORDS);
  cfg[EPC_ACK_TIMEOUT_MS] = ackTimeout;
  cfg[EPC_ACK_RANDOM_FACTOR_X1000] = factor;
  cfg[EPC_MAX_RETRANSMIT] = maxRetransmit;
  cfg[EPC_NSTART] = uint('nstart', o.nstart, 1, 1, 65535);
  cfg[EPC_MAX_LATENCY_MS] = uint('maxLatency', o.maxLatency, 100000, 0, 0xffffffff);
  cfg[EPC_PROCESSING_DELAY_MS] = uint('processingDelay', o.processingDelay, ackTimeout, 0, 0xffffffff);
  cfg[EPC_SEPARATE_ACK_DELAY_MS] = uint('separateResponseDelay', o.separateResponseDelay, 1000, 0, 0xffffffff);
  const overloadMaxAge = uint('overloadMaxAge', o.overloadMaxAge, 2, 0, 0xffffffff);
  cfg[EPC_OVERLOAD_MAX_AGE] = overloadMaxAge;
  cfg[EPC_DEDUP_ENTRIES] = dedupEntries;
  cfg[EPC_RESPONSE_CACHE_BYTES] = uint('responseCacheBytes', o.responseCacheBytes, 2 * 1024 * 1024, 0, 2 ** 31);
  cfg[EPC_MAX_IN_PROGRESS] = maxInProgress;
  cfg[EPC_MAX_IN_PROGRESS_PER_PEER] = uint('maxInProgressPerPeer', o.maxInProgressPerPeer, 256, 1, 0xffffffff);
  cfg[EPC_MAX_CLIENT_REQUESTS] = uint('maxClientRequests', o.maxClientRequests, 1024, 1, 65535);
  cfg[EPC_CON_SLOTS] = uint('conSlots', o.conSlots, 256, 1, 65535);
  const maxMessageSize = uint('maxMessageSize', o.maxMessageSize, 1280, 96, 65507);
  cfg[EPC_MAX_MESSAGE_SIZE] = maxMessageSize;
  cfg[EPC_RESPONSE_TIMEOUT_MS] = uint('responseTimeout', o.responseTimeout, Math.min(wait, 0xffffffff) || 1, 1, 0xffffffff);
  cfg[EPC_AMPLIFICATION_FACTOR] = uint('amplificationLimit', o.amplificationLimit, 3, 0, 1000);
  cfg[EPC_VERIFIED_PEERS] = uint('verifiedPeers', o.verifiedPeers, client ? 16 : 4096, 4, 1 << 20);
  cfg[EPC_ECHO_LIFETIME_MS] = uint('echoLifetime', o.echoLifetime, 30000, 1000, 3600000);
  cfg[EPC_VERIFIED_LIFETIME_MS] = uint('verifiedLifetime', o.verifiedLifetime, 3600000, 1000, 0xffffffff);
  cfg[EPC_FLAGS] = o.acceptProxy === true ? EPF_PROXY : 0;

  // tc_srv_config; the fields not exposed keep the core's defaults (tc_*_config_default)
  const bw = group('blockwise', o.blockwise);
  const ob = group('observe', o.observe);
  const block = uint('blockwise.preferredBlockSize', bw.preferredBlockSize, 1024, 16, 1024);
  if ((block & (block - 1)) !== 0) {
    throw outOfRange('blockwise.preferredBlockSize', 'a power of two in 16..1024', block);
  }
  const szx = Math.log2(block) - 4;
  const maxUploads = uint('blockwise.maxUploads', bw.maxUploads, client ? 1 : 64, 1, 65535);
  const maxObservers = uint('observe.maxObservers', ob.maxObservers, client ? 1 : 16384, 1, 1 << 24);
  const chunk = 1024;
  // Block1 store (tc_bw1_config)
  cfg[SRVC_BW1_MAX_TRANSFERS] = maxUploads;
  cfg[SRVC_BW1_MAX_PER_PEER] = uint('blockwise.maxUploadsPerPeer', bw.maxUploadsPerPeer, Math.min(4, maxUploads), 1, maxUploads);
  cfg[SRVC_BW1_MAX_BODY] = uint('blockwise.maxBodySize', bw.maxBodySize, 1 << 20, 1, 1 << 30);
  cfg[SRVC_BW1_POOL_BYTES] = uint('blockwise.uploadMemory', bw.uploadMemory, client ? chunk : 4 << 20, chunk, 2 ** 31);
  cfg[SRVC_BW1_CHUNK_SIZE] = chunk;
  cfg[SRVC_BW1_MAX_KEY] = 256;
  cfg[SRVC_BW1_IDLE_TIMEOUT_MS] = uint('blockwise.uploadTimeout', bw.uploadTimeout, 120000, 1, 0xffffffff);
  cfg[SRVC_BW1_PREFERRED_SZX] = szx;
  cfg[SRVC_BW1_BUSY_MAX_AGE] = overloadMaxAge;
  cfg[SRVC_BW1_MAX_PER_HOST] = uint('blockwise.maxUploadsPerHost', bw.maxUploadsPerHost, Math.min(16, maxUploads), 1, 65535);
  cfg[SRVC_BW1_PORT_OFFSET] = 1; // the drivers' canonical addresses (family, port, address)
  cfg[SRVC_BW1_RECLAIM_IDLE_MS] = uint('blockwise.uploadReclaimAfter', bw.uploadReclaimAfter, 10000, 1, 0xffffffff);
  // Block2 store (tc_bw2_config)
  cfg[SRVC_BW2_MAX_REPS] = uint('blockwise.maxRepresentations', bw.maxRepresentations, client ? 1 : 64, 1, 65535);
  cfg[SRVC_BW2_POOL_BYTES] = uint('blockwise.cacheMemory', bw.cacheMemory, client ? 4 * chunk : 8 << 20, chunk, 2 ** 31);
  cfg[SRVC_BW2_CHUNK_SIZE] = chunk;
  cfg[SRVC_BW2_MAX_KEY] = 256;
  cfg[SRVC_BW2_MAX_OPT_BYTES] = 256;
  cfg[SRVC_BW2_MAX_OPTS] = 16;
  cfg[SRVC_BW2_PREFERRED_SZX] = szx;
  cfg[SRVC_BW2_DEFAULT_LIFETIME_MS] = uint('blockwise.representationLifetime', bw.representationLifetime, 60000, 1, 0xffffffff);
  // Observe registry (tc_obs_config)
  cfg[SRVC_OBS_MAX_OBSERVERS] = maxObservers;
  cfg[SRVC_OBS_MAX_PER_RESOURCE] = uint('observe.maxObserversPerResource', ob.maxObserversPerResource, Math.min(16384, maxObservers), 1, maxObservers);
  cfg[SRVC_OBS_MAX_RESOURCES] = uint('observe.maxResources', ob.maxResources, client ? 1 : 1024, 1, 1 << 24);
  cfg[SRVC_OBS_CON_EVERY] = uint('observe.conEvery', ob.conEvery, 20, 0, 0xffffffff);
  cfg[SRVC_OBS_CON_INTERVAL_MS] = uint('observe.conInterval', ob.conInterval, 86400000, 1, 0xffffffff);
  cfg[SRVC_OBS_MAX_JOBS] = 8;
  cfg[SRVC_OBS_MAX_MESSAGE_SIZE] = maxMessageSize;
  cfg[SRVC_OBS_MAX_OPTS] = 16;
  cfg[SRVC_OBS_MAX_PER_HOST] = uint('observe.maxObserversPerHost', ob.maxObserversPerHost, Math.min(64, maxObservers), 1, 1 << 24);
  cfg[SRVC_OBS_PORT_OFFSET] = 1; // the drivers' canonical addresses (family, port, address)
  cfg[SRVC_OBS_CONFIRM_FIRST] = flag('observe.confirmFirst', ob.confirmFirst, true);
  // the pipeline: max_in_progress and max_message_size are the ep's
  cfg[SRVC_MAX_IN_PROGRESS] = maxInProgress;
  cfg[SRVC_MAX_MESSAGE_SIZE] = maxMessageSize;
  cfg[SRVC_MAX_RESOURCE_KEYS] = client ? 1 : 256;
  return cfg;
}

// ---------------------------------------------------------------------- addresses

// IPv6 zones

/** IPv6 zone names that are not interface names, interned: scope = 0x80000000 | index. */
const zones: string[] = [];
const zoneIds = new Map<string, number>();

/** The scope id a zone (interface name or number) stands for, for records. */
export function zoneScope(zone: string): number {
  if (/^\d+$/.test(zone)) return Number(zone) >>> 0;
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name !== zone) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv6' && a.scopeid !== undefined && a.scopeid !== 0) return a.scopeid;
  }
  let id = zoneIds.get(zone);
  if (id === undefined) {
    id = (0x80000000 | zones.length) >>> 0;
    zones.push(zone);
    zoneIds.set(zone, id);
  }
  return id;
}

/** The zone text of a scope id (inverse of {@link zoneScope}). */
export function scopeZone(scope: number): string {
  if (scope === 0) return '';
  if (scope & 0x80000000) return zones[scope & 0x7fffffff] ?? String(scope);
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv6' && a.scopeid === scope) return name;
  }
  return String(scope);
}

/**
 * Text of a record's address: `family` (4, else 6), its address words seen as bytes in `b`
 * from byte `at` (the bytes as they lie in memory), and its scope id (IPv6 only).
 */
export function formatRecordAddress(family: number, b: Uint8Array, at: number, scope: number): string {
  const s = formatIp(family === 4 ? 4 : 6, b, at);
  return family === 4 || scope === 0 ? s : `${s}%${scopeZone(scope)}`;
}
