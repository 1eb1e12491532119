/**
 * The driver contract: what the transport-neutral layers (server dispatch, router, client
 * request matching, block-wise, Observe, incoming / outgoing messages) need from a transport,
 * and nothing about which transport it is. A driver runs one messaging endpoint of the C core
 * (today: CoAP over UDP, ts/transport/endpoint.ts) and exchanges batches of records with it:
 *  - received messages come to a {@link DriverListener} as records of a {@link Received}
 *    batch, read in place (the core already decoded them);
 *  - messages to send are written as records (begin, options and payload bytes, then the
 *    header) and flushed together once per microtask.
 *
 * This module imports nothing: every layer may depend on it.
 */

/** Which build of the C core runs a driver. */
export type BackendKind = 'native' | 'wasm';

/**
 * Core statuses (the C core's tc_error values) a driver reports to its listener and to
 * {@link IdCallback}s, and the client-transfer calls return. 0 is success.
 */
export const Status = {
  MESSAGE_TOO_LARGE: -13,
  BUFFER_TOO_SMALL: -15,
  INVALID: -16,
  STALE: -17,
  FULL: -18,
  TIMEOUT: -19,
  RESET: -20,
  BAD_OPTION: -21,
  UNREACHABLE: -22,
} as const;

/** The other end of an exchange. */
export interface RemoteInfo {
  /** IP address (IPv6 in RFC 5952 form; IPv4 clients of a dual-stack socket as `::ffff:a.b.c.d`). */
  readonly address: string;
  /** Port. */
  readonly port: number;
  /** `'IPv4'` or `'IPv6'`. */
  readonly family: 'IPv4' | 'IPv6';
}

/**
 * A peer to send to: family, port, 16 address bytes (IPv4 in the first 4) and IPv6 scope id;
 * or, on a connection-oriented driver, family {@link FAMILY_CONN} and port = the connection id.
 */
export interface Peer {
  readonly family: 4 | 6 | 255;
  readonly port: number;
  readonly ip: Uint8Array;
  readonly scope: number;
}

/**
 * One batch of received messages, read in place: record `r` (an index the driver hands to its
 * listener) with its header fields, options and payload. Offsets index {@link Received.bytes}.
 * Valid for as long as it is referenced (a driver never reuses a delivered batch's memory).
 */
export interface Received {
  /** The bytes every offset below indexes. */
  readonly bytes: Uint8Array;
  /** Exchange id (server: the request's; client: the request it answers). */
  id(r: number): number;
  /** Code byte (class << 5 | detail). */
  code(r: number): number;
  /** Message type (0 CON, 1 NON, 2 ACK, 3 RST). */
  type(r: number): number;
  /** Message ID (0 when the transport has none). */
  messageId(r: number): number;
  /** Whether the message came as CON (the core acknowledged it). */
  confirmable(r: number): boolean;
  /** Client: whether the core finished the request with this response (else: Observe keeps it). */
  last(r: number): boolean;
  tokenOffset(r: number): number;
  tokenLength(r: number): number;
  /** Options, in ascending number order. */
  optionCount(r: number): number;
  optionNumber(r: number, k: number): number;
  optionOffset(r: number, k: number): number;
  optionLength(r: number, k: number): number;
  payloadOffset(r: number): number;
  payloadLength(r: number): number;
  /** The peer. */
  remote(r: number): RemoteInfo;
  /** Server: a GET/FETCH with Observe 0 the core can register (answer with a resource id). */
  observeAsked(r: number): boolean;
  /** Server: whether a reassembled Block1 body waits in the core (read it with {@link Driver.readBody}). */
  hasBody(r: number): boolean;
  /** Server: that body's id. */
  bodyId(r: number): number;
  /** Server: that body's length. */
  bodyLength(r: number): number;
  /** The whole received message, as the client-transfer (block-wise) calls take it. */
  message(r: number): Uint8Array;
}

