/**
 * The driver of CoAP over reliable transports (RFC 8323: TCP, TLS, WebSockets) as the server
 * and client code see it: a {@link StreamCore} (the addon's libuv host, or JavaScript-owned
 * sockets over the WASM / addon core: ./stream-select.ts picks), the shared TX record writer
 * (./tx-writer.ts) and the dispatch of delivered batches, connection events included, to a
 * {@link DriverListener}.
 *
 * Records about a connection carry FAMILY_CONN and PORT = the connection id; the connection's
 * real address comes once, in its OPEN record, and is kept here for `remote(r)`. A REQUEST or
 * PING goes down a connection when its peer is `{ family: FAMILY_CONN, port: id }`. The core
 * fails the requests outstanding on a connection that closes without a FAILED record each:
 * this driver remembers which request went down which connection and hands the listener
 * their ids with the close.
 *
 * @internal
 */
import {
  FAMILY_CONN,
  type BackendKind,
  type BindOptions,
  type ConnectTarget,
  type ConnectingDriver,
  type ConnectionClose,
  type DriverListener,
  type DriverOptions,
  type EndpointStats,
  type IdCallback,
  type Peer,
  type RemoteInfo,
  type SocketAddress,
  type TlsSettings,
  DEFAULT_STREAM_MAX_MESSAGE_SIZE,
} from '../driver/driver';
import { errnoName, randomBytes } from '../platform';
import {
  CONNC_CSM_TIMEOUT_MS,
  CONNC_EXCHANGE_BASE,
  CONNC_FLAGS,
  CONNF_BERT,
  CONNF_PROXY,
  CONNC_IDLE_MS,
  CONNC_MAX_EXCHANGES,
  CONNC_MAX_MESSAGE_SIZE,
  CONNC_MAX_REQUESTS,
  CONNC_OUT_BYTES,
  CONNC_OVERLOAD_MAX_AGE,
  CONNC_PING_TIMEOUT_MS,
  CONNC_REQUEST_TIMEOUT_MS,
  CONNC_TRANSPORT,
  CONN_EVF_BERT,
  CONN_EVF_SYSERR,
  CONN_EVF_TLS,
  CONN_EVF_TLSERR,
  CONN_EV_ABORT,
  CONN_EV_CLOSED,
  CONN_EV_CSM,
  CONN_EV_OPEN,
  CONN_EV_READY,
  CONN_EV_RELEASE,
  EP_CONFIG_WORDS,
  EVF_LAST,
  EV_FAILED,
  EV_REQUEST,
  EV_RESPONSE,
  E_BAD_OPTION,
  E_TIMEOUT,
  RX_DATA,
  RX_FAMILY,
  RX_FLAGS,
  RX_ID,
  RX_IP,
  RX_KIND,
  RX_LEN,
  RX_OPT_COUNT,
  RX_PORT,
  RX_SCOPE,
  RX_STATUS,
  RX_WORDS,
  SEED_BYTES,
  SLIM_MAX_CONNS,
  SLIM_MAX_PER_HOST,
  SLIM_RX_BYTES,
  SLIM_RX_WORDS,
  SRVC_MAX_IN_PROGRESS,
  SRVC_MAX_MESSAGE_SIZE,
  SRVC_OBS_MAX_MESSAGE_SIZE,
  SRV_CONFIG_WORDS,
  STREAM_CONFIG_CONN,
  STREAM_CONFIG_LIMITS,
  STREAM_CONFIG_SRV,
  STREAM_CONFIG_WORDS,
  TX_CANCEL,
} from '../driver/abi';
import {
  endpointConfig,
  uint,
  formatRecordAddress,
  zoneScope,
} from './udp-records';
import { tlsFailure } from '../errors';
import type { StreamCore, StreamCoreFactory, StreamFraming } from './stream-core';
import { TxWriter } from './tx-writer';
import { UdpBatch } from './udp-batch';

const NO_VALUE = 0xffffffff;
const TC_TCP = 1;
const TC_WS = 2;
const utf8 = new TextDecoder();


