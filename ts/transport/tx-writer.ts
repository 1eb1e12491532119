/**
 * The writer of TX records (RESPOND, REQUEST, NOTIFY, PING, CANCEL, DROP, OBSERVERS; the
 * layout of ../driver/abi.ts) with its once-per-microtask flush: the part of a driver shared
 * by every transport (UDP endpoints, ./endpoint.ts; connection-oriented ones,
 * ./stream-endpoint.ts). A subclass attaches the host whose TX areas it writes into and adds
 * what its transport does (bind / listen / connect, the dispatch of delivered batches).
 *
 * @internal
 */
import type { DriverListener, IdCallback, Peer } from '../driver/driver';
import {
  OBS_CON,
  REQ_CON,
  REQ_KEEP,
  E_STALE,
  REQ_TOKEN,
  REQ_TOKEN_SHIFT,
  TX_CANCEL,
  TX_DROP,
  TX_NOTIFY,
  TX_NOTIFY_CODE,
  TX_NOTIFY_FLAGS,
  TX_NOTIFY_KIND,
  TX_NOTIFY_OPT_COUNT,
  TX_NOTIFY_PAYLOAD_LEN,
  TX_NOTIFY_PAYLOAD_OFF,
  TX_NOTIFY_RC,
  TX_NOTIFY_RESOURCE,
  TX_NOTIFY_WORDS,
  TX_OBSERVERS,
  TX_PING,
  TX_PING_FAMILY,
  TX_PING_ID,
  TX_PING_IP,
  TX_PING_KIND,
  TX_PING_PORT,
  TX_PING_RC,
  TX_PING_SCOPE,
  TX_PING_WORDS,
  TX_REQUEST,
  TX_REQUEST_CODE,
  TX_REQUEST_FAMILY,
  TX_REQUEST_FLAGS,
  TX_REQUEST_ID,
  TX_REQUEST_IP,
  TX_REQUEST_KIND,
  TX_REQUEST_OPT_COUNT,
  TX_REQUEST_PAYLOAD_LEN,
  TX_REQUEST_PAYLOAD_OFF,
  TX_REQUEST_PORT,
  TX_REQUEST_RC,
  TX_REQUEST_SCOPE,
  TX_REQUEST_TOKEN,
  TX_REQUEST_WORDS,
  TX_RESPOND,
  TX_RESPOND_CODE,
  TX_RESPOND_ID,
  TX_RESPOND_KIND,
  TX_RESPOND_OPT_COUNT,
  TX_RESPOND_PAYLOAD_LEN,
  TX_RESPOND_PAYLOAD_OFF,
  TX_RESPOND_RC,
  TX_RESPOND_RESOURCE,
  TX_RESPOND_WORDS,
  TX_SMALL_CONN,
  TX_SMALL_ID,
  TX_SMALL_KIND,
  TX_SMALL_RC,
  TX_SMALL_WORDS,
} from '../driver/abi';

const utf8 = new TextEncoder();

/** What a writer writes into and hands its records to (a UDP or stream host). */
export interface TxHost {
  readonly txWords: Uint32Array;
  readonly txBytes: Uint8Array;
  /** Runs the records; how many failed, or a negative core error (see UdpDriver.flush). */
  flush(nwords: number, nbytes: number): number;
  readBody(id: number, length: number): Uint8Array | number;
}

export abstract class TxWriter {
  /** TX record table, and the same memory as bytes (for address words). */
  w!: Uint32Array;
  w8!: Uint8Array;
  /** TX byte area. */
  b!: Uint8Array;
  /** Words / bytes written since the last flush. */
  wpos = 0;
  bpos = 0;
  closed = false;
  private scheduled = false;
  private readonly idPos: number[] = [];
  private readonly idCbs: IdCallback[] = [];
  private host!: TxHost;
  /** Record being written (its position and header words), from a begin* call. */
  private cur = 0;
  private curHdr = 0;

  constructor(protected readonly listener: DriverListener) {}

  /** Attaches the host whose TX areas records are written into (once, from the subclass constructor). */
  protected attach(host: TxHost): void {
    this.host = host;
    this.w = host.txWords;
    this.w8 = new Uint8Array(this.w.buffer, this.w.byteOffset, this.w.byteLength);
    this.b = host.txBytes;
  }