/** A connection of a reliable transport (RFC 8323) came up: what its OPEN record says. */
export interface ConnectionOpen {
  /** The driver's connection id (the `port` of a {@link Peer} with family {@link FAMILY_CONN}). */
  readonly id: number;
  /** The peer's real address (for WebSockets: the socket's remote address). */
  readonly remote: RemoteInfo;
  /** Index of the listener that accepted it (0 for a connection we made). */
  readonly listener: number;
  /** Whether TLS secures it. */
  readonly secure: boolean;
  /** The peer's identity: its PSK identity, or its certificate's subject CN (undefined: none). */
  readonly identity: string | undefined;
}

/**
 * Why a connection closed. `code` undefined: closed normally (by either side, or a Release
 * followed by the peer's close); else a stable upper-case name: an errno name such as
 * `'ECONNREFUSED'`, `'TIMEOUT'` (the peer stopped answering Pings), `'PROTOCOL'` (the peer broke
 * RFC 8323: no CSM, a frame too large...), or a TLS failure: `'HANDSHAKE'`, `'VERIFY'`, `'PSK'`,
 * `'ALPN'`, `'TLS'` (another TLS error).
 */
export interface ConnectionClose {
  readonly code: string | undefined;
  /** What happened, for messages. */
  readonly message: string;
  /** Whether the connection had come up (OPEN) before it closed. */
  readonly opened: boolean;
}

/** The address family of a {@link Peer} that names a connection: `port` is its id. */
export const FAMILY_CONN = 255;

/**
 * Normalized security settings of a secured transport (TLS, DTLS, WSS), from the public
 * options in Node's TLS vocabulary (ts/security.ts).
 */
export interface TlsSettings {
  /** Own certificate chain, PEM. */
  certPem?: string;
  /** Own private key, PEM. */
  keyPem?: string;
  /** Trusted CAs, PEM text (several CAs concatenated). */
  caPem?: string;
  /** Server: ask for (and verify) a client certificate. */
  requestCert?: boolean;
  /** Verify the peer's certificate (client default true). */
  rejectUnauthorized?: boolean;
  /** Server: PSK identity -> key. */
  pskTable?: ReadonlyMap<string, Uint8Array>;
  /** Server: asked for identities not in the table (after it). */
  pskCallback?: (identity: string) => Uint8Array | undefined;
  /** Client: PSK identity. */
  pskIdentity?: string;
  /** Client: PSK key. */
  pskKey?: Uint8Array;
  /** Client: SNI + name check (not for IP literals). */
  servername?: string;
}

/** Where a connection-oriented driver connects (see {@link ConnectingDriver.connect}). */
export interface ConnectTarget {
  /** IP literal (names are resolved before). */
  readonly host: string;
  readonly port: number;
  /** WebSockets: the full ws:// or wss:// URL. */
  readonly url?: string;
  /** TLS / WSS. */
  readonly security?: TlsSettings;
}

/** What a driver delivers. Implementations must not throw. */
export interface DriverListener {
  /** A new request: answer it with {@link Driver.respond} (or {@link Driver.drop} it). */
  onRequest(b: Received, r: number): void;
  /** A response to client request `b.id(r)`. */
  onResponse(b: Received, r: number): void;
  /** Client request `id` failed with a {@link Status} (TIMEOUT, RESET, BAD_OPTION, UNREACHABLE...). */
  onFailed(id: number, status: number): void;
  /** A response to exchange `id` was refused with a {@link Status} (MESSAGE_TOO_LARGE, INVALID): answer again. */
  onRespondFailed(id: number, status: number): void;
  /** Reliable transports: a connection's transport is up (TCP connected, TLS handshake done). */
  onConnOpen?(c: ConnectionOpen): void;
  /** Reliable transports: the peer's first CSM (its Max-Message-Size, whether it offered BERT). */
  onConnReady?(id: number, maxMessageSize: number, bert: boolean): void;
  /** Reliable transports: the peer sent Release (RFC 8323 §5.5; Hold-Off in s, or undefined). */
  onConnRelease?(id: number, holdOff: number | undefined): void;
  /** Reliable transports: the peer sent Abort (RFC 8323 §5.6) with this diagnostic. */
  onConnAbort?(id: number, diagnostic: string): void;
  /**
   * Reliable transports: connection `id` closed (or could not be made). `requests`: the ids
   * of the client requests that were outstanding on it (the core failed them all; no
   * onFailed follows for them).
   */
  onConnClosed?(id: number, why: ConnectionClose, requests: readonly number[]): void;
}

