/**
 * The UDP driver contract shared by the native driver (native/binding/udp.c) and the
 * WebAssembly one (./udp-wasm.ts): the batch record layout of native/binding/ep_batch.h,
 * the driver interface the server and client are written against, endpoint configuration
 * (tc_ep_config + tc_srv_config) and address helpers.
 *
 * @internal
 */
import { networkInterfaces } from 'node:os';
import { CoapError } from '../errors';

/** ep_batch.h TCB_ABI: bump together. */
export const BATCH_ABI = 2;

// ---------------------------------------------------------------------- RX records
/** Words of an RX record before its options. */
export const RX_WORDS = 25;
export const RX_KIND = 0;
export const RX_ID = 1;
export const RX_STATUS = 2;
export const RX_FLAGS = 3;
export const RX_FAMILY = 4;
export const RX_PORT = 5;
export const RX_IP = 6;
export const RX_SCOPE = 10;
export const RX_DATA = 11;
export const RX_LEN = 12;
/** tc_msg words start here: type, code, message_id, token off, token len, option count,
 *  payload off, payload len, length. Offsets are into the batch's byte area. */
export const RX_MSG = 13;
export const RX_TYPE = RX_MSG;
export const RX_CODE = RX_MSG + 1;
export const RX_MID = RX_MSG + 2;
export const RX_TOKEN_OFF = RX_MSG + 3;
export const RX_TOKEN_LEN = RX_MSG + 4;
export const RX_OPT_COUNT = RX_MSG + 5;
export const RX_PAYLOAD_OFF = RX_MSG + 6;
export const RX_PAYLOAD_LEN = RX_MSG + 7;
/** tc_srv_req: TC_SRVF_* flags (0 for everything but a request). */
export const RX_SRV_FLAGS = 22;
/** tc_srv_req: id of a Block1 body waiting in the pipeline (SRVF_BODY); read with readBody. */
export const RX_BODY_ID = 23;
/** tc_srv_req: length of that body (the datagram's payload is then only its last block). */
export const RX_BODY_LEN = 24;
/** First tc_opt triple (number, offset, length). */
export const RX_OPTS = 25;

/** TC_SRVF_*: a GET/FETCH with Observe 0 (answer with a resource id to register it). */
export const SRVF_OBSERVE = 1;
/** TC_SRVF_*: the request's Block1 body waits in the pipeline (RX_BODY_ID, RX_BODY_LEN). */
export const SRVF_BODY = 2;
/** TC_SRVF_*: the request carried Block2 (the response will be served block-wise). */
export const SRVF_BLOCK2 = 4;

/** tc_ep_kind */
export const EV_REQUEST = 1;
export const EV_RESPONSE = 2;
export const EV_FAILED = 3;
export const EV_ACKED = 4;
/** tc_ep_event flags */
export const EVF_CONFIRMABLE = 1;
export const EVF_LAST = 2;

// ---------------------------------------------------------------------- TX records
export const TX_RESPOND = 1;
export const TX_REQUEST = 2;
export const TX_CANCEL = 3;
export const TX_DROP = 4;
export const TX_PING = 5;
export const TX_NOTIFY = 6;
/** RESPOND: [1] id [2] rc [3] code [4] payload off [5] len [6] option count [7] resource. */
export const TX_RESPOND_WORDS = 8;
/** NOTIFY: [1] resource [2] rc [3] flags (OBS_CON) [4] code [5] payload off [6] len [7] option count. */
export const TX_NOTIFY_WORDS = 8;
export const TX_REQUEST_WORDS = 16;
export const TX_SMALL_WORDS = 3;
export const TX_PING_WORDS = 10;
/** tc_ep_request flags */
export const REQ_CON = 1;
export const REQ_KEEP = 2;
/**
 * REQUEST flag of the record (not the core's): word 12 is the caller's token in the byte
 * area, offset << REQ_TOKEN_SHIFT | length (0..32), instead of a length to generate.
 */
export const REQ_TOKEN = 0x100;
export const REQ_TOKEN_SHIFT = 6;
/** tc_srv_notify flags: send the notification as CON to every observer. */
export const OBS_CON = 1;

/** Size of the tx areas every driver gets: 64 Ki words of records, 2 MiB + 64 KiB of bytes
 *  (a 1 MiB response, served block-wise by the pipeline, fits with room to spare). */
export const TX_TABLE_WORDS = 1 << 16;
export const TX_AREA_BYTES = 2 * 1024 * 1024 + 64 * 1024;