  private readonly flushTask = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /**
   * Makes room for a record of `words` words and `bytes` bytes (flushing first if the
   * areas are too full) and schedules the flush. Returns false if it can never fit.
   */
  reserve(words: number, bytes: number): boolean {
    if (this.wpos + words > this.w.length || this.bpos + bytes > this.b.length) {
      if (words > this.w.length || bytes > this.b.length) return false;
      this.flush();
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTask);
    }
    return true;
  }

  /** Copies bytes into the byte area (room reserved); returns their offset. */
  putBytes(v: Uint8Array): number {
    const at = this.bpos;
    const n = v.length;
    const b = this.b;
    if (n > 32) b.set(v, at);
    else for (let i = 0; i < n; i++) b[at + i] = v[i] as number;
    this.bpos = at + n;
    return at;
  }

  /** Encodes a string as UTF-8 into the byte area (3 bytes per code unit reserved); returns its length. */
  putString(s: string): number {
    const at = this.bpos;
    const n = s.length;
    const b = this.b;
    if (n <= 64) {
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[at + i] = c;
      }
      if (i === n) {
        this.bpos = at + n;
        return n;
      }
    }
    const len = utf8.encodeInto(s, b.subarray(at)).written;
    this.bpos = at + len;
    return len;
  }

  /** Writes an unsigned integer option value (minimal big-endian); returns its length. */
  putUint(v: number): number {
    const at = this.bpos;
    const b = this.b;
    let n = 0;
    if (v > 0xffffff) {
      b[at] = (v / 0x1000000) & 0xff;
      n = 1;
    }
    if (v > 0xffff) b[at + n++] = (v >>> 16) & 0xff;
    if (v > 0xff) b[at + n++] = (v >>> 8) & 0xff;
    if (v > 0) b[at + n++] = v & 0xff;
    this.bpos = at + n;
    return n;
  }

  /**
   * RESPOND record header at wpos (options at wpos + TX_RESPOND_WORDS); returns the record
   * position. `resource` (> 0) registers the client as an observer of that resource when the
   * request asked to observe (SRVF_OBSERVE) and the code is 2.xx; 0 = none.
   */
  respondHeader(id: number, code: number, payloadOff: number, payloadLen: number, optCount: number, resource = 0): number {
    const w = this.w;
    const p = this.wpos;
    w[p + TX_RESPOND_KIND] = TX_RESPOND;
    w[p + TX_RESPOND_ID] = id;
    w[p + TX_RESPOND_RC] = 0;
    w[p + TX_RESPOND_CODE] = code;
    w[p + TX_RESPOND_PAYLOAD_OFF] = payloadOff;
    w[p + TX_RESPOND_PAYLOAD_LEN] = payloadLen;
    w[p + TX_RESPOND_OPT_COUNT] = optCount;
    w[p + TX_RESPOND_RESOURCE] = resource;
    this.wpos = p + TX_RESPOND_WORDS + 3 * optCount;
    return p;
  }

  /**
   * NOTIFY record header at wpos (options at wpos + TX_NOTIFY_WORDS): notify every observer
   * of `resource` (flags: OBS_CON to send it confirmable to all). `cb` gets (resource, rc)
   * after the flush. Returns the record position.
   */
  notifyHeader(
    resource: number,
    flags: number,
    code: number,
    payloadOff: number,
    payloadLen: number,
    optCount: number,
    cb?: IdCallback,
  ): number {
    const w = this.w;
    const p = this.wpos;
    w[p + TX_NOTIFY_KIND] = TX_NOTIFY;
    w[p + TX_NOTIFY_RESOURCE] = resource;
    w[p + TX_NOTIFY_RC] = 0;
    w[p + TX_NOTIFY_FLAGS] = flags;
    w[p + TX_NOTIFY_CODE] = code;
    w[p + TX_NOTIFY_PAYLOAD_OFF] = payloadOff;
    w[p + TX_NOTIFY_PAYLOAD_LEN] = payloadLen;
    w[p + TX_NOTIFY_OPT_COUNT] = optCount;
    this.wpos = p + TX_NOTIFY_WORDS + 3 * optCount;
    if (cb !== undefined) {
      this.idPos.push(p);
      this.idCbs.push(cb);
    }
    return p;
  }

  /**
   * The Block1 body of a delivered request (SRVF_BODY: id and length from its record,
   * RX_BODY_ID / RX_BODY_LEN), copied out and released; or a negative core error (E_STALE:
   * unknown, expired, already read, or closed).
   */
  readBody(id: number, length: number): Uint8Array | number {
    if (this.closed) return E_STALE;
    return this.host.readBody(id, length);
  }

  /**
   * REQUEST record header at wpos (options at wpos + 16). Address: family 4/6, port,
   * 16 bytes (IPv4 in the first 4), scope. The core generates a token of `tokenLength`
   * bytes, unless `token` is given (up to 32 bytes, copied into the byte area: its room
   * reserved by the caller): then that token is used (REQ_TOKEN; rc E_INVALID while another
   * outstanding request to the peer has it). `cb` gets the id after the flush.
   */
  requestHeader(
    flags: number,
    code: number,
    family: number,
    port: number,
    ip: Uint8Array,
    scope: number,
    tokenLength: number,
    payloadOff: number,
    payloadLen: number,
    optCount: number,
    cb: IdCallback,
    token?: Uint8Array,
  ): number {
    const w = this.w;
    const p = this.wpos;
    w[p + TX_REQUEST_KIND] = TX_REQUEST;
    w[p + TX_REQUEST_ID] = 0;
    w[p + TX_REQUEST_RC] = 0;
    w[p + TX_REQUEST_FLAGS] = token === undefined ? flags : flags | REQ_TOKEN;
    w[p + TX_REQUEST_CODE] = code;
    w[p + TX_REQUEST_FAMILY] = family;
    w[p + TX_REQUEST_PORT] = port;
    const w8 = this.w8;
    const at = (p + TX_REQUEST_IP) * 4;
    for (let i = 0; i < 16; i++) w8[at + i] = ip[i] as number;
    w[p + TX_REQUEST_SCOPE] = scope;
    w[p + TX_REQUEST_TOKEN] = token === undefined ? tokenLength : ((this.putBytes(token) << REQ_TOKEN_SHIFT) | token.length) >>> 0;
    w[p + TX_REQUEST_PAYLOAD_OFF] = payloadOff;
    w[p + TX_REQUEST_PAYLOAD_LEN] = payloadLen;
    w[p + TX_REQUEST_OPT_COUNT] = optCount;
    this.wpos = p + TX_REQUEST_WORDS + 3 * optCount;
    this.idPos.push(p);
    this.idCbs.push(cb);
    return p;
  }

  /** Writes option triple k of the record at p (header of `hdr` words). */
  opt(p: number, hdr: number, k: number, number: number, off: number, len: number): void {
    const w = this.w;
    const q = p + hdr + 3 * k;
    w[q] = number;
    w[q + 1] = off;
    w[q + 2] = len;
  }

  /** Queues CANCEL (client request id) or DROP (server exchange id). */
  small(kind: typeof TX_CANCEL | typeof TX_DROP, id: number, conn = 0): void {
    if (this.closed || !this.reserve(TX_SMALL_WORDS, 0)) return;
    const w = this.w;
    const p = this.wpos;
    w[p + TX_SMALL_KIND] = kind;
    w[p + TX_SMALL_ID] = id;
    w[p + TX_SMALL_RC] = 0;
    w[p + TX_SMALL_CONN] = conn;
    this.wpos = p + TX_SMALL_WORDS;
  }

  /**
   * Queues an OBSERVERS record: after the flush (which runs the records written before it
   * first), cb gets (resource, its observer count).
   */
  observers(resource: number, cb: IdCallback): void {
    if (this.closed || !this.reserve(TX_SMALL_WORDS, 0)) return;
    const w = this.w;
    const p = this.wpos;
    w[p + TX_SMALL_KIND] = TX_OBSERVERS;
    w[p + TX_SMALL_ID] = resource;
    w[p + TX_SMALL_RC] = 0;
    w[p + TX_SMALL_CONN] = 0;
    this.wpos = p + TX_SMALL_WORDS;
    this.idPos.push(p);
    this.idCbs.push(cb);
  }

  /** Queues a CoAP ping to an address; cb gets the id. */
  ping(family: number, port: number, ip: Uint8Array, scope: number, cb: IdCallback): void {
    if (!this.reserve(TX_PING_WORDS, 0)) return;
    const w = this.w;
    const p = this.wpos;
    w[p + TX_PING_KIND] = TX_PING;
    w[p + TX_PING_ID] = 0;
    w[p + TX_PING_RC] = 0;
    w[p + TX_PING_FAMILY] = family;
    w[p + TX_PING_PORT] = port;
    const at = (p + TX_PING_IP) * 4;
    for (let i = 0; i < 16; i++) this.w8[at + i] = ip[i] as number;
    w[p + TX_PING_SCOPE] = scope;
    this.wpos = p + TX_PING_WORDS;
    this.idPos.push(p);
    this.idCbs.push(cb);
  }

  /** Runs the records written so far. */
  flush(): void {
    const nw = this.wpos;
    if (nw === 0) return;
    const nb = this.bpos;
    const rc = this.closed ? E_STALE : this.host.flush(nw, nb);
    const w = this.w;
    // Collect what callbacks need before the areas are reused.
    const n = this.idPos.length;
    let ids: number[] | undefined;
    let rcs: number[] | undefined;
    let cbs: IdCallback[] | undefined;
    if (n > 0) {
      ids = new Array<number>(n);
      rcs = new Array<number>(n);
      cbs = this.idCbs.slice();
      for (let k = 0; k < n; k++) {
        const p = this.idPos[k] as number;
        // NOTIFY: the resource (in); REQUEST / PING: the id (out); OBSERVERS: the resource
        // (in) and its observer count (RC)
        const kind = w[p + TX_REQUEST_KIND];
        if (kind === TX_NOTIFY) ids[k] = w[p + TX_NOTIFY_RESOURCE] as number;
        else if (rc < 0) ids[k] = 0;
        else ids[k] = w[p + (kind === TX_PING ? TX_PING_ID : TX_REQUEST_ID)] as number;
        rcs[k] = rc < 0 ? rc : (w[p + (kind === TX_NOTIFY ? TX_NOTIFY_RC : kind === TX_PING ? TX_PING_RC : TX_REQUEST_RC)] as number) | 0;
      }
      this.idPos.length = 0;
      this.idCbs.length = 0;
    }
    let failedResponds: number[] | undefined;
    if (rc > 0) {
      // rare: find RESPOND records that failed
      for (let p = 0; p < nw; ) {
        const kind = w[p + TX_SMALL_KIND];
        if (kind === TX_RESPOND) {
          const r = (w[p + TX_RESPOND_RC] as number) | 0;
          if (r !== 0) (failedResponds ??= []).push(w[p + TX_RESPOND_ID] as number, r);
          p += TX_RESPOND_WORDS + 3 * (w[p + TX_RESPOND_OPT_COUNT] as number);
        } else if (kind === TX_REQUEST) p += TX_REQUEST_WORDS + 3 * (w[p + TX_REQUEST_OPT_COUNT] as number);
        else if (kind === TX_NOTIFY) p += TX_NOTIFY_WORDS + 3 * (w[p + TX_NOTIFY_OPT_COUNT] as number);
        else if (kind === TX_PING) p += TX_PING_WORDS;
        else p += TX_SMALL_WORDS;
      }
    }
    this.wpos = 0;
    this.bpos = 0;
    if (cbs !== undefined) for (let k = 0; k < n; k++) (cbs[k] as IdCallback)(ids![k] as number, rcs![k] as number);
    if (failedResponds !== undefined) {
      for (let k = 0; k < failedResponds.length; k += 2) {
        this.listener.onRespondFailed(failedResponds[k] as number, failedResponds[k + 1] as number);
      }
    }
  }

  private begin(hdr: number, optionCount: number, bytes: number): boolean {
    if (!this.reserve(hdr + 3 * optionCount, bytes)) return false;
    this.cur = this.wpos;
    this.curHdr = hdr;
    return true;
  }

  beginRespond(optionCount: number, bytes: number): boolean {
    return this.begin(TX_RESPOND_WORDS, optionCount, bytes);
  }

  beginNotify(optionCount: number, bytes: number): boolean {
    return this.begin(TX_NOTIFY_WORDS, optionCount, bytes);
  }

  beginRequest(optionCount: number, bytes: number): boolean {
    return this.begin(TX_REQUEST_WORDS, optionCount, bytes);
  }

  option(k: number, number: number, offset: number, length: number): void {
    this.opt(this.cur, this.curHdr, k, number, offset, length);
  }

  mark(): number {
    return this.bpos;
  }

  rewind(mark: number): void {
    this.bpos = mark;
  }

  respond(id: number, code: number, payloadOffset: number, payloadLength: number, optionCount: number, resource: number): void {
    this.respondHeader(id, code, payloadOffset, payloadLength, optionCount, resource);
  }

  notify(resource: number, confirmable: boolean, code: number, payloadOffset: number, payloadLength: number, optionCount: number, cb?: IdCallback): void {
    this.notifyHeader(resource, confirmable ? OBS_CON : 0, code, payloadOffset, payloadLength, optionCount, cb);
  }

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
  ): void {
    const flags = (confirmable ? REQ_CON : 0) | (keep ? REQ_KEEP : 0);
    this.requestHeader(flags, code, peer.family, peer.port, peer.ip, peer.scope, tokenLength, payloadOffset, payloadLength, optionCount, cb, token);
  }

  sendPing(peer: Peer, cb: IdCallback): void {
    this.ping(peer.family, peer.port, peer.ip, peer.scope, cb);
  }

  cancel(id: number): void {
    this.small(TX_CANCEL, id);
  }

  drop(id: number): void {
    this.small(TX_DROP, id);
  }

}