/**
 * Why a connection closed, from its CLOSED record (STATUS, FLAGS) and what the connection
 * saw before (an Abort or a Release from the peer).
 */
export function closeReason(status: number, flags: number, opened: boolean, aborted: boolean, released: boolean): ConnectionClose {
  if ((flags & CONN_EVF_SYSERR) !== 0) {
    const code = errnoName(-status) ?? `ERRNO_${-status}`;
    return { code, message: `${code}: the connection failed`, opened };
  }
  if ((flags & CONN_EVF_TLSERR) !== 0) {
    const e = tlsFailure(status);
    return { code: e.code, message: e.message, opened };
  }
  if (aborted) return { code: 'ABORTED', message: 'ABORTED: the peer aborted the connection', opened };
  if (status === E_TIMEOUT) return { code: 'TIMEOUT', message: 'TIMEOUT: the peer stopped answering (no Pong)', opened };
  if (status !== 0) {
    const what = status === E_BAD_OPTION ? 'an unknown critical signaling option' : 'no valid CSM first, a frame too large, or a malformed message';
    return { code: 'PROTOCOL', message: `PROTOCOL: the connection broke RFC 8323 (${what})`, opened };
  }
  if (released) return { code: 'RELEASED', message: 'RELEASED: the peer released the connection', opened };
  return { code: undefined, message: 'CLOSED: the connection closed', opened };
}

function clamp(v: number | undefined, dflt: number, min: number, max: number): number {
  return v === undefined ? dflt : Math.min(max, Math.max(min, Math.floor(v)));
}

/**
 * The stream host config (STREAM_CONFIG_WORDS): tc_conn_config, tc_srv_config (from the
 * endpoint options, as over UDP) and tcs_limits. Throws the typed arg errors (RangeError /
 * TypeError with a `code`) for bad options: checkEndpointOptions runs it early.
 */
export function streamConfig(framing: StreamFraming, o: DriverOptions = {}, role: 'server' | 'client'): Uint32Array {
  const client = role === 'client';
  // Max-Message-Size we accept and advertise (RFC 8323 §5.3.1; validated by endpointConfig)
  const mms = o.maxMessageSize ?? DEFAULT_STREAM_MAX_MESSAGE_SIZE;
  const ep = endpointConfig({ ...o, maxMessageSize: mms }, role);
  const cfg = new Uint32Array(STREAM_CONFIG_WORDS);
  const outBytes = Math.max(16384, 2 * mms + 256);
  const maxConns = uint('maxConnections', o.maxConnections, client ? 64 : 4000, 1, 65535);
  // the core numbers exchanges of all connections in 16 bits
  const slots = Math.floor(65535 / maxConns);
  const exchanges = client ? Math.min(16, slots) : uint('maxRequestsPerConnection', o.maxRequestsPerConnection, Math.min(16, slots), 1, slots);
  if (client) uint('maxRequestsPerConnection', o.maxRequestsPerConnection, 16, 1, 65535);
  const c = STREAM_CONFIG_CONN;
  cfg[c + CONNC_TRANSPORT] = framing === 'ws' ? TC_WS : TC_TCP;
  cfg[c + CONNC_FLAGS] = CONNF_BERT | (o.acceptProxy === true ? CONNF_PROXY : 0);
  cfg[c + CONNC_MAX_MESSAGE_SIZE] = mms;
  cfg[c + CONNC_OUT_BYTES] = outBytes;
  cfg[c + CONNC_MAX_EXCHANGES] = exchanges;
  cfg[c + CONNC_EXCHANGE_BASE] = 0;
  cfg[c + CONNC_MAX_REQUESTS] = clamp(o.maxClientRequests, client ? 1024 : 64, 1, 65535);
  cfg[c + CONNC_REQUEST_TIMEOUT_MS] = clamp(o.responseTimeout, 60000, 1, 0xffffffff);
  cfg[c + CONNC_CSM_TIMEOUT_MS] = uint('csmTimeout', o.csmTimeout, 10000, 1, 0xffffffff);
  cfg[c + CONNC_IDLE_MS] = uint('idleTimeout', o.idleTimeout, 30000, 0, 0xffffffff);
  cfg[c + CONNC_PING_TIMEOUT_MS] = uint('pingTimeout', o.pingTimeout, 10000, 1, 0xffffffff);
  cfg[c + CONNC_OVERLOAD_MAX_AGE] = clamp(o.overloadMaxAge, 2, 0, 0xffffffff);
  // tc_srv_config as over UDP, with the pipeline's bounds made to fit the connections
  const s = STREAM_CONFIG_SRV;
  for (let k = 0; k < SRV_CONFIG_WORDS; k++) cfg[s + k] = ep[EP_CONFIG_WORDS + k] as number;
  cfg[s + SRVC_MAX_IN_PROGRESS - EP_CONFIG_WORDS] = maxConns * exchanges;
  cfg[s + SRVC_MAX_MESSAGE_SIZE - EP_CONFIG_WORDS] = outBytes - 256;
  cfg[s + SRVC_OBS_MAX_MESSAGE_SIZE - EP_CONFIG_WORDS] = outBytes - 256;
  const l = STREAM_CONFIG_LIMITS;
  cfg[l + SLIM_MAX_CONNS] = maxConns;
  cfg[l + SLIM_MAX_PER_HOST] = uint('maxConnectionsPerHost', o.maxConnectionsPerHost, client ? maxConns : Math.min(maxConns, 1024), 1, maxConns);
  cfg[l + SLIM_RX_WORDS] = 1 << 15;
  cfg[l + SLIM_RX_BYTES] = Math.max(256 * 1024, 2 * mms + 8);
  return cfg;
}