// Core error codes the transport layer looks at.
export const E_MESSAGE_TOO_LARGE = -13;
export const E_BUFFER_TOO_SMALL = -15;
export const E_INVALID = -16;
export const E_STALE = -17;
export const E_FULL = -18;
export const E_TIMEOUT = -19;
export const E_RESET = -20;
export const E_BAD_OPTION = -21;

/**
 * A view of one delivered batch: record words and the byte area (offsets in records are
 * relative to `base` in `u8`).
 */
export class Batch {
  constructor(
    readonly u32: Uint32Array,
    readonly u8: Uint8Array,
    readonly base: number,
  ) {}
}

/** Receives batches from a driver: `count` records in `u32`, bytes in `u8` at `base`. */
export type BatchHandler = (u32: Uint32Array, u8: Uint8Array, count: number, base: number) => void;

/** Where a socket is bound. */
export interface SocketAddress {
  /** IP address, e.g. `'127.0.0.1'` or `'::'`. */
  readonly address: string;
  /** `'IPv4'` or `'IPv6'`. */
  readonly family: 'IPv4' | 'IPv6';
  /** UDP port. */
  readonly port: number;
}

/** Counters of an endpoint: messaging (tc_ep_stats), the server pipeline (tc_srv_stats) and
 *  the driver. */
export interface EndpointStats {
  /** Datagrams received and looked at. */
  rx: number;
  /** Datagrams queued for sending. */
  tx: number;
  /** Duplicate CON/NON messages detected. */
  duplicates: number;
  /** Cached responses replayed to duplicates. */
  replays: number;
  /** CON retransmissions. */
  retransmits: number;
  /** RST messages sent. */
  resetsSent: number;
  /** Messages rejected as malformed. */
  formatErrors: number;
  /** Requests answered 5.03 because a table was full. */
  overloads: number;
  /** Requests or responses with unrecognized critical options. */
  badOptions: number;
  /** Dedup records evicted before their lifetime ended. */
  dedupEvictions: number;
  /** Client requests given up. */
  timeouts: number;
  /** ACK/RST/responses matching nothing outstanding. */
  unmatched: number;
  /** Requests handed to the application and not yet answered. */
  inProgress: number;
  /** Outstanding client requests. */
  clientRequests: number;
  /** CON slots in use. */
  conSlotsUsed: number;
  /** Live dedup records. */
  dedupUsed: number;
  /** Entries in the per-peer table. */
  peers: number;
  /** Driver: batches handed to JS, and records in them. */
  batches: number;
  records: number;
  /** Driver: datagrams sent, and send calls (sendmmsg on native). */
  sent: number;
  sendCalls: number;
  /** Driver: datagrams that could not be sent (errors, or dropped under overload). */
  sendErrors: number;
  /** Driver: UDP GSO messages sent, each carrying several datagrams to one peer (native only). */
  gsoSends: number;
  /** Block1 uploads being reassembled now. */
  uploads: number;
  /** Block1 uploads completed (handed to the application). */
  uploadsDone: number;
  /** Block1 requests the pipeline answered itself (2.31 Continue and errors). */
  blocksIn: number;
  /** Block2 representations cached now. */
  representations: number;
  /** Block2 blocks served (from the cache, or the first of a large response). */
  blocksOut: number;
  /** Observe registrations now. */
  observers: number;
  /** Notification datagrams queued. */
  notifications: number;
  /** Observers removed (RST, CON timeout, or a final notification). */
  observersRemoved: number;
  /** Observe registrations served without Observe because a bound was reached (in total, per
   *  resource or per host). */
  observersRefused: number;
  /** Block1 requests answered 5.03 because a bound was reached (slots, memory, per client
   *  endpoint or per host). */
  uploadsRefused: number;
  /** Stalled uploads dropped to make room for another one. */
  uploadsReclaimed: number;
  /** Notifications not sent to observers that have not yet acknowledged one (their first, CON,
   *  still in flight). */
  notificationsSkipped: number;
  /** Block-0 GET/FETCH requests answered from a cached representation still within its
   *  Max-Age, without running the handler. */
  blocksReused: number;
  /** Amplification defence (RFC 9175 §2.4): 4.01 + Echo sent instead of a response too large
   *  for an endpoint that has not shown it receives. */
  echoChallenges: number;
  /** Endpoints remembered as verified (they echoed a value the server sent). */
  verifiedPeers: number;
  /** Separate responses to CON requests sent NON because every CON slot was busy (instead of
   *  being dropped). */
  responsesNon: number;
  /** Accepted requests whose response could not be sent at all. Stays 0. */
  responsesDropped: number;
  /** Duplicate NON requests ignored (RFC 7252 §4.5). */
  nonDuplicates: number;
}

