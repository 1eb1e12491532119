/**
 * The WebAssembly UDP driver: the datagram driver of native/driver/ (tc_srv: tc_ep,
 * block-wise, Observe; the same batch records and the same drain and retry policies as the
 * native addon) in WebAssembly, with node:dgram for I/O.
 *
 * Each datagram is staged in the handle's input area (sender address words, then the bytes)
 * and run by tcw_udp_recv, which answers with what to do (send the tx queue, hand the batch
 * over) until it is done. Batches are handed to JS once per event-loop turn (setImmediate)
 * unless the driver asks earlier, as copies, so nothing keeps a view of WASM memory across
 * calls. Replies: JS's tx records are copied in and run by tcw_udp_flush; the tx queue goes
 * out with socket.send (tcw_udp_send_list gives each datagram's address as record words).
 * Block1 bodies are copied out of WASM memory (readBody). Timers are setTimeout, unref'd (the
 * socket's ref state keeps the loop alive).
 *
 * @internal
 */
import * as dgram from 'node:dgram';
import { lookup } from 'node:dns';
import { ipFamily, parseIPv4, parseIPv6 } from '../net/ip';
import type { WasmRaw } from '../backend/wasm';
import { CoapNetworkError } from '../errors';
import {
  CONFIG_WORDS,
  E_STALE,
  STATS_BYTES,
  WASM_INFO_DEADLINE,
  WASM_INFO_IN,
  WASM_INFO_IN_CAP,
  WASM_INFO_MAX_BODY,
  WASM_INFO_RX_COUNT,
  WASM_INFO_RX_DATA,
  WASM_INFO_RX_DATA_USED,
  WASM_INFO_RX_USED,
  WASM_INFO_RX_WORDS,
  WASM_INFO_SEND_LIST,
  WASM_INFO_STATS,
  WASM_INFO_TXB,
  WASM_INFO_TXW,
  WASM_INFO_TX_COUNT,
  WASM_INFO_TX_FAILED,
  WASM_IN_DATA,
  WASM_SEND_FAMILY,
  WASM_SEND_IP,
  WASM_SEND_LEN,
  WASM_SEND_OFF,
  WASM_SEND_PORT,
  WASM_SEND_SCOPE,
  WASM_SEND_WORDS,
} from '../driver/abi';
import {
  TX_AREA_BYTES,
  TX_TABLE_WORDS,
  formatRecordAddress,
  statsFromView,
  zoneScope,
  type BatchHandler,
  type EndpointStats,
  type SocketAddress,
  type UdpDriver,
} from './udp-records';
import { WasmHandle, type WasmCommonExports } from './wasm-handle';

interface UdpExports extends WasmCommonExports {
  tcw_udp_create(cfg: number, cfgWords: number, seed: number, txWords: number, txBytes: number): number;
  tcw_udp_free(h: number): void;
  tcw_udp_recv(h: number, now: number, len: number): number;
  tcw_udp_timer(h: number, now: number): number;
  tcw_udp_flush(h: number, now: number, nwords: number, nbytes: number): number;
  tcw_udp_send_list(h: number): number;
  tcw_udp_tx_sent(h: number, sent: number, calls: number): void;
  tcw_udp_delivered(h: number): void;
  tcw_udp_stats(h: number, sendErrors: number): void;
  tcw_udp_read_body(h: number, id: number, out: number, cap: number): number;
}

/** dgram.h actions. */
const TCD_SEND = 1;
const SOCK_BUF = 4 * 1024 * 1024;

function now(): number {
  return Math.floor(performance.now());
}

/**
 * dgram's host lookup for the addresses this driver sends to: always IP literals (formatted
 * from the core's canonical addresses), answered at once. dgram's default (dns.lookup) defers
 * every send by a tick even for a literal, which halves the fan-out rate of notifications.
 */
function literalLookup(host: string, opts: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  const family = ipFamily(host.replace(/%.*$/, ''));
  if (family !== 0) cb(null, host, family);
  else lookup(host, typeof opts === 'number' ? { family: opts } : (opts as object), cb as never);
}

/** A sender address as record words (family, port, 4 address words, scope), port 0. */
type AddrWords = Uint32Array;