/** One connection as the driver knows it. */
interface Conn {
  remote: RemoteInfo | undefined;
  opened: boolean;
  aborted: boolean;
  released: boolean;
  /** Client requests outstanding on it. */
  readonly requests: Set<number>;
}

const NO_REMOTE: RemoteInfo = Object.freeze({ address: '::', port: 0, family: 'IPv6' });

/** A delivered batch whose records' addresses are connections. */
class StreamBatch extends UdpBatch {
  constructor(
    u32: Uint32Array,
    u8: Uint8Array,
    base: number,
    private readonly ep: StreamEndpoint,
  ) {
    super(u32, u8, base);
  }
  override remote(r: number): RemoteInfo {
    const u32 = this.u32;
    if (u32[r + RX_FAMILY] !== FAMILY_CONN) return super.remote(r);
    return this.ep.remoteOf(u32[r + RX_PORT] as number);
  }
  /** The message in datagram form, as the client-transfer calls take it (see {@link toDatagram}). */
  override message(r: number): Uint8Array {
    return toDatagram(super.message(r));
  }
}

/**
 * A message of RFC 8323 framing (TCP: Len/TKL nibbles, extended length, code, token; WebSocket:
 * the same with Len 0) rewritten with the RFC 7252 header (version 1, ACK, Message ID 0): what
 * follows the token (options, payload) is encoded alike in both. The client-transfer calls of
 * the core decode datagrams.
 */
export function toDatagram(m: Uint8Array): Uint8Array {
  if (m.length === 0) return m;
  const b0 = m[0] as number;
  const len = b0 >> 4;
  let at = 1 + (len === 13 ? 1 : len === 14 ? 2 : len === 15 ? 4 : 0);
  const code = m[at++] ?? 0;
  const tkl = b0 & 0x0f;
  const rest = m.subarray(at); // extended token length (RFC 8974), token, options, payload
  const out = new Uint8Array(4 + rest.length);
  out[0] = 0x60 | tkl;
  out[1] = code;
  out.set(rest, 4);
  return out;
}

/** A {@link ConnectingDriver} over a stream host. */
export class StreamEndpoint extends TxWriter implements ConnectingDriver {
  readonly core: StreamCore;
  readonly framing: StreamFraming;
  private readonly conns = new Map<number, Conn>();
  /** Remote addresses of connections closed lately (requests of theirs may still read them). */
  private readonly gone = new Map<number, RemoteInfo>();
  /** Connection of each outstanding client request. */
  private readonly reqConn = new Map<number, number>();
  private addr: SocketAddress | undefined;
  private readonly security: TlsSettings | undefined;
  private readonly httpServer: unknown;