/** Words of tc_srv_stats (uploads, uploads done, blocks in, representations, blocks out,
 *  observers, notifications, observers removed). */
export const SRV_STATS_WORDS = 13;

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

/** Bytes of the seed a driver takes: 32 for tc_ep, 16 for tc_srv. */
export const SEED_BYTES = 48;

/**
 * Creates a driver of one kind. config: {@link CONFIG_WORDS} words (tc_ep_config then
 * tc_srv_config, see {@link endpointConfig}); seed: {@link SEED_BYTES} random bytes.
 */
export type UdpDriverFactory = (family: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler) => UdpDriver;

/** Fills EndpointStats from tc_ep_stats words (in order), tc_srv_stats words (`srv`, in
 *  order, from `at`) and driver counters. */
export function statsFrom(
  s: ArrayLike<number>,
  srv: ArrayLike<number>,
  at: number,
  batches: number,
  records: number,
  sent: number,
  sendCalls: number,
  sendErrors: number,
  gsoSends = 0,
  ep2: ArrayLike<number> = [],
  ep2At = 0,
): EndpointStats {
  return {
    rx: s[0] as number,
    tx: s[1] as number,
    duplicates: s[2] as number,
    replays: s[3] as number,
    retransmits: s[4] as number,
    resetsSent: s[5] as number,
    formatErrors: s[6] as number,
    overloads: s[7] as number,
    badOptions: s[8] as number,
    dedupEvictions: s[9] as number,
    timeouts: s[10] as number,
    unmatched: s[11] as number,
    inProgress: s[12] as number,
    clientRequests: s[13] as number,
    conSlotsUsed: s[14] as number,
    dedupUsed: s[15] as number,
    peers: s[16] as number,
    batches,
    records,
    sent,
    sendCalls,
    sendErrors,
    gsoSends,
    uploads: srv[at] as number,
    uploadsDone: srv[at + 1] as number,
    blocksIn: srv[at + 2] as number,
    representations: srv[at + 3] as number,
    blocksOut: srv[at + 4] as number,
    observers: srv[at + 5] as number,
    notifications: srv[at + 6] as number,
    observersRemoved: srv[at + 7] as number,
    observersRefused: srv[at + 8] as number,
    uploadsRefused: srv[at + 9] as number,
    uploadsReclaimed: srv[at + 10] as number,
    notificationsSkipped: srv[at + 11] as number,
    blocksReused: srv[at + 12] as number,
    echoChallenges: (ep2[ep2At] as number | undefined) ?? 0,
    responsesNon: (ep2[ep2At + 1] as number | undefined) ?? 0,
    responsesDropped: (ep2[ep2At + 2] as number | undefined) ?? 0,
    nonDuplicates: (ep2[ep2At + 3] as number | undefined) ?? 0,
    verifiedPeers: (ep2[ep2At + 4] as number | undefined) ?? 0,
  };
}

// ------------------------------------------------------------------- configuration

/**
 * Block-wise transfer (RFC 7959) settings of a server endpoint. The core reassembles Block1
 * uploads before the handler runs and serves large responses block by block from a cache.
 */
export interface BlockwiseOptions {
  /** Largest request body accepted through Block1, in bytes (larger: 4.13). Default 1 MiB, 1..2^30. */
  readonly maxBodySize?: number;
  /**
   * Block size the server asks clients for (Block1) and serves (Block2) when the client
   * names none or a larger one: 16, 32, ..., 1024. A response larger than this is served
   * block-wise. Default 1024.
   */
  readonly preferredBlockSize?: number;
  /** Block1 uploads being reassembled at once (more: 5.03). Default 64, 1..65535. */
  readonly maxUploads?: number;
  /** The same, per client endpoint. Default min(4, maxUploads), 1..maxUploads. */
  readonly maxUploadsPerPeer?: number;
  /** Bytes of upload bodies stored at once over all uploads. Default 4 MiB, 1024..2^31. */
  readonly uploadMemory?: number;
  /** The same, per client host (IP address, any port). Default min(16, maxUploads), >= 1. */
  readonly maxUploadsPerHost?: number;
  /** An upload that gets no block for this many ms is dropped. Default 120000, >= 1. */
  readonly uploadTimeout?: number;
  /**
   * When the upload slots or memory are full, an upload idle for at least this many ms is
   * dropped to make room (the least recently active one of the host holding the most
   * uploads), rather than refusing everyone until uploadTimeout. Default 10000, >= 1.
   */
  readonly uploadReclaimAfter?: number;
  /** Large responses (representations) cached for Block2 at once. Default 64, 1..65535. */
  readonly maxRepresentations?: number;
  /** Bytes of cached representations over all of them. Default 8 MiB, 1024..2^31. */
  readonly cacheMemory?: number;
  /** How long (ms) a cached representation serves further blocks. Default 60000, >= 1. */
  readonly representationLifetime?: number;
}

