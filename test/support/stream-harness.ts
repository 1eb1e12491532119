// A StreamCore at the record level for tests: writes TX REQUEST / RESPOND records as the
// stream driver does, collects the records of delivered batches, and waits for them.
import { randomBytes } from 'node:crypto';
import {
  CONN_EV_CLOSED,
  CONN_EV_OPEN,
  CONN_EV_READY,
  EV_REQUEST,
  EV_RESPONSE,
  FAMILY_CONN,
  RX_CODE,
  RX_DATA,
  RX_FLAGS,
  RX_ID,
  RX_KIND,
  RX_LEN,
  RX_OPT_COUNT,
  RX_PAYLOAD_LEN,
  RX_PAYLOAD_OFF,
  RX_PORT,
  RX_STATUS,
  RX_WORDS,
  SEED_BYTES,
  TX_REQUEST,
  TX_REQUEST_CODE,
  TX_REQUEST_FAMILY,
  TX_REQUEST_FLAGS,
  TX_REQUEST_ID,
  TX_REQUEST_KIND,
  TX_REQUEST_OPT_COUNT,
  TX_REQUEST_PAYLOAD_LEN,
  TX_REQUEST_PAYLOAD_OFF,
  TX_REQUEST_PORT,
  TX_REQUEST_RC,
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
} from '../../ts/driver/abi';
import type { StreamCore, StreamCoreFactory, StreamFraming } from '../../ts/transport/stream-core';
import { streamConfig } from '../../ts/transport/stream-endpoint';
import type { ConnectionOptions } from '../../ts/driver/driver';

export interface Rec {
  kind: number;
  id: number;
  status: number;
  flags: number;
  conn: number; // PORT of FAMILY_CONN records; ID of OPEN
  code: number;
  payload: Uint8Array;
  data: Uint8Array; // OPEN: identity
  words: Uint32Array;
}

const URI_PATH = 11;

export class Harness {
  readonly core: StreamCore;
  readonly recs: Rec[] = [];
  private waiters: (() => void)[] = [];
  /** answers requests automatically with 2.05 and this payload (by path) */
  autoRespond: ((path: string, payload: Uint8Array) => string | undefined) | undefined;

  constructor(
    factory: StreamCoreFactory,
    framing: StreamFraming,
    role: 'server' | 'client',
    limits: ConnectionOptions & { maxMessageSize?: number } = {},
    tweak?: (config: Uint32Array) => void,
  ) {
    const cfg = streamConfig(framing, limits, role);
    tweak?.(cfg);
    this.core = factory(framing, cfg, new Uint8Array(randomBytes(SEED_BYTES)), this.onBatch, role);
  }

