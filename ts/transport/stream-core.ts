/**
 * The contract between a stream host (the code that owns TCP/TLS/WebSocket sockets: the
 * addon's libuv driver, ts/transport/stream-native.ts; or JavaScript-owned sockets over the
 * WASM or addon core, ts/transport/stream-js.ts) and the stream driver on top of it
 * (ts/transport/stream-endpoint.ts). A host runs the RFC 8323 connection state of the C core
 * (native/driver/stream.c: many connections + one server pipeline) and exchanges batches of
 * records with it, exactly as the UDP hosts do (ts/driver/abi.ts describes the records):
 *  - received messages and connection events (CONN_EV_OPEN, READY, CSM, PONG, RELEASE, ABORT,
 *    CLOSED) come to a {@link StreamBatchHandler};
 *  - messages to send are written as TX records into {@link StreamCore.txWords} /
 *    {@link StreamCore.txBytes} and handed over with {@link StreamCore.flush}.
 */
import type { BackendKind, SocketAddress, TlsSettings } from '../driver/driver';

/** A batch: u32/u8 views of the records and bytes, count records, base = byte offset base. */
export type StreamBatchHandler = (u32: Uint32Array, u8: Uint8Array, count: number, base: number) => void;

/** Normalized security (S3 converts the public Node-TLS-vocabulary options into this);
 *  declared with the driver contract (ts/driver/driver.ts), which the layers above may import. */
export type { TlsSettings };

/** tcp = TCP or TLS byte stream; ws = WebSocket messages. */
export type StreamFraming = 'tcp' | 'ws';

/** Where and how a stream host listens. */
export interface StreamListenOptions {
  host: string;
  port: number;
  ipv6Only?: boolean;
  tls?: TlsSettings;
  /** ws only: serve on this existing node:http(s) server instead of opening a port */
  httpServer?: unknown;
  /** ws only: the path served; default '/.well-known/coap'. */
  path?: string;
}

/** Where and how a stream host connects. */
export interface StreamConnectOptions {
  /** IP literal (S3 resolves names first); for ws the URL's host */
  host: string;
  port: number;
  tls?: TlsSettings;
  /** ws only: the full ws:// or wss:// URL (path /.well-known/coap) */
  url?: string;
}

/**
 * Counters of a stream host (tcs_stats + tc_srv_stats + host counters, from the SST_* layout).
 * The host fills in what it has; every field is a number.
 */
export interface StreamStats {
  [counter: string]: number;
}

/** One stream host: listeners and connections of one framing over one core instance. */
export interface StreamCore {
  readonly kind: BackendKind;
  readonly framing: StreamFraming;
  /** TX records, as UDP. */
  readonly txWords: Uint32Array;
  readonly txBytes: Uint8Array;
  /** Listener index (STATUS of OPEN records) once listening. Several listens per core allowed. */
  listen(o: StreamListenOptions): Promise<{ index: number; address: SocketAddress }>;
  /** Starts a connection; returns its id at once; OPEN (then READY) or CLOSED records follow. */
  connect(o: StreamConnectOptions): number;
  /** Close one connection: abort=false: Release-free graceful close (drain output, TLS
   *  close_notify, FIN); abort=true: send Abort (diagnostic) then close. CLOSED follows. */
  closeConn(id: number, abort: boolean, diagnostic?: string): void;
  /** As UdpDriver.flush. */
  flush(nwords: number, nbytes: number): number;
  readBody(id: number, length: number): Uint8Array | number;
  setRef(on: boolean): void;
  /** S1 defines StreamStats from SST_* (incl. conns open, bytes in/out). */
  stats(): StreamStats;
  /** Closes listeners and every connection (CLOSED records may follow). */
  close(): Promise<void>;
}

/** Makes a stream host: `config` = STREAM_CONFIG_WORDS words (conn, srv, limits). */
export type StreamCoreFactory = (
  framing: StreamFraming,
  config: Uint32Array,
  seed: Uint8Array,
  onBatch: StreamBatchHandler,
  role: 'server' | 'client',
) => StreamCore;
