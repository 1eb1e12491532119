/**
 * The WebAssembly UDP driver: the same server pipeline (tc_srv: tc_ep, block-wise, Observe;
 * the same batch records, see native/binding/ep_batch.h) in WebAssembly, with node:dgram
 * for I/O.
 *
 * Each datagram is copied into the handle's input area and run by tcw_udp_recv; records
 * collect in WASM memory and are handed to JS once per event-loop turn (setImmediate), as
 * copies, so nothing keeps a view of WASM memory across calls. Replies: JS's tx records are
 * copied in and run by tcw_udp_flush (in rounds while an Observe fan-out fills the tx queue);
 * the tx queue goes out with socket.send. Block1 bodies are copied out of WASM memory
 * (readBody). Timers are setTimeout, unref'd (the socket's ref state keeps the loop alive).
 *
 * @internal
 */
import * as dgram from 'node:dgram';
import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import type { WasmRaw } from '../backend/wasm';
import { CoapNetworkError } from '../errors';
import {
  BATCH_ABI,
  CONFIG_WORDS,
  E_STALE,
  EP_CONFIG_WORDS,
  SEED_BYTES,
  SRV_STATS_WORDS,
  TX_AREA_BYTES,
  TX_TABLE_WORDS,
  formatIPv6Words,
  parseIPv4,
  parseIPv6,
  scopeZone,
  statsFrom,
  zoneScope,
  type BatchHandler,
  type EndpointStats,
  type SocketAddress,
  type UdpDriver,
} from './udp-records';

interface UdpExports {
  tcw_udp_abi(): number;
  tcw_udp_create(cfg: number, seed: number, txWords: number, txBytes: number): number;
  tcw_udp_free(h: number): void;
  tcw_udp_recv(h: number, now: number, alen: number, len: number): number;
  tcw_udp_timer(h: number, now: number): number;
  tcw_udp_flush(h: number, now: number, pos: number, nwords: number, nbytes: number): number;
  tcw_udp_tx_reset(h: number): void;
  tcw_udp_rx_reset(h: number): void;
  tcw_udp_stats(h: number): number;
  tcw_udp_srv_stats(h: number): number;
  tcw_udp_read_body(h: number, id: number, out: number, cap: number): number;
  tcw_malloc(n: number): number;
  tcw_free(p: number): void;
}

const TCW_BATCH_FULL = 1;
const TCW_TX_FULL = 2;
const IN_ADDR = 32;
const INFO_WORDS = 18;
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
  const family = isIP(host.replace(/%.*$/, ''));
  if (family !== 0) cb(null, host, family);
  else lookup(host, typeof opts === 'number' ? { family: opts } : (opts as object), cb as never);
}