/** Observe (RFC 7641) settings of a server endpoint: the registry of observers. */
export interface ObserveOptions {
  /** Observe registrations in total (more: the response goes without Observe). Default 16384, 1..2^24. */
  readonly maxObservers?: number;
  /** Registrations per resource. Default min(16384, maxObservers), 1..maxObservers. */
  readonly maxObserversPerResource?: number;
  /** Resources with observers at once. Default 1024, 1..2^24. */
  readonly maxResources?: number;
  /** Registrations per client host (IP address, any port). Default min(64, maxObservers), >= 1. */
  readonly maxObserversPerHost?: number;
  /**
   * An observer that has not yet acknowledged a notification gets confirmable ones only (a
   * newer one replacing the one unacknowledged, at most 8, then none until it acknowledges),
   * so an observer that vanished is removed after one notification's retransmissions instead
   * of being sent every change. Default true.
   */
  readonly confirmFirst?: boolean;
  /**
   * Every conEvery-th notification to an observer is sent confirmable (1 = all), to find
   * out whether it is still there; 0 = only by time (conInterval). Default 20.
   */
  readonly conEvery?: number;
  /** An observer not sent a CON notification for this many ms gets the next one as CON (RFC 7641 §4.5). Default 86400000 (24 h), >= 1. */
  readonly conInterval?: number;
}

/**
 * Messaging-layer settings of an endpoint (RFC 7252 §4.8 transmission parameters and
 * the bounds of every table), with the server pipeline's block-wise and Observe bounds.
 * Every field is optional; the defaults are the RFC's. On a client (an `Agent`) the
 * server-side tables default to their minimum (maxInProgress 16, one upload, one cached
 * representation, one observer): a client serves nothing.
 */
export interface EndpointOptions {
  /** ACK_TIMEOUT in ms: first retransmission timeout of a CON message. Default 2000. */
  readonly ackTimeout?: number;
  /** ACK_RANDOM_FACTOR (1..10): the timeout is random in [ackTimeout, ackTimeout × this]. Default 1.5. */
  readonly ackRandomFactor?: number;
  /** MAX_RETRANSMIT (0..20). Default 4. */
  readonly maxRetransmit?: number;
  /** NSTART: outstanding CON requests per peer; more are held until one completes. Default 1. */
  readonly nstart?: number;
  /** MAX_LATENCY in ms (for EXCHANGE_LIFETIME / NON_LIFETIME). Default 100000. */
  readonly maxLatency?: number;
  /** PROCESSING_DELAY in ms. Default: ackTimeout. */
  readonly processingDelay?: number;
  /**
   * Server: a CON request not answered within this many ms gets an empty ACK, and the
   * response then follows as a separate CON message. Default 1000.
   */
  readonly separateResponseDelay?: number;
  /** Max-Age (s) of the 5.03 sent when a request cannot be taken. Default 2. */
  readonly overloadMaxAge?: number;
  /** Remembered (peer, Message ID) pairs for deduplication (oldest evicted first). Default 16384. */
  readonly dedupEntries?: number;
  /** Bytes of responses cached to replay to duplicates; 0 disables replay. Default 2 MiB. */
  readonly responseCacheBytes?: number;
  /** Server: requests handed to handlers and not yet answered (more get 5.03). Default 4096, at most 65535. */
  readonly maxInProgress?: number;
  /** Server: the same, per client endpoint. Default 256. */
  readonly maxInProgressPerPeer?: number;
  /** Client: outstanding requests (CON or NON). Default 1024, at most 65535. */
  readonly maxClientRequests?: number;
  /** CON messages awaiting ACK (client requests, separate responses). Default 256, at most 65535. */
  readonly conSlots?: number;
  /** Largest message sent, in bytes (96..65507). Default 1280. */
  readonly maxMessageSize?: number;
  /**
   * Client: give up waiting for a separate or NON response after this many ms.
   * Default MAX_TRANSMIT_WAIT (93000 with the default transmission parameters).
   */
  readonly responseTimeout?: number;
  /**
   * Amplification defence (RFC 9175 §2.4): toward an endpoint (address and port) that has not
   * shown it receives, a response is at most this many times the request's bytes; a larger
   * one is replaced by 4.01 Unauthorized with an Echo option, and an Observe registration from
   * such an endpoint is answered so before the handler runs. A client that repeats the request
   * with the Echo value (this library's client and libcoap's do) is verified from then on.
   * Default 3; 0 turns the defence off.
   */
  readonly amplificationLimit?: number;
  /** Endpoints remembered as verified (bounded; the one expiring soonest makes room). Default 4096, 4..2^20. */
  readonly verifiedPeers?: number;
  /** How long (ms) an Echo value the server sent is accepted. Default 30000, 1000..3600000. */
  readonly echoLifetime?: number;
  /** How long (ms) an endpoint stays verified after it echoed. Default 3600000, >= 1000. */
  readonly verifiedLifetime?: number;
  /** Block-wise transfers (RFC 7959): upload and response-cache bounds, block size. */
  readonly blockwise?: BlockwiseOptions;
  /** Observe (RFC 7641): observer registry bounds and CON pacing of notifications. */
  readonly observe?: ObserveOptions;
}

