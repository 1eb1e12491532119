/**
 * A StreamCore whose sockets JavaScript owns: the connection driver (native/driver/stream.c)
 * runs in a {@link StreamFeed} (WebAssembly, or the addon's feed exports) and a
 * {@link SocketHost} supplies the sockets: node:net / node:tls (stream-node.ts), the `ws`
 * package (ws-node.ts) or the browser's WebSocket (ws-browser.ts). No Node built-ins here:
 * the browser bundle carries this file.
 *
 * Per socket: each chunk read (TCP, TLS plaintext) or WebSocket message goes to the feed at
 * once (recv), which answers what to do: hand the batch over, write, or PAUSE (the socket
 * stops reading until its output drained). Batches go to JS once per event-loop turn
 * (setImmediate, or a resolved promise where there is none), as copies. Output is taken out
 * of the driver per round (collect: one entry per connection with bytes) and written with
 * one write per connection (corked per round); a congested socket (its host buffer over the
 * high-water mark) leaves its bytes in the driver, whose bounded output then answers the
 * RFC 8323 way (PAUSE, skipped notifications, and a dead-peer Ping for a peer that never
 * reads), and gets them on 'drain'. Timers: one setTimeout at the driver's deadline.
 *
 * Bounds: connections in total and per host address (the limits words of the config) are
 * counted from accept on (handshakes included): an accept over them is destroyed at once.
 *
 * @internal
 */
import type { SocketAddress } from '../driver/driver';
import {
  CONNC_PING_TIMEOUT_MS,
  CONN_EVF_TLS,
  CONN_EV_CLOSED,
  CONN_EV_OPEN,
  E_FULL,
  E_STALE,
  FAMILY_CONN,
  RX_FAMILY,
  RX_KIND,
  RX_OPT_COUNT,
  RX_PORT,
  RX_WORDS,
  SST_REFUSED_HOST,
  SST_REFUSED_TOTAL,
  STREAM_CONFIG_CONN,
  SLIM_MAX_CONNS,
  SLIM_MAX_PER_HOST,
  STREAM_CONFIG_LIMITS,
} from '../driver/abi';
import { parseIPv4, parseIPv6 } from '../net/ip';
import type {
  StreamBatchHandler,
  StreamConnectOptions,
  StreamCore,
  StreamFraming,
  StreamListenOptions,
  StreamStats,
} from './stream-core';
import { OUT_CLOSE, TCS_DELIVER, TCS_PAUSE, TCS_WRITE, type StreamFeed, type StreamFeedFactory } from './stream-feed';
import { streamStatsFromView } from './stream-stats';

/** One socket as a host offers it to the core. */
export interface HostConn {
  /** Writes bytes (tcp) or one binary message (ws); the core hands over a copy. */
  write(data: Uint8Array): void;
  /** Whether the socket's own buffer is over its high-water mark ('drain' follows). */
  congested(): boolean;
  /** Stop / resume reading (a host that cannot stop keeps delivering; the core queues). */
  pause(): void;
  resume(): void;
  /** Graceful close: what was written goes out, then FIN (TLS close_notify, WS close 1000). */
  end(): void;
  /** Close now. */
  destroy(): void;
  setRef?(on: boolean): void;
  cork?(): void;
  uncork?(): void;
}

/** The peer of an open connection. */
export interface HostPeer {
  address: string;
  port: number;
  /** PSK identity or certificate subject CN; '' when none. */
  identity: string;
  secured: boolean;
}

/** The core's side of one socket: the host calls these. */
export interface HostLink {
  /** The socket object (synchronously, before any other call). */
  attach(conn: HostConn): void;
  /** The transport is up (TCP connected; TLS handshake done; WebSocket open). */
  opened(peer: HostPeer): void;
  /** A chunk (tcp) or one whole message (ws). */
  data(chunk: Uint8Array): void;
  /** The socket took its buffered bytes. */
  drained(): void;
  /** The socket is gone (once): status/flags as CLOSED records carry them (0/0: closed
   *  normally or by EOF; CONN_EVF_SYSERR with -errno; CONN_EVF_TLSERR with TC_TLS_E_*). */
  closed(status: number, flags: number): void;
}