  constructor(factory: StreamCoreFactory, framing: StreamFraming, options: DriverOptions | undefined, listener: DriverListener, role: 'server' | 'client') {
    super(listener);
    this.framing = framing;
    this.security = options?.security;
    this.httpServer = options?.httpServer;
    this.core = factory(framing, streamConfig(framing, options, role), randomBytes(SEED_BYTES), this.onBatch, role);
    this.attach(this.core);
  }

  get backend(): BackendKind {
    return this.core.kind;
  }

  /** The remote address of connection `id` (its OPEN record's). */
  remoteOf(id: number): RemoteInfo {
    return this.conns.get(id)?.remote ?? this.gone.get(id) ?? NO_REMOTE;
  }

  private conn(id: number): Conn {
    let c = this.conns.get(id);
    if (c === undefined) {
      c = { remote: undefined, opened: false, aborted: false, released: false, requests: new Set() };
      this.conns.set(id, c);
    }
    return c;
  }

  private readonly onBatch = (u32: Uint32Array, u8: Uint8Array, count: number, base: number): void => {
    const batch = new StreamBatch(u32, u8, base, this);
    const l = this.listener;
    let r = 0;
    for (let i = 0; i < count; i++) {
      const kind = u32[r + RX_KIND] as number;
      const port = u32[r + RX_PORT] as number;
      switch (kind) {
        case EV_REQUEST:
          l.onRequest(batch, r);
          break;
        case EV_RESPONSE: {
          if (((u32[r + RX_FLAGS] as number) & EVF_LAST) !== 0) this.untrack(u32[r + RX_ID] as number);
          l.onResponse(batch, r);
          break;
        }
        case EV_FAILED:
          this.untrack(u32[r + RX_ID] as number);
          l.onFailed(u32[r + RX_ID] as number, (u32[r + RX_STATUS] as number) | 0);
          break;
        case CONN_EV_OPEN: {
          const id = u32[r + RX_ID] as number;
          const c = this.conn(id);
          const fam = u32[r + RX_FAMILY] === 4 ? 4 : 6;
          const w8 = new Uint8Array(u32.buffer, u32.byteOffset, u32.byteLength);
          c.remote = {
            address: formatRecordAddress(fam, w8, (r + RX_IP) * 4, u32[r + RX_SCOPE] as number),
            port: u32[r + RX_PORT] as number,
            family: fam === 4 ? 'IPv4' : 'IPv6',
          };
          c.opened = true;
          const len = u32[r + RX_LEN] as number;
          const off = base + (u32[r + RX_DATA] as number);
          const identity = len > 0 ? utf8.decode(u8.subarray(off, off + len)) : undefined;
          l.onConnOpen?.({
            id,
            remote: c.remote,
            listener: u32[r + RX_STATUS] as number,
            secure: ((u32[r + RX_FLAGS] as number) & CONN_EVF_TLS) !== 0,
            identity,
          });
          break;
        }
        case CONN_EV_READY:
        case CONN_EV_CSM:
          l.onConnReady?.(port, u32[r + RX_ID] as number, ((u32[r + RX_FLAGS] as number) & CONN_EVF_BERT) !== 0);
          break;
        case CONN_EV_RELEASE: {
          this.conn(port).released = true;
          const v = u32[r + RX_ID] as number;
          l.onConnRelease?.(port, v === NO_VALUE ? undefined : v);
          break;
        }
        case CONN_EV_ABORT:
          this.conn(port).aborted = true;
          l.onConnAbort?.(port, '');
          break;
        case CONN_EV_CLOSED: {
          const c = this.conns.get(port);
          this.conns.delete(port);
          if (c?.remote !== undefined) {
            if (this.gone.size >= 1024) this.gone.clear();
            this.gone.set(port, c.remote);
          }
          const reqs = c === undefined ? [] : [...c.requests];
          for (const q of reqs) this.reqConn.delete(q);
          const why = closeReason((u32[r + RX_STATUS] as number) | 0, u32[r + RX_FLAGS] as number, c?.opened === true, c?.aborted === true, c?.released === true);
          l.onConnClosed?.(port, why, reqs);
          break;
        }
        default:
          break; // PONG and kinds this version does not know
      }
      r += RX_WORDS + 3 * (u32[r + RX_OPT_COUNT] as number);
    }
  };