function uint(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, not ${String(v)}`);
  }
  return v;
}

/** Words of tc_ep_config, of tc_srv_config, and of the config a driver takes (both). */
export const EP_CONFIG_WORDS = 20;
export const SRV_CONFIG_WORDS = 34;
export const CONFIG_WORDS = EP_CONFIG_WORDS + SRV_CONFIG_WORDS;

function flag(name: string, v: boolean | undefined, dflt: boolean): number {
  if (v === undefined) return dflt ? 1 : 0;
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean, not ${String(v)}`);
  return v ? 1 : 0;
}

function group<T extends object>(name: string, v: T | undefined): Partial<T> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object') throw new TypeError(`${name} must be an object, not ${String(v)}`);
  return v;
}

/**
 * The driver config for the options: tc_ep_config words, then tc_srv_config words (Block1
 * store, Block2 store, Observe registry, then max_in_progress, max_message_size,
 * max_resource_keys; all in struct order). Throws RangeError for bad values (TypeError for a
 * group that is not an object).
 */
export function endpointConfig(o: EndpointOptions = {}, role: 'server' | 'client' = 'server'): Uint32Array {
  // A client endpoint serves no uploads, downloads or observers of its own: its server-side
  // tables default to their minimum (a few KiB instead of megabytes); options still apply.
  const client = role === 'client';
  const ackTimeout = uint('ackTimeout', o.ackTimeout, 2000, 1, 600000);
  let factor = 1500;
  if (o.ackRandomFactor !== undefined) {
    const f = o.ackRandomFactor;
    if (typeof f !== 'number' || !(f >= 1 && f <= 10)) throw new RangeError(`ackRandomFactor must be in 1..10, not ${String(f)}`);
    factor = Math.round(f * 1000);
  }
  const maxRetransmit = uint('maxRetransmit', o.maxRetransmit, 4, 0, 20);
  const maxInProgress = uint('maxInProgress', o.maxInProgress, client ? 16 : 4096, 1, 65535);
  const dedupEntries = uint('dedupEntries', o.dedupEntries, Math.max(16384, maxInProgress + 1), maxInProgress + 1, 1 << 26);
  // MAX_TRANSMIT_WAIT = ACK_TIMEOUT * (2^(MAX_RETRANSMIT+1) - 1) * ACK_RANDOM_FACTOR
  const wait = Math.floor((ackTimeout * (2 ** (maxRetransmit + 1) - 1) * factor) / 1000);
  const cfg = new Uint32Array(CONFIG_WORDS);
  cfg[0] = ackTimeout;
  cfg[1] = factor;
  cfg[2] = maxRetransmit;
  cfg[3] = uint('nstart', o.nstart, 1, 1, 65535);
  cfg[4] = uint('maxLatency', o.maxLatency, 100000, 0, 0xffffffff);
  cfg[5] = uint('processingDelay', o.processingDelay, ackTimeout, 0, 0xffffffff);
  cfg[6] = uint('separateResponseDelay', o.separateResponseDelay, 1000, 0, 0xffffffff);
  cfg[7] = uint('overloadMaxAge', o.overloadMaxAge, 2, 0, 0xffffffff);
  cfg[8] = dedupEntries;
  cfg[9] = uint('responseCacheBytes', o.responseCacheBytes, 2 * 1024 * 1024, 0, 2 ** 31);
  cfg[10] = maxInProgress;
  cfg[11] = uint('maxInProgressPerPeer', o.maxInProgressPerPeer, 256, 1, 0xffffffff);
  cfg[12] = uint('maxClientRequests', o.maxClientRequests, 1024, 1, 65535);
  cfg[13] = uint('conSlots', o.conSlots, 256, 1, 65535);
  cfg[14] = uint('maxMessageSize', o.maxMessageSize, 1280, 96, 65507);
  cfg[15] = uint('responseTimeout', o.responseTimeout, Math.min(wait, 0xffffffff) || 1, 1, 0xffffffff);
  cfg[16] = uint('amplificationLimit', o.amplificationLimit, 3, 0, 1000);
  cfg[17] = uint('verifiedPeers', o.verifiedPeers, client ? 16 : 4096, 4, 1 << 20);
  cfg[18] = uint('echoLifetime', o.echoLifetime, 30000, 1000, 3600000);
  cfg[19] = uint('verifiedLifetime', o.verifiedLifetime, 3600000, 1000, 0xffffffff);

  // tc_srv_config; the fields not exposed keep the core's defaults (tc_*_config_default)
  const bw = group('blockwise', o.blockwise);
  const ob = group('observe', o.observe);
  const block = uint('blockwise.preferredBlockSize', bw.preferredBlockSize, 1024, 16, 1024);
  if ((block & (block - 1)) !== 0) {
    throw new RangeError(`blockwise.preferredBlockSize must be a power of two in 16..1024, not ${block}`);
  }
  const szx = Math.log2(block) - 4;
  const maxUploads = uint('blockwise.maxUploads', bw.maxUploads, client ? 1 : 64, 1, 65535);
  const maxObservers = uint('observe.maxObservers', ob.maxObservers, client ? 1 : 16384, 1, 1 << 24);
  const chunk = 1024;
  const srv = [
    // Block1 store (tc_bw1_config)
    maxUploads,
    uint('blockwise.maxUploadsPerPeer', bw.maxUploadsPerPeer, Math.min(4, maxUploads), 1, maxUploads),
    uint('blockwise.maxBodySize', bw.maxBodySize, 1 << 20, 1, 1 << 30),
    uint('blockwise.uploadMemory', bw.uploadMemory, client ? chunk : 4 << 20, chunk, 2 ** 31),
    chunk,
    256, // max_key
    uint('blockwise.uploadTimeout', bw.uploadTimeout, 120000, 1, 0xffffffff),
    szx,
    cfg[7] as number, // busy_max_age: the ep's overloadMaxAge
    uint('blockwise.maxUploadsPerHost', bw.maxUploadsPerHost, Math.min(16, maxUploads), 1, 65535),
    1, // port_offset: the drivers' canonical addresses (family, port, address)
    uint('blockwise.uploadReclaimAfter', bw.uploadReclaimAfter, 10000, 1, 0xffffffff),
    // Block2 store (tc_bw2_config)
    uint('blockwise.maxRepresentations', bw.maxRepresentations, client ? 1 : 64, 1, 65535),
    uint('blockwise.cacheMemory', bw.cacheMemory, client ? 4 * chunk : 8 << 20, chunk, 2 ** 31),
    chunk,
    256, // max_key
    256, // max_opt_bytes
    16, // max_opts
    szx,
    uint('blockwise.representationLifetime', bw.representationLifetime, 60000, 1, 0xffffffff),
    // Observe registry (tc_obs_config)
    maxObservers,
    uint('observe.maxObserversPerResource', ob.maxObserversPerResource, Math.min(16384, maxObservers), 1, maxObservers),
    uint('observe.maxResources', ob.maxResources, client ? 1 : 1024, 1, 1 << 24),
    uint('observe.conEvery', ob.conEvery, 20, 0, 0xffffffff),
    uint('observe.conInterval', ob.conInterval, 86400000, 1, 0xffffffff),
    8, // max_jobs
    cfg[14] as number, // max_message_size: the ep's
    16, // max_opts
    uint('observe.maxObserversPerHost', ob.maxObserversPerHost, Math.min(64, maxObservers), 1, 1 << 24),
    1, // port_offset
    flag('observe.confirmFirst', ob.confirmFirst, true),
    // the pipeline
    maxInProgress,
    cfg[14] as number,
    client ? 1 : 256, // max_resource_keys
  ];
  cfg.set(srv, EP_CONFIG_WORDS);
  return cfg;
}