/** A listener a host opened. */
export interface HostListener {
  readonly address: SocketAddress;
  close(): Promise<void>;
  setRef(on: boolean): void;
}

/** Where sockets come from. */
export interface SocketHost {
  readonly framing: StreamFraming;
  /** accept(remote address): a link for a new socket, or undefined (over a bound: destroy it).
   *  maxMessage: the largest WebSocket message the driver takes (ws: refuse larger ones). */
  listen(o: StreamListenOptions, accept: (address: string) => HostLink | undefined, maxMessage: number): Promise<HostListener>;
  /** Starts a connection; calls link.attach synchronously, then opened / data / closed. */
  connect(o: StreamConnectOptions, link: HostLink, maxMessage: number): void;
}

/** Host counters (the SST_* host block, in order). */
const H_ACCEPTED = 0;
const H_CONNECTS = 1;
const H_CONNECT_ERRORS = 2;
const H_REFUSED = 3;
const H_READ_ERRORS = 4;
const H_WRITES = 6;
const H_WRITES_QUEUED = 7;
const H_READ_PAUSES = 8;

const enum St {
  Pending, // socket up, transport not yet (connecting, handshake)
  Open, // in the driver
  Gone,
}

const now = (): number => Math.floor(performance.now());
const utf8 = new TextEncoder();
const later: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void Promise.resolve().then(fn);

/** Record address words (FAMILY, PORT, IP x4, SCOPE) of an address text and port. */
export function addrWords(address: string, port: number): Uint32Array {
  const w = new Uint32Array(7);
  const ip = new Uint8Array(w.buffer, 8, 16);
  if (parseIPv4(address, ip, 0)) w[0] = 4;
  else if (parseIPv6(address.replace(/%.*$/, ''), ip, 0)) w[0] = 6;
  else w[0] = 4; // a name (browser WebSockets): 0.0.0.0
  w[1] = port & 0xffff;
  return w;
}

class Link implements HostLink {
  conn: HostConn | undefined;
  st = St.Pending;
  /** the driver's output waits for 'drain' */
  blocked = false;
  /** input kept while the driver paused this connection */
  queue: Uint8Array[] = [];
  qoff = 0;
  paused = false;
  /** shut down in the driver (closeConn, close): input is ignored */
  ending = false;
  /** the socket was ended: later output is dropped */
  ended = false;
  corked = false;
  /** the driver closed it: its last bytes may linger this long (a peer that never reads) */
  lingering = false;

  constructor(
    readonly core: JsStreamCore,
    readonly id: number,
    readonly index: number,
    readonly host: string,
    readonly client: boolean,
  ) {}

  attach(conn: HostConn): void {
    this.conn = conn;
    if (!this.core.refd) conn.setRef?.(false);
  }
  opened(peer: HostPeer): void {
    this.core.onOpen(this, peer);
  }
  data(chunk: Uint8Array): void {
    this.core.onData(this, chunk);
  }
  drained(): void {
    this.core.onDrain(this);
  }
  closed(status: number, flags: number): void {
    this.core.onClosed(this, status, flags);
  }
}

class JsStreamCore implements StreamCore {
  readonly kind;
  readonly txWords: Uint32Array;
  readonly txBytes: Uint8Array;
  refd = true;
  private readonly feed: StreamFeed;
  private readonly links = new Map<number, Link>();
  private readonly perHost = new Map<string, number>();
  private readonly listeners: HostListener[] = [];
  private readonly maxConns: number;
  private readonly maxPerHost: number;
  private readonly linger: number;
  private readonly hostCounters = new Array<number>(9).fill(0);
  /** Connections this host refused for the total and the per-host bound (before the driver saw them). */
  private refusedTotal = 0;
  private refusedHost = 0;
  private nextId = 1;
  private closed = false;
  private closing: Promise<void> | undefined;
  private scheduled = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armed = Infinity;
  private writing = false;