class WasmUdpDriver extends WasmHandle<UdpExports> implements UdpDriver {
  readonly kind = 'wasm' as const;
  readonly txWords = new Uint32Array(TX_TABLE_WORDS);
  readonly txBytes = new Uint8Array(TX_AREA_BYTES);
  private sock: dgram.Socket | undefined;
  private refd = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armed = Infinity;
  /** address words by sender address text */
  private readonly addrCache = new Map<string, AddrWords>();
  /** socket send errors (reported asynchronously by dgram) */
  private sendErrors = 0;
  /** the stats struct when the handle was freed */
  private lastStats: DataView | undefined;
  /** sends handed to dgram and not yet done (close() waits for them) */
  private sending = 0;
  private drained: (() => void) | undefined;
  private readonly onSent = (err: Error | null): void => {
    if (err) this.sendErrors++;
    if (--this.sending === 0 && this.drained !== undefined) this.drained();
  };
  private readonly onImmediate = (): void => {
    this.immediate = undefined;
    if (this.closed) return;
    this.dispatch();
    this.sendTx();
    this.rearm();
  };
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armed = Infinity;
    if (this.closed) return;
    const t = now();
    let a: number;
    while ((a = this.ex.tcw_udp_timer(this.h, t)) > 0) if (!this.act(a)) return;
    this.dispatch();
    this.sendTx();
    this.rearm();
  };

  constructor(
    raw: WasmRaw,
    readonly family: 4 | 6,
    config: Uint32Array,
    seed: Uint8Array,
    private readonly onBatch: BatchHandler,
  ) {
    super(raw);
    this.create(raw, 'endpoint', config, CONFIG_WORDS, seed, (cfg, sp) =>
      this.ex.tcw_udp_create(cfg, CONFIG_WORDS, sp, TX_TABLE_WORDS, TX_AREA_BYTES),
    );
    this.maxBody = this.info(WASM_INFO_MAX_BODY);
  }

  /** Does what a driver call asked (TCD_SEND, TCD_DELIVER); false once closed. */
  private act(a: number): boolean {
    if (a === TCD_SEND) this.sendTx();
    else this.dispatch();
    return !this.closed;
  }

  bind(host: string, port: number, flags: number): Promise<void> {
    if (this.closed) return Promise.reject(new CoapNetworkError('CLOSED', 'the endpoint is closed'));
    const sock = dgram.createSocket({
      type: this.family === 4 ? 'udp4' : 'udp6',
      ipv6Only: (flags & 1) !== 0,
      reuseAddr: (flags & 2) !== 0,
      lookup: literalLookup,
    });
    this.sock = sock;
    return new Promise<void>((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException): void => {
        const code = err.code ?? 'EIO';
        reject(new CoapNetworkError(code, `bind ${host}:${port}: ${code}`, { cause: err }));
      };
      sock.once('error', fail);
      sock.bind(port, host, () => {
        sock.off('error', fail);
        sock.on('error', () => this.sendErrors++);
        try {
          sock.setRecvBufferSize(SOCK_BUF);
          sock.setSendBufferSize(SOCK_BUF);
        } catch {
          /* best effort */
        }
        if (!this.refd) sock.unref();
        sock.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.onMessage(msg, rinfo));
        resolve();
      });
    });
  }

  address(): SocketAddress {
    if (this.sock === undefined || this.closed) throw new CoapNetworkError('EBADF', 'the socket is not bound');
    const a = this.sock.address();
    return { address: a.address, family: a.family === 'IPv4' || (a.family as unknown) === 4 ? 'IPv4' : 'IPv6', port: a.port };
  }

  /** The record words of a sender address (port 0), cached; undefined if it is not an IP. */
  private addrWords(address: string): AddrWords | undefined {
    let w = this.addrCache.get(address);
    if (w === undefined) {
      w = new Uint32Array(7);
      const bytes = new Uint8Array(w.buffer, 8, 16);
      if (parseIPv4(address, bytes, 0)) w[0] = 4;
      else if (parseIPv6(address, bytes)) {
        const pct = address.indexOf('%');
        w[0] = 6;
        w[6] = pct >= 0 ? zoneScope(address.slice(pct + 1)) : 0;
      } else return undefined;
      if (this.addrCache.size >= 4096) this.addrCache.clear();
      this.addrCache.set(address, w);
    }
    return w;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const w = this.addrWords(rinfo.address);
    if (w === undefined) return;
    const t = now();
    this.sync();
    const at = this.info(WASM_INFO_IN);
    if (msg.length > this.info(WASM_INFO_IN_CAP) - WASM_IN_DATA) return;
    this.u32.set(w, at >>> 2);
    this.u32[(at >>> 2) + 1] = rinfo.port;
    this.u8.set(msg, at + WASM_IN_DATA);
    // the address and datagram stay staged while the driver asks for room (it never
    // allocates, so the staging survives what JS does meanwhile)
    let a: number;
    while ((a = this.ex.tcw_udp_recv(this.h, t, msg.length)) > 0) if (!this.act(a)) return;
    this.sync();
    if (this.immediate === undefined && (this.info(WASM_INFO_RX_COUNT) > 0 || this.info(WASM_INFO_TX_COUNT) > 0)) {
      this.immediate = setImmediate(this.onImmediate);
    }
    this.rearm();
  }

  /** Hands the pending records to JS (as copies) and empties the batch. */
  private dispatch(): void {
    this.sync();
    const count = this.info(WASM_INFO_RX_COUNT);
    if (count === 0) return;
    const words = this.copyWords(WASM_INFO_RX_WORDS, WASM_INFO_RX_USED);
    const data = this.copyBytes(WASM_INFO_RX_DATA, WASM_INFO_RX_DATA_USED);
    this.ex.tcw_udp_delivered(this.h);
    this.onBatch(words, data, count, 0);
  }

  /** Sends and empties the tx queue. */
  private sendTx(): void {
    this.sync();
    if (this.info(WASM_INFO_TX_COUNT) === 0) return;
    const n = this.ex.tcw_udp_send_list(this.h);
    const sock = this.sock;
    const u8 = this.u8;
    const u32 = this.u32;
    let e = this.info(WASM_INFO_SEND_LIST) >>> 2;
    let sent = 0;
    for (let i = 0; i < n; i++, e += WASM_SEND_WORDS) {
      const off = u32[e + WASM_SEND_OFF] as number;
      const len = u32[e + WASM_SEND_LEN] as number;
      const host = formatRecordAddress(u32[e + WASM_SEND_FAMILY] as number, u8, (e + WASM_SEND_IP) * 4, u32[e + WASM_SEND_SCOPE] as number);
      if (sock !== undefined) {
        // dgram sends on a socket complete in order: one callback, on the batch's last
        // datagram, tells close() when everything handed over has left (a callback on every
        // send would cost a tick each). dgram drops the errors of sends without a callback.
        if (i === n - 1) {
          this.sending++;
          sock.send(u8.slice(off, off + len), u32[e + WASM_SEND_PORT] as number, host, this.onSent);
        } else sock.send(u8.slice(off, off + len), u32[e + WASM_SEND_PORT] as number, host);
        sent++;
      }
    }
    this.ex.tcw_udp_tx_sent(this.h, sent, sent);
  }

  private rearm(): void {
    if (this.closed) return;
    this.sync();
    const hi = this.info(WASM_INFO_DEADLINE + 1);
    const dl = hi === 0xffffffff ? Infinity : hi * 4294967296 + this.info(WASM_INFO_DEADLINE);
    if (dl === Infinity) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined;
      this.armed = Infinity;
      return;
    }
    if (dl >= this.armed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armed = dl;
    this.timer = setTimeout(this.onTimer, Math.max(0, dl - now()));
    this.timer.unref();
  }

  flush(nwords: number, nbytes: number): number {
    if (this.closed) return E_STALE;
    this.sync();
    const twp = this.info(WASM_INFO_TXW) >>> 2;
    this.u32.set(this.txWords.subarray(0, nwords), twp);
    this.u8.set(this.txBytes.subarray(0, nbytes), this.info(WASM_INFO_TXB));
    const t = now();
    let rc: number;
    while ((rc = this.ex.tcw_udp_flush(this.h, t, nwords, nbytes)) === TCD_SEND) this.sendTx();
    this.sync();
    this.txWords.set(this.u32.subarray(twp, twp + nwords));
    const failed = this.info(WASM_INFO_TX_FAILED);
    this.sendTx();
    this.rearm();
    return rc < 0 ? rc : failed;
  }

  readBody(id: number, length: number): Uint8Array | number {
    if (this.closed || this.h === 0) return E_STALE;
    return this.readBodyWith(this.ex.tcw_udp_read_body, id, length);
  }

  setRef(on: boolean): void {
    if (this.refd === on) return;
    this.refd = on;
    if (this.sock !== undefined && !this.closed) {
      if (on) this.sock.ref();
      else this.sock.unref();
    }
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const sock = this.sock;
    this.closing = (async () => {
      if (sock !== undefined && this.sending > 0) {
        // let datagrams already handed to dgram leave (bounded)
        let t: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          this.drained = resolve;
          t = setTimeout(resolve, 200);
        });
        clearTimeout(t);
        this.drained = undefined;
      }
      await new Promise<void>((resolve) => {
        if (sock === undefined) resolve();
        else {
          try {
            sock.close(() => resolve());
          } catch {
            resolve();
          }
        }
      });
      if (this.h !== 0) {
        this.lastStats = new DataView(this.statsBytes().slice().buffer);
        this.ex.tcw_udp_free(this.h);
      }
      this.h = 0;
    })();
    return this.closing;
  }

  /** The handle's stats struct (refreshed), a view of WASM memory valid until the next call. */
  private statsBytes(): Uint8Array {
    this.ex.tcw_udp_stats(this.h, this.sendErrors);
    this.sync();
    const p = this.info(WASM_INFO_STATS);
    return this.u8.subarray(p, p + STATS_BYTES);
  }

  stats(): EndpointStats {
    if (this.h === 0) return statsFromView(this.lastStats ?? new DataView(new ArrayBuffer(STATS_BYTES)));
    const b = this.statsBytes();
    return statsFromView(new DataView(b.buffer, b.byteOffset, STATS_BYTES));
  }
}

/** Creates WASM drivers over a module instance. */
export function wasmUdpFactory(raw: WasmRaw) {
  return (family: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler): UdpDriver =>
    new WasmUdpDriver(raw, family, config, seed, onBatch);
}