// ---------------------------------------------------------------------- addresses

/** An IP address parsed for records: family, 16 bytes (IPv4 in the first 4), scope id. */
export interface IpBytes {
  family: 4 | 6;
  bytes: Uint8Array;
  scope: number;
}

/** Parses a dotted IPv4 address into out[0..4); false if it is not one. */
export function parseIPv4(s: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let k = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || k > 3) return false;
      out[at + k++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return false; // leading zero
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return false;
    } else {
      return false;
    }
  }
  return k === 4;
}

/** Parses an IPv6 address (no brackets; optional `%zone`) into out[0..16); false if not one. */
export function parseIPv6(s: string, out: Uint8Array): boolean {
  const pct = s.indexOf('%');
  const addr = pct >= 0 ? s.slice(0, pct) : s;
  const dbl = addr.indexOf('::');
  if (dbl >= 0 && addr.indexOf('::', dbl + 1) >= 0) return false;
  const head = dbl >= 0 ? addr.slice(0, dbl) : addr;
  const tail = dbl >= 0 ? addr.slice(dbl + 2) : '';
  const groups = (part: string, into: number[]): boolean => {
    if (part === '') return true;
    const ps = part.split(':');
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i] as string;
      if (i === ps.length - 1 && p.indexOf('.') >= 0) {
        const v4 = new Uint8Array(4);
        if (!parseIPv4(p, v4, 0)) return false;
        into.push((v4[0] as number) << 8 | (v4[1] as number), (v4[2] as number) << 8 | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false;
      into.push(parseInt(p, 16));
    }
    return true;
  };
  const h: number[] = [];
  const t: number[] = [];
  if (!groups(head, h) || !groups(tail, t)) return false;
  if (dbl < 0 ? h.length !== 8 : h.length + t.length > 7) return false;
  const all = h.concat(new Array<number>(8 - h.length - t.length).fill(0), t);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = (all[i] as number) >> 8;
    out[2 * i + 1] = (all[i] as number) & 0xff;
  }
  return true;
}