class WasmUdpDriver implements UdpDriver {
  readonly kind = 'wasm' as const;
  readonly txWords = new Uint32Array(TX_TABLE_WORDS);
  readonly txBytes = new Uint8Array(TX_AREA_BYTES);
  private readonly ex: UdpExports;
  private readonly memory: WebAssembly.Memory;
  private ab: ArrayBuffer | undefined;
  private u8!: Uint8Array;
  private u32!: Uint32Array;
  private h: number;
  /** tc_bw1_config.max_body: no body is longer */
  private readonly maxBody: number;
  private sock: dgram.Socket | undefined;
  private refd = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armed = Infinity;
  /** canonical address bytes by "address" (port patched in) */
  private readonly addrCache = new Map<string, Uint8Array>();
  private batches = 0;
  private records = 0;
  private sent = 0;
  private sendErrors = 0;
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
    for (let round = 0; round < 16 && !this.closed; round++) {
      const rc = this.ex.tcw_udp_timer(this.h, t);
      if (rc === 0) break;
      if (rc === TCW_TX_FULL) this.sendTx();
      else this.dispatch();
    }
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
    this.ex = raw.exports as unknown as UdpExports;
    this.memory = raw.memory;
    if (this.ex.tcw_udp_abi() !== (BATCH_ABI | (INFO_WORDS << 8))) {
      throw new Error('turbocoap.wasm: UDP ABI mismatch (rebuild it: npm run build:wasm)');
    }
    if (config.length !== CONFIG_WORDS) throw new RangeError('turbocoap: bad endpoint config size');
    if (seed.length !== SEED_BYTES) throw new RangeError(`turbocoap: seed must be ${SEED_BYTES} bytes`);
    this.maxBody = config[EP_CONFIG_WORDS + 2] as number;
    this.sync();
    this.u32.set(config, raw.tablePtr >>> 2);
    this.u8.set(seed, raw.bytesPtr);
    this.h = this.ex.tcw_udp_create(raw.tablePtr, raw.bytesPtr, TX_TABLE_WORDS, TX_AREA_BYTES);
    this.sync(); // creation allocates: memory may have grown
    this.u8.fill(0, raw.bytesPtr, raw.bytesPtr + SEED_BYTES);
    if (this.h === 0) throw new RangeError('turbocoap: invalid endpoint configuration (or out of WASM memory)');
    this.sync();
  }

  private sync(): void {
    const ab = this.memory.buffer;
    if (ab === this.ab) return;
    this.ab = ab;
    this.u8 = new Uint8Array(ab);
    this.u32 = new Uint32Array(ab);
  }

  private info(i: number): number {
    return this.u32[(this.h >>> 2) + i] as number;
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

  /** Canonical address (ep_batch.h) of a sender, written at `at` in u8; its length, or 0. */
  private putAddr(address: string, port: number, at: number): number {
    let a = this.addrCache.get(address);
    if (a === undefined) {
      const bytes = new Uint8Array(16);
      if (parseIPv4(address, bytes, 0)) {
        a = new Uint8Array(7);
        a[0] = 4;
        a.set(bytes.subarray(0, 4), 3);
      } else if (parseIPv6(address, bytes)) {
        const pct = address.indexOf('%');
        const scope = pct >= 0 ? zoneScope(address.slice(pct + 1)) : 0;
        a = new Uint8Array(23);
        a[0] = 6;
        a.set(bytes, 3);
        a[19] = scope & 0xff;
        a[20] = (scope >>> 8) & 0xff;
        a[21] = (scope >>> 16) & 0xff;
        a[22] = scope >>> 24;
      } else {
        return 0;
      }
      if (this.addrCache.size >= 4096) this.addrCache.clear();
      this.addrCache.set(address, a);
    }
    const u8 = this.u8;
    u8.set(a, at);
    u8[at + 1] = port >>> 8;
    u8[at + 2] = port & 0xff;
    return a.length;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closed) return;
    const t = now();
    for (let tries = 0; tries < 4; tries++) {
      this.sync();
      const inPtr = this.info(10);
      const alen = this.putAddr(rinfo.address, rinfo.port, inPtr);
      if (alen === 0 || msg.length > this.info(11) - IN_ADDR) return;
      this.u8.set(msg, inPtr + IN_ADDR);
      const rc = this.ex.tcw_udp_recv(this.h, t, alen, msg.length);
      if (rc === TCW_BATCH_FULL) {
        this.dispatch();
        if (this.closed) return;
        continue;
      }
      if (rc === TCW_TX_FULL) {
        this.sendTx();
        continue;
      }
      break;
    }
    this.sync();
    if (this.immediate === undefined && (this.info(4) > 0 || this.info(7) > 0)) this.immediate = setImmediate(this.onImmediate);
    this.rearm();
  }

  /** Hands the pending records to JS (as copies) and resets the batch. */
  private dispatch(): void {
    this.sync();
    const count = this.info(4);
    if (count === 0) return;
    const wp = this.info(0) >>> 2;
    const words = this.u32.slice(wp, wp + this.info(1));
    const dp = this.info(2);
    const data = this.u8.slice(dp, dp + this.info(3));
    this.ex.tcw_udp_rx_reset(this.h);
    this.batches++;
    this.records += count;
    this.onBatch(words, data, count, 0);
  }

  /** Sends and resets the tx queue. */
  private sendTx(): void {
    this.sync();
    const n = this.info(7);
    if (n === 0) return;
    const sock = this.sock;
    const buf = this.info(5);
    const items = this.info(6) >>> 2;
    const u8 = this.u8;
    const u32 = this.u32;
    for (let i = 0; i < n; i++) {
      const it = items + 4 * i;
      const ao = buf + (u32[it] as number);
      const off = buf + (u32[it + 2] as number);
      const len = u32[it + 3] as number;
      const port = ((u8[ao + 1] as number) << 8) | (u8[ao + 2] as number);
      let host: string;
      if (u8[ao] === 4) {
        host = `${u8[ao + 3]}.${u8[ao + 4]}.${u8[ao + 5]}.${u8[ao + 6]}`;
      } else {
        const w = (k: number): number =>
          ((u8[ao + 3 + k] as number) | ((u8[ao + 4 + k] as number) << 8) | ((u8[ao + 5 + k] as number) << 16) | ((u8[ao + 6 + k] as number) << 24)) >>> 0;
        host = formatIPv6Words(w(0), w(4), w(8), w(12));
        const scope = ((u8[ao + 19] as number) | ((u8[ao + 20] as number) << 8) | ((u8[ao + 21] as number) << 16) | ((u8[ao + 22] as number) << 24)) >>> 0;
        if (scope !== 0) host += `%${scopeZone(scope)}`;
      }
      if (sock !== undefined) {
        // dgram sends on a socket complete in order: one callback, on the batch's last
        // datagram, tells close() when everything handed over has left (a callback on every
        // send would cost a tick each). dgram drops the errors of sends without a callback.
        if (i === n - 1) {
          this.sending++;
          sock.send(u8.slice(off, off + len), port, host, this.onSent);
        } else sock.send(u8.slice(off, off + len), port, host);
        this.sent++;
      }
    }
    this.ex.tcw_udp_tx_reset(this.h);
  }

  private rearm(): void {
    if (this.closed) return;
    this.sync();
    const hi = this.info(9);
    const dl = hi === 0xffffffff ? Infinity : hi * 4294967296 + this.info(8);
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
    const twp = this.info(12) >>> 2;
    this.u32.set(this.txWords.subarray(0, nwords), twp);
    this.u8.set(this.txBytes.subarray(0, nbytes), this.info(14));
    const t = now();
    let pos = 0;
    let rc: number;
    for (;;) {
      rc = this.ex.tcw_udp_flush(this.h, t, pos, nwords, nbytes);
      if (rc !== 1) break;
      pos = this.info(16);
      this.sendTx();
    }
    this.sync();
    this.txWords.set(this.u32.subarray(twp, twp + nwords));
    const failed = this.info(17);
    this.sendTx();
    this.rearm();
    return rc < 0 ? rc : failed;
  }

  readBody(id: number, length: number): Uint8Array | number {
    if (this.closed || this.h === 0) return E_STALE;
    const cap = Math.min(length >>> 0, this.maxBody);
    const p = this.ex.tcw_malloc(cap);
    if (p === 0) throw new RangeError('turbocoap: out of WASM memory');
    try {
      const rc = this.ex.tcw_udp_read_body(this.h, id >>> 0, p, cap);
      if (rc < 0) return rc;
      this.sync();
      return this.u8.slice(p, p + rc);
    } finally {
      this.ex.tcw_free(p);
    }
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
      if (this.h !== 0) this.ex.tcw_udp_free(this.h);
      this.h = 0;
    })();
    return this.closing;
  }

  stats(): EndpointStats {
    if (this.h === 0) {
      return statsFrom(new Array<number>(17).fill(0), new Array<number>(SRV_STATS_WORDS).fill(0), 0, this.batches, this.records, this.sent, this.sent, this.sendErrors);
    }
    const p = this.ex.tcw_udp_stats(this.h) >>> 2;
    const q = this.ex.tcw_udp_srv_stats(this.h) >>> 2;
    this.sync();
    const u32 = this.u32;
    const s: number[] = [];
    for (let i = 0; i < 12; i++) s.push((u32[p + 2 * i] as number) + (u32[p + 2 * i + 1] as number) * 4294967296);
    for (let i = 0; i < 5; i++) s.push(u32[p + 24 + i] as number);
    // the hardening counters after `reserved`: four uint64, then verified (uint32)
    const e: number[] = [];
    for (let i = 0; i < 4; i++) e.push((u32[p + 30 + 2 * i] as number) + (u32[p + 31 + 2 * i] as number) * 4294967296);
    e.push(u32[p + 38] as number);
    return statsFrom(s, u32, q, this.batches, this.records, this.sent, this.sent, this.sendErrors, 0, e, 0);
  }
}

/** Creates WASM drivers over a module instance. */
export function wasmUdpFactory(raw: WasmRaw) {
  return (family: 4 | 6, config: Uint32Array, seed: Uint8Array, onBatch: BatchHandler): UdpDriver =>
    new WasmUdpDriver(raw, family, config, seed, onBatch);
}