  constructor(
    feedFactory: StreamFeedFactory,
    private readonly host: SocketHost,
    readonly framing: StreamFraming,
    config: Uint32Array,
    seed: Uint8Array,
    private readonly onBatch: StreamBatchHandler,
    readonly role: 'server' | 'client',
  ) {
    if (host.framing !== framing) throw new Error(`turbocoap: a ${host.framing} socket host cannot carry ${framing} framing`);
    this.feed = feedFactory(config, seed);
    this.kind = this.feed.kind;
    this.txWords = this.feed.txWords;
    this.txBytes = this.feed.txBytes;
    this.maxConns = config[STREAM_CONFIG_LIMITS + SLIM_MAX_CONNS] as number;
    this.maxPerHost = config[STREAM_CONFIG_LIMITS + SLIM_MAX_PER_HOST] as number;
    this.linger = Math.max(1, config[STREAM_CONFIG_CONN + CONNC_PING_TIMEOUT_MS] as number);
  }

  // ------------------------------------------------------------------ bookkeeping

  private newId(): number {
    let id = this.nextId;
    while (this.links.has(id) || id === 0) id = (id + 1) >>> 0;
    this.nextId = (id + 1) >>> 0;
    return id;
  }

  /** A link within the bounds, or undefined. */
  private admit(host: string, index: number, client: boolean): Link | undefined {
    const n = this.perHost.get(host) ?? 0;
    if (this.closed) return undefined;
    // refused by a bound: counted as the addon's host counts it (tcs refused_total / _host)
    if (this.links.size >= this.maxConns) {
      this.refusedTotal++;
      return undefined;
    }
    if (n >= this.maxPerHost) {
      this.refusedHost++;
      return undefined;
    }
    const l = new Link(this, this.newId(), index, host, client);
    this.links.set(l.id, l);
    this.perHost.set(host, n + 1);
    return l;
  }

  private forget(l: Link): void {
    if (this.links.get(l.id) !== l) return;
    this.links.delete(l.id);
    const n = (this.perHost.get(l.host) ?? 1) - 1;
    if (n <= 0) this.perHost.delete(l.host);
    else this.perHost.set(l.host, n);
  }

  /** A host record, delivering the batch first when it is full. */
  private event(kind: number, id: number, addr: Uint32Array | undefined, status: number, flags: number, data?: Uint8Array): void {
    if (this.feed.hostEvent(kind, id, addr, status, flags, data) === E_FULL) {
      this.dispatch();
      this.feed.hostEvent(kind, id, addr, status, flags, data);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closing !== undefined) return;
    this.scheduled = true;
    later(this.onTurn);
  }

  private readonly onTurn = (): void => {
    this.scheduled = false;
    if (this.closing !== undefined) return;
    this.dispatch();
    this.writeOut();
    this.rearm();
  };

  /** Hands the batch to JS (copies). */
  private dispatch(): void {
    if (this.feed.batchCount() === 0) return;
    const b = this.feed.takeBatch();
    this.noteClosed(b.words, b.count);
    this.onBatch(b.words, b.data, b.count, 0);
  }

  /**
   * Connections the driver closed (CLOSED records) still drain their last bytes (an Abort)
   * before OUT_CLOSE; a peer that never reads would hold the socket and its slot forever, so
   * they get at most the Ping timeout for it, then the socket is destroyed.
   */
  private noteClosed(w: Uint32Array, count: number): void {
    let r = 0;
    for (let i = 0; i < count; i++) {
      if (w[r + RX_KIND] === CONN_EV_CLOSED && w[r + RX_FAMILY] === FAMILY_CONN) {
        const l = this.links.get(w[r + RX_PORT] as number);
        if (l !== undefined && l.st === St.Open && !l.lingering) {
          l.lingering = true;
          const t = setTimeout(() => {
            if (l.st !== St.Gone) l.conn?.destroy();
          }, this.linger) as { unref?: () => void };
          t.unref?.();
        }
      }
      r += RX_WORDS + 3 * (w[r + RX_OPT_COUNT] as number);
    }
  }