  private untrack(id: number): void {
    const c = this.reqConn.get(id);
    if (c === undefined) return;
    this.reqConn.delete(id);
    this.conns.get(c)?.requests.delete(id);
  }

  override request(
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
  ): void {
    const conn = peer.port;
    super.request(confirmable, keep, code, peer, tokenLength, payloadOffset, payloadLength, optionCount, (id, rc) => {
      if (rc >= 0 && id !== 0) {
        const c = this.conns.get(conn);
        if (c !== undefined) {
          c.requests.add(id);
          this.reqConn.set(id, conn);
        }
      }
      cb(id, rc);
    }, token);
  }

  override cancel(id: number): void {
    const conn = this.reqConn.get(id);
    if (conn === undefined) return;
    this.untrack(id);
    this.small(TX_CANCEL, id, conn);
  }

  connect(t: ConnectTarget): number {
    const id = this.core.connect({ host: t.host, port: t.port, tls: t.security, url: t.url });
    this.conn(id);
    return id;
  }

  closeConn(id: number, abort: boolean, diagnostic?: string): void {
    if (!this.conns.has(id)) return;
    this.flush(); // what was written for it goes first
    this.core.closeConn(id, abort, diagnostic);
  }

  zoneScope(zone: string): number {
    return zoneScope(zone);
  }

  async bind(host: string, port: number, options: BindOptions): Promise<void> {
    const r = await this.core.listen({ host, port, ipv6Only: options.ipv6Only, tls: this.security, httpServer: this.httpServer });
    this.addr = r.address;
  }

  address(): SocketAddress {
    if (this.addr === undefined) throw new Error('turbocoap: the stream driver is not listening');
    return this.addr;
  }

  setRef(on: boolean): void {
    this.core.setRef(on);
  }

  stats(): EndpointStats {
    return streamStats(this.core.stats() as unknown as Record<string, unknown>);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.flush();
      this.closed = true;
    }
    await this.core.close();
  }
}

const STATS_KEYS: readonly (keyof EndpointStats)[] = [
  'rx', 'tx', 'duplicates', 'replays', 'retransmits', 'resetsSent', 'formatErrors', 'overloads', 'badOptions', 'dedupEvictions',
  'timeouts', 'unmatched', 'inProgress', 'clientRequests', 'conSlotsUsed', 'dedupUsed', 'peers', 'batches', 'records', 'sent',
  'sendCalls', 'sendErrors', 'gsoSends', 'uploads', 'uploadsDone', 'blocksIn', 'representations', 'blocksOut', 'observers',
  'notifications', 'observersRemoved', 'observersRefused', 'uploadsRefused', 'uploadsReclaimed', 'notificationsSkipped',
  'blocksReused', 'echoChallenges', 'verifiedPeers', 'responsesNon', 'responsesDropped', 'nonDuplicates',
];

/**
 * EndpointStats from a stream host's counters: the fields of the same name (the pipeline's
 * block-wise and Observe counters, batches, records), 0 for the datagram-only ones; the
 * host's own counters (connections, bytes) ride along under their names.
 */
function streamStats(st: Record<string, unknown>): EndpointStats {
  const out: Record<string, number> = {};
  for (const k of STATS_KEYS) {
    const v = st[k];
    out[k] = typeof v === 'number' ? v : 0;
  }
  for (const [k, v] of Object.entries(st)) if (!(k in out) && typeof v === 'number') out[k] = v;
  return out as unknown as EndpointStats;
}