/** A driver of a connection-oriented transport (RFC 8323: TCP, TLS, WebSockets). */
export interface ConnectingDriver extends Driver {
  /** The transport's framing. */
  readonly framing: 'tcp' | 'ws';
  /** Starts a connection; returns its id at once (onConnOpen then onConnReady, or onConnClosed follow). */
  connect(t: ConnectTarget): number;
  /** Closes a connection: gracefully, or with an Abort carrying `diagnostic`. */
  closeConn(id: number, abort: boolean, diagnostic?: string): void;
}

/**
 * Called after a flush with the id the driver gave a request or ping (and status 0), or 0 and
 * the negative {@link Status} that refused it; for a notification, the resource and its status.
 */
export type IdCallback = (id: number, status: number) => void;

/** How to bind. */
export interface BindOptions {
  /** With host `'::'`: IPv6 only. */
  readonly ipv6Only?: boolean;
  /** SO_REUSEADDR. */
  readonly reuseAddr?: boolean;
}

/**
 * One messaging endpoint. Writing a message: `beginX(optionCount, byteBound)` (false: it can
 * never fit), then option values and the payload with the `put*` calls and {@link option}, then
 * the header call (`respond`, `notify`, `request`). To abandon a message half written,
 * {@link rewind} to a {@link mark} taken before it. Everything written in one microtask is
 * flushed together.
 */
export interface Driver {
  /** The core build that runs it. */
  readonly backend: BackendKind;
  /** Whether it was closed. */
  readonly closed: boolean;

  beginRespond(optionCount: number, bytes: number): boolean;
  beginNotify(optionCount: number, bytes: number): boolean;
  beginRequest(optionCount: number, bytes: number): boolean;
  /** Option k of the message begun: its number and the offset and length of its value bytes. */
  option(k: number, number: number, offset: number, length: number): void;
  /** Copies bytes; returns their offset. */
  putBytes(v: Uint8Array): number;
  /** Writes a string as UTF-8 (3 bytes per UTF-16 unit reserved); returns its length (offset: {@link mark} before). */
  putString(s: string): number;
  /** Writes an unsigned integer option value (minimal big-endian); returns its length. */
  putUint(v: number): number;
  /** The offset the next bytes go to. */
  mark(): number;
  /** Discards the bytes written since `mark`. */
  rewind(mark: number): void;

  /** A response to exchange `id`; `resource` > 0 registers an Observe request's client for it. */
  respond(id: number, code: number, payloadOffset: number, payloadLength: number, optionCount: number, resource: number): void;
  /** A notification to every observer of `resource` (confirmable: CON to all); `cb` gets (resource, status). */
  notify(resource: number, confirmable: boolean, code: number, payloadOffset: number, payloadLength: number, optionCount: number, cb?: IdCallback): void;
  /**
   * A request to `peer`. `keep`: the core keeps it after the first response (Observe). The
   * core makes a token of `tokenLength` bytes unless `token` is given (its bytes are copied:
   * count them in beginRequest's bound). `cb` gets the request's id after the flush.
   */
  request(
    confirmable: boolean,
    keep: boolean,
    code: number,
    peer: Peer,
    tokenLength: number,
    payloadOffset: number,
    payloadLength: number,
    optionCount: number,
    cb: IdCallback,
    token?: Uint8Array,
  ): void;
  /** A CoAP ping (empty CON); `cb` gets its id. */
  sendPing(peer: Peer, cb: IdCallback): void;
  /** Client: forget request `id` (a late response gets RST). */
  cancel(id: number): void;
  /** Server: forget exchange `id` without answering. */
  drop(id: number): void;
  /**
   * Server: asks how many observers `resource` has. After the next flush (which runs the
   * records written before this one first), `cb` gets (resource, count); not at all if the
   * driver is closed.
   */
  observers(resource: number, cb: IdCallback): void;
  /** Copies out and releases the Block1 body `id` of a request, or returns a negative {@link Status}. */
  readBody(id: number, length: number): Uint8Array | number;
  /** Sends what was written. */
  flush(): void;