  // ------------------------------------------------------------------ sockets → driver

  onOpen(l: Link, peer: HostPeer): void {
    if (l.st !== St.Pending || this.closing !== undefined) return;
    const addr = addrWords(peer.address, peer.port);
    const rc = this.feed.open(now(), l.id, addr);
    if (rc < 0) {
      // a bound of the driver (or a duplicate): the connection is refused
      this.hostCounters[H_REFUSED]++;
      l.st = St.Gone;
      this.forget(l);
      l.conn?.destroy();
      if (l.client) this.event(CONN_EV_CLOSED, l.id, undefined, rc, 0);
      return;
    }
    l.st = St.Open;
    this.event(CONN_EV_OPEN, l.id, addr, l.index, peer.secured ? CONN_EVF_TLS : 0, peer.identity ? utf8.encode(peer.identity) : undefined);
    this.writeOut();
  }

  onData(l: Link, chunk: Uint8Array): void {
    if (l.st !== St.Open || l.ending) return;
    if (l.paused) {
      l.queue.push(chunk);
      return;
    }
    this.feedChunk(l, chunk, 0);
    this.writeOut();
    if (this.feed.batchCount() > 0) this.schedule();
  }

  /** Runs chunk[off..) through the driver; false when the connection paused (rest queued). */
  private feedChunk(l: Link, chunk: Uint8Array, off: number): boolean {
    const feed = this.feed;
    if (this.framing === 'ws' && (chunk.length > feed.inCap || chunk.length === 0)) {
      // one CoAP message per WebSocket message (RFC 8323 §4.2): none, or one we cannot take
      this.endConn(l, true, chunk.length === 0 ? 'empty message' : 'message too large');
      return true;
    }
    let stalls = 0;
    while (off < chunk.length) {
      const rc = feed.recv(now(), l.id, chunk, off);
      off += feed.used;
      if (rc === TCS_DELIVER) this.dispatch();
      else if (rc === TCS_PAUSE) {
        // write what the connection holds; go on at once if the socket took it
        this.writeOut();
        if (feed.used === 0 && (l.blocked || ++stalls > 2)) {
          l.paused = true;
          l.queue.unshift(off === 0 ? chunk : chunk.subarray(off));
          this.hostCounters[H_READ_PAUSES]++;
          l.conn?.pause();
          // not congested, yet nothing moved: no 'drain' will come, so look again shortly
          if (!l.blocked) setTimeout(() => this.unpause(l), 5);
          return false;
        }
      } else if (rc < 0) return true; // no such connection (closed meanwhile)
      else stalls = 0;
      if (l.st !== St.Open) return true;
    }
    return true;
  }

  /** Feeds what a paused connection kept, while the driver takes it. */
  private unpause(l: Link): void {
    if (!l.paused || l.blocked || l.st !== St.Open) return;
    l.paused = false;
    while (l.queue.length > 0 && !l.paused) {
      const c = l.queue.shift() as Uint8Array;
      if (!this.feedChunk(l, c, 0)) return;
    }
    l.conn?.resume();
  }

  onDrain(l: Link): void {
    if (!l.blocked || l.st !== St.Open) return;
    l.blocked = false;
    this.feed.kick(l.id);
    this.writeOut();
    this.unpause(l);
    this.writeOut();
    if (this.feed.batchCount() > 0) this.schedule();
  }