  private readonly onBatch = (u32: Uint32Array, u8: Uint8Array, count: number, base: number): void => {
    let r = 0;
    for (let i = 0; i < count; i++) {
      const kind = u32[r + RX_KIND] as number;
      const n = RX_WORDS + 3 * (u32[r + RX_OPT_COUNT] as number);
      const msg = kind === EV_REQUEST || kind === EV_RESPONSE;
      const rec: Rec = {
        kind,
        id: u32[r + RX_ID] as number,
        status: (u32[r + RX_STATUS] as number) | 0,
        flags: u32[r + RX_FLAGS] as number,
        conn: kind === CONN_EV_OPEN ? (u32[r + RX_ID] as number) : (u32[r + RX_PORT] as number),
        code: msg ? (u32[r + RX_CODE] as number) : 0,
        payload: msg ? u8.slice(base + (u32[r + RX_PAYLOAD_OFF] as number), base + (u32[r + RX_PAYLOAD_OFF] as number) + (u32[r + RX_PAYLOAD_LEN] as number)) : new Uint8Array(0),
        data: kind === CONN_EV_OPEN ? u8.slice(base + (u32[r + RX_DATA] as number), base + (u32[r + RX_DATA] as number) + (u32[r + RX_LEN] as number)) : new Uint8Array(0),
        words: u32.slice(r, r + n),
      };
      if (kind === EV_REQUEST && this.autoRespond !== undefined) {
        // Uri-Path options: triples after RX_WORDS (number, offset, length)
        const parts: string[] = [];
        for (let k = 0; k < (u32[r + RX_OPT_COUNT] as number); k++) {
          const o = r + RX_WORDS + 3 * k;
          if (u32[o] === URI_PATH) parts.push(Buffer.from(u8.subarray(base + (u32[o + 1] as number), base + (u32[o + 1] as number) + (u32[o + 2] as number))).toString());
        }
        const text = this.autoRespond(parts.join('/'), rec.payload);
        if (text !== undefined) this.respond(rec.id, 0x45, Buffer.from(text));
      }
      this.recs.push(rec);
      r += n;
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  };

  /** Waits until pred finds a record (or fails after ms). */
  async waitFor(pred: (r: Rec) => boolean, what: string, ms = 5000): Promise<Rec> {
    const t0 = Date.now();
    for (;;) {
      const hit = this.recs.find(pred);
      if (hit !== undefined) return hit;
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}; records: ${this.recs.map((r) => `${r.kind}/${r.conn}/${r.status}/${r.flags}`).join(' ')}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  opened(conn: number): Promise<Rec> {
    return this.waitFor((r) => r.kind === CONN_EV_OPEN && r.conn === conn, `OPEN ${conn}`);
  }
  ready(conn: number): Promise<Rec> {
    return this.waitFor((r) => r.kind === CONN_EV_READY && r.conn === conn, `READY ${conn}`);
  }
  closed(conn: number, ms = 5000): Promise<Rec> {
    return this.waitFor((r) => r.kind === CONN_EV_CLOSED && r.conn === conn, `CLOSED ${conn}`, ms);
  }

  /** A GET (or code) to path over connection conn; returns the RX id of the response wait. */
  request(conn: number, path: string, code = 1, payload: Uint8Array = new Uint8Array(0)): [number, number] {
    const w = this.core.txWords;
    const b = this.core.txBytes;
    const segs = path.split('/').filter((s) => s !== '');
    let bp = 0;
    const opts: [number, number, number][] = [];
    for (const s of segs) {
      const v = Buffer.from(s);
      b.set(v, bp);
      opts.push([URI_PATH, bp, v.length]);
      bp += v.length;
    }
    const poff = bp;
    b.set(payload, bp);
    bp += payload.length;
    w.fill(0, 0, TX_REQUEST_WORDS);
    w[TX_REQUEST_KIND] = TX_REQUEST;
    w[TX_REQUEST_FLAGS] = 0;
    w[TX_REQUEST_CODE] = code;
    w[TX_REQUEST_FAMILY] = FAMILY_CONN;
    w[TX_REQUEST_PORT] = conn;
    w[TX_REQUEST_TOKEN] = 4;
    w[TX_REQUEST_PAYLOAD_OFF] = poff;
    w[TX_REQUEST_PAYLOAD_LEN] = payload.length;
    w[TX_REQUEST_OPT_COUNT] = opts.length;
    let p = TX_REQUEST_WORDS;
    for (const [n, o, l] of opts) {
      w[p++] = n;
      w[p++] = o;
      w[p++] = l;
    }
    const rc = this.core.flush(p, bp);
    if (rc !== 0 || w[TX_REQUEST_RC] !== 0) throw new Error(`REQUEST failed: flush ${rc}, rc ${w[TX_REQUEST_RC] | 0}`);
    return [conn, w[TX_REQUEST_ID] as number];
  }

  respond(exchange: number, code: number, payload: Uint8Array): number {
    const w = this.core.txWords;
    this.core.txBytes.set(payload, 0);
    w[TX_RESPOND_KIND] = TX_RESPOND;
    w[TX_RESPOND_ID] = exchange;
    w[TX_RESPOND_RC] = 0;
    w[TX_RESPOND_CODE] = code;
    w[TX_RESPOND_PAYLOAD_OFF] = 0;
    w[TX_RESPOND_PAYLOAD_LEN] = payload.length;
    w[TX_RESPOND_OPT_COUNT] = 0;
    w[TX_RESPOND_RESOURCE] = 0;
    const rc = this.core.flush(TX_RESPOND_WORDS, payload.length);
    return rc !== 0 ? rc : (w[TX_RESPOND_RC] as number) | 0;
  }

  /** The response to request(conn, ...). */
  response([conn, reqId]: [number, number], ms = 5000): Promise<Rec> {
    return this.waitFor((r) => r.kind === EV_RESPONSE && r.id === reqId && r.conn === conn, `RESPONSE ${conn}/${reqId}`, ms);
  }
}