/** IPv4 text of the address words of a record (IPv4 in the first word, little-endian memory). */
export function formatIPv4Word(w: number): string {
  return `${w & 0xff}.${(w >>> 8) & 0xff}.${(w >>> 16) & 0xff}.${w >>> 24}`;
}

/** RFC 5952 text of 16 address bytes given as 4 little-endian words. */
export function formatIPv6Words(w0: number, w1: number, w2: number, w3: number): string {
  const g = new Array<number>(8);
  const ws = [w0, w1, w2, w3];
  for (let i = 0; i < 4; i++) {
    const w = ws[i] as number;
    g[2 * i] = ((w & 0xff) << 8) | ((w >>> 8) & 0xff);
    g[2 * i + 1] = (((w >>> 16) & 0xff) << 8) | (w >>> 24);
  }
  // ::ffff:a.b.c.d (IPv4-mapped)
  if (w0 === 0 && w1 === 0 && w2 === 0xffff0000) return `::ffff:${formatIPv4Word(w3)}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, b: number): string => {
    let s = '';
    for (let i = a; i < b; i++) s += (i > a ? ':' : '') + (g[i] as number).toString(16);
    return s;
  };
  if (best < 0) return hex(0, 8);
  return `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

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


/** Formats record address words (for both drivers' records). */
export function formatRecordAddress(family: number, w0: number, w1: number, w2: number, w3: number, scope: number): string {
  if (family === 4) return formatIPv4Word(w0);
  const s = formatIPv6Words(w0, w1, w2, w3);
  return scope === 0 ? s : `${s}%${scopeZone(scope)}`;
}

/** Thrown-error helper: a CoapError for a closed endpoint. */
export function closedError(): CoapError {
  return new CoapError('the endpoint is closed');
}