  onClosed(l: Link, status: number, flags: number): void {
    if (l.st === St.Gone) return;
    const was = l.st;
    l.st = St.Gone;
    this.forget(l);
    if (flags !== 0) this.hostCounters[was === St.Open ? H_READ_ERRORS : H_CONNECT_ERRORS]++;
    if (this.closing !== undefined && this.closed) return;
    if (was === St.Open) {
      this.feed.close(now(), l.id, status, flags);
      this.schedule();
    } else if (l.client) this.event(CONN_EV_CLOSED, l.id, undefined, status, flags);
  }

  // ------------------------------------------------------------------ driver → sockets

  /** Writes what the driver has for every connection (rounds until nothing moves). */
  private writeOut(): void {
    if (this.writing) return;
    this.writing = true;
    const feed = this.feed;
    const corked: Link[] = [];
    try {
      for (;;) {
        const n = feed.collect();
        if (n === 0) break;
        for (let i = 0; i < n; i++) {
          const l = this.links.get(feed.outId(i));
          if (l === undefined || l.conn === undefined) {
            feed.setDone(i, 0);
            continue;
          }
          if (feed.outOp(i) === OUT_CLOSE) {
            // the driver closed it (Abort sent, dead peer, error): end after what was written
            l.ending = true;
            if (!l.ended) {
              l.ended = true;
              l.conn.end();
            }
            continue;
          }
          if (l.ended) {
            feed.setDone(i, feed.outBytes(i).length);
            continue;
          }
          if (l.conn.congested()) {
            feed.setDone(i, 0); // kept in the driver until 'drain'
            l.blocked = true;
            this.hostCounters[H_WRITES_QUEUED]++;
            continue;
          }
          if (!l.corked && l.conn.cork !== undefined) {
            l.corked = true;
            l.conn.cork();
            corked.push(l);
          }
          const b = feed.outBytes(i);
          l.conn.write(b.slice());
          this.hostCounters[H_WRITES]++;
          feed.setDone(i, b.length);
        }
        // until collect finds nothing: connections that wrote are queued again when they have
        // more (or are closed and drained: CLOSE); congested ones wait for 'drain'
        feed.wrote(n);
      }
    } finally {
      this.writing = false;
      for (const l of corked) {
        l.corked = false;
        l.conn?.uncork?.();
      }
    }
  }