  /** The scope id an IPv6 zone (interface name or number) stands for, for {@link Peer.scope}. */
  zoneScope(zone: string): number;
  bind(host: string, port: number, options: BindOptions): Promise<void>;
  address(): SocketAddress;
  /** Whether the socket keeps the event loop alive. */
  setRef(on: boolean): void;
  stats(): EndpointStats;
  /** Flushes, then closes; records written later are ignored. */
  close(): Promise<void>;
}

/** What a driver is opened with: the messaging-layer options, and for a secured transport its security. */
export interface DriverOptions extends EndpointOptions, ConnectionOptions {
  /** TLS / DTLS / WSS settings (server: its own; client: defaults for its connections). */
  readonly security?: TlsSettings;
  /** WebSockets (server): serve on this existing node:http(s) server instead of opening a port. */
  readonly httpServer?: unknown;
  /**
   * Deliver requests carrying Proxy-Uri or Proxy-Scheme to the server (a proxy: ts/proxy.ts)
   * instead of the core answering them 5.05 (tc_ep_config / tc_conn_config flags).
   */
  readonly acceptProxy?: boolean;
}

/** Opens a driver (unbound) for an address family. */
export type DriverFactory = (
  family: 4 | 6,
  backend: BackendKind | undefined,
  options: DriverOptions | undefined,
  listener: DriverListener,
  role: 'server' | 'client',
) => Driver;

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

/** RFC 8323's base Max-Message-Size (§5.3.1), the least every connection allows. */
export const BASE_MAX_MESSAGE_SIZE = 1152;
/**
 * The Max-Message-Size our connections advertise and accept by default: 4 KiB of BERT payload
 * (RFC 8323 §6) plus 128 bytes for the header and options, so two turbocoap peers move
 * block-wise bodies 4 KiB per round trip (about 3 KiB more memory per connection than 1152).
 */
export const DEFAULT_STREAM_MAX_MESSAGE_SIZE = 4224;

/**
 * Bounds and timers of connections (CoAP over TCP, TLS and WebSockets, RFC 8323): on a server
 * (`createServer`, and per `listen()`), on an `Agent`, on `connect()`. Ignored over UDP / DTLS.
 * `maxMessageSize` (of {@link EndpointOptions}) is the Max-Message-Size a connection advertises
 * in its CSM and accepts (96..65507, default 4224 on connections; BERT blocks are sized to fit
 * the smaller of the two sides').
 */
export interface ConnectionOptions {
  /** Connections open at once (more are refused). Default 4000 (server), 64 (agent); 1..65535. */
  readonly maxConnections?: number;
  /** Connections from one host address at once. Default min(1024, maxConnections) (server), maxConnections (agent). */
  readonly maxConnectionsPerHost?: number;
  /** ms the peer's CSM may take before the connection is aborted. Default 10000. */
  readonly csmTimeout?: number;
  /** ms without input before a Ping checks that the peer is alive; 0: never. Default 30000. */
  readonly idleTimeout?: number;
  /** ms a Ping waits for its Pong before the peer counts as dead and the connection closes. Default 10000. */
  readonly pingTimeout?: number;
  /**
   * Requests in progress per connection. Server: the peer's requests it handles at once on one
   * connection (more get 5.03 with Max-Age); default min(16, floor(65535 / maxConnections)), at
   * most that bound. Agent: the requests it sends down one connection at once (more wait their
   * turn, so a server's 16 slots are never overrun); default 16, 1..65535.
   */
  readonly maxRequestsPerConnection?: number;
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