  private rearm(): void {
    if (this.closing !== undefined) return;
    const dl = this.feed.deadline();
    if (dl === Infinity) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.armed = Infinity;
      return;
    }
    if (dl >= this.armed && this.timer !== undefined) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armed = dl;
    this.timer = setTimeout(this.onTimer, Math.max(0, dl - now()));
    const t = this.timer as { unref?: () => void };
    t.unref?.();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armed = Infinity;
    if (this.closing !== undefined) return;
    const t = now();
    for (;;) {
      const rc = this.feed.timer(t);
      if (rc === TCS_DELIVER) this.dispatch();
      else break;
    }
    this.dispatch();
    this.writeOut();
    this.rearm();
  };

  // ------------------------------------------------------------------ StreamCore

  async listen(o: StreamListenOptions): Promise<{ index: number; address: SocketAddress }> {
    if (this.closing !== undefined) throw new Error('turbocoap: the stream core is closed');
    const index = this.listeners.length;
    const accept = (address: string): HostLink | undefined => {
      const l = this.admit(address, index, false);
      if (l === undefined) this.hostCounters[H_REFUSED]++;
      else this.hostCounters[H_ACCEPTED]++;
      return l;
    };
    const listener = await this.host.listen(o, accept, this.feed.inCap);
    if (!this.refd) listener.setRef(false);
    this.listeners.push(listener);
    return { index, address: listener.address };
  }

  connect(o: StreamConnectOptions): number {
    this.hostCounters[H_CONNECTS]++;
    const l = this.admit(o.host, 0, true);
    if (l === undefined) {
      const id = this.newId();
      this.event(CONN_EV_CLOSED, id, undefined, E_FULL, 0);
      return id;
    }
    try {
      this.host.connect(o, l, this.feed.inCap);
    } catch (e) {
      this.forget(l);
      l.st = St.Gone;
      this.event(CONN_EV_CLOSED, l.id, undefined, E_STALE, 0);
      void e;
    }
    return l.id;
  }

  closeConn(id: number, abort: boolean, diagnostic?: string): void {
    const l = this.links.get(id);
    if (l === undefined || l.st === St.Gone) return;
    if (l.st === St.Pending) {
      l.conn?.destroy();
      return;
    }
    this.endConn(l, abort, diagnostic ?? '');
    this.writeOut();
    this.schedule();
  }

  /** tcs_shutdown / tcs_abort: a CLOSED record now; the output drains, then OUT_CLOSE. */
  private endConn(l: Link, abort: boolean, diagnostic: string): void {
    if (l.ending) return;
    l.ending = true;
    const t = now();
    for (let k = 0; k < 2; k++) {
      const rc = abort ? this.feed.abort(t, l.id, diagnostic) : this.feed.shutdown(t, l.id);
      if (rc !== TCS_DELIVER) break;
      this.dispatch();
    }
  }

  flush(nwords: number, nbytes: number): number {
    if (this.closed) return E_STALE;
    const feed = this.feed;
    feed.flushStart(nwords, nbytes);
    const t = now();
    let rc: number;
    while ((rc = feed.flushRun(t)) === TCS_WRITE) this.writeOut();
    const failed = feed.flushEnd(nwords);
    this.writeOut();
    if (feed.batchCount() > 0) this.schedule();
    this.rearm();
    return rc < 0 ? rc : failed;
  }

  readBody(id: number, length: number): Uint8Array | number {
    return this.closed ? E_STALE : this.feed.readBody(id, length);
  }

  setRef(on: boolean): void {
    if (this.refd === on) return;
    this.refd = on;
    for (const l of this.listeners) l.setRef(on);
    for (const l of this.links.values()) l.conn?.setRef?.(on);
  }

  stats(): StreamStats {
    const v = this.feed.stats(this.hostCounters);
    v.setUint32(SST_REFUSED_TOTAL, v.getUint32(SST_REFUSED_TOTAL, true) + this.refusedTotal, true);
    v.setUint32(SST_REFUSED_HOST, v.getUint32(SST_REFUSED_HOST, true) + this.refusedHost, true);
    return streamStatsFromView(v);
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      // listeners stop accepting now; their close completes once the connections are gone
      const listening = Promise.all(this.listeners.map((l) => l.close().catch(() => undefined)));
      const links = [...this.links.values()];
      for (const l of links) {
        // the driver's output first, then FIN
        if (l.st === St.Open) this.endConn(l, false, '');
        else l.conn?.destroy();
      }
      this.writeOut();
      await new Promise<void>((resolve) => {
        const t0 = now();
        const poll = (): void => {
          if (this.links.size === 0 || now() - t0 > 1000) resolve();
          else setTimeout(poll, 5);
        };
        poll();
      });
      for (const l of this.links.values()) l.conn?.destroy();
      await listening;
      this.dispatchFinal();
      this.closed = true;
      this.feed.free();
    })();
    return this.closing;
  }

  /** CLOSED records of the connections close() ended. */
  private dispatchFinal(): void {
    this.dispatch();
  }
}

/**
 * A StreamCoreFactory over a feed (the connection driver) and a socket host: what
 * stream-endpoint.ts uses for the WASM backend (tcp and tls: stream-node's tcpSocketHost;
 * ws and wss: ws-node's wsNodeSocketHost, or ws-browser's wsBrowserSocketHost).
 */
export function jsStreamCore(feed: StreamFeedFactory, host: SocketHost) {
  return (
    framing: StreamFraming,
    config: Uint32Array,
    seed: Uint8Array,
    onBatch: StreamBatchHandler,
    role: 'server' | 'client',
  ): StreamCore => new JsStreamCore(feed, host, framing, config, seed, onBatch, role);
}
