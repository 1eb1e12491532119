/**
 * The glues' JS boundary: whatever JS writes into a UDP driver's tx record table and byte
 * area (native/binding/udp.c and wasm/glue.c over native/driver/), or does to their
 * buffers, flush() answers with a count, a negative TC_E_* code or a typed exception, never a
 * crash or a stray write; the records of the server pipeline (RESPOND with a resource,
 * NOTIFY, the srv words of RX records, readBody) and REQUEST with a caller's token
 * (REQ_TOKEN) behave the same on both drivers; encode
 * tables whose source spans leave the byte area get TC_E_INVALID from both the addon
 * (addon.cc) and the WASM glue (wasm/glue.c) instead of an over-read.
 */
import { createSocket } from 'node:dgram';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../ts/backend/native';
import { loadWasmBackend, wasmRaw } from '../ts/backend/wasm';
import { nativeUdpFactory, type UdpAddon } from '../ts/transport/udp-native';
import {
  CONFIG_WORDS,
  EP_CONFIG_WORDS,
  EV_FAILED,
  EV_REQUEST,
  E_INVALID,
  E_STALE,
  E_UNREACHABLE,
  OBS_CON,
  REQ_CON,
  REQ_KEEP,
  REQ_TOKEN,
  REQ_TOKEN_SHIFT,
  RX_BODY_ID,
  RX_BODY_LEN,
  RX_CODE,
  RX_ID,
  RX_KIND,
  RX_OPTS,
  RX_OPT_COUNT,
  RX_PAYLOAD_LEN,
  RX_PAYLOAD_OFF,
  RX_SRV_FLAGS,
  RX_STATUS,
  RX_WORDS,
  SEED_BYTES,
  SRVF_BODY,
  SRVF_OBSERVE,
  TX_AREA_BYTES,
  TX_CANCEL,
  TX_NOTIFY,
  TX_NOTIFY_WORDS,
  TX_PING,
  TX_REQUEST,
  TX_REQUEST_WORDS,
  TX_RESPOND,
  TX_RESPOND_WORDS,
  TX_SMALL_WORDS,
  TX_TABLE_WORDS,
  endpointConfig,
  type EndpointOptions,
  type UdpDriver,
  type UdpDriverFactory,
} from '../ts/transport/udp-records';
import { wasmUdpFactory } from '../ts/transport/udp-wasm';
import { hasNative } from './support/backends';
import { RawPeer, msg, opt, sleep, uintOf, within } from './support/udp';

// Without the addon (outside CI, where it was not built) the native suites skip.
const addon = (hasNative ? loadNativeAddon(join(resolve(__dirname, '..'), 'build', 'Release', 'turbocoap.node')) : undefined) as UdpAddon;
const raw = wasmRaw(loadWasmBackend())!;
const factories: ReadonlyArray<readonly [string, UdpDriverFactory]> = [
  ...(hasNative ? [['native', nativeUdpFactory(addon)] as const] : []),
  ['wasm', wasmUdpFactory(raw)],
];
const createNative = factories[0]![1];

const seed = new Uint8Array(SEED_BYTES).fill(7);
const open: UdpDriver[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

async function driver(create: UdpDriverFactory, onBatch: Parameters<UdpDriverFactory>[3] = () => {}, o?: EndpointOptions): Promise<UdpDriver> {
  // raw records and peers here do not answer Echo challenges: the defence has its own suite
  const d = create(4, endpointConfig({ maxClientRequests: 8, conSlots: 4, amplificationLimit: 0, ...o }), seed, onBatch);
  open.push(d);
  await d.bind('127.0.0.1', 0, 0);
  return d;
}

/** A small deterministic PRNG (xorshift32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** A request as the server sees it in an RX record. */
interface Rec {
  id: number;
  code: number;
  srvFlags: number;
  bodyId: number;
  bodyLen: number;
  payload: Uint8Array;
  options: { number: number; value: Uint8Array }[];
}

/** A driver run as a tiny server: every REQUEST goes to `handle`, which writes records with
 *  respond(); they are flushed once per batch. */
class TestServer {
  handle: (r: Rec) => void = () => {};
  /** flush results other than 0 (checked by the tests: no exception inside the callback) */
  readonly flushErrors: number[] = [];
  private wpos = 0;
  private constructor(readonly d: UdpDriver) {}

  static async open(create: UdpDriverFactory, o?: EndpointOptions): Promise<TestServer> {
    let s: TestServer | undefined;
    const d = await driver(create, (u32, u8, count, base) => s!.onBatch(u32, u8, count, base), o);
    s = new TestServer(d);
    return s;
  }

  get port(): number {
    return this.d.address().port;
  }

  private onBatch(u32: Uint32Array, u8: Uint8Array, count: number, base: number): void {
    for (let i = 0, r = 0; i < count; i++) {
      const n = u32[r + RX_OPT_COUNT] as number;
      if (u32[r] === EV_REQUEST) {
        const options: Rec['options'] = [];
        for (let k = 0, q = r + RX_OPTS; k < n; k++, q += 3) {
          const off = base + (u32[q + 1] as number);
          options.push({ number: u32[q] as number, value: u8.slice(off, off + (u32[q + 2] as number)) });
        }
        const po = base + (u32[r + RX_PAYLOAD_OFF] as number);
        this.handle({
          id: u32[r + RX_ID] as number,
          code: u32[r + RX_CODE] as number,
          srvFlags: u32[r + RX_SRV_FLAGS] as number,
          bodyId: u32[r + RX_BODY_ID] as number,
          bodyLen: u32[r + RX_BODY_LEN] as number,
          payload: u8.slice(po, po + (u32[r + RX_PAYLOAD_LEN] as number)),
          options,
        });
      }
      r += RX_WORDS + 3 * n;
    }
    if (this.wpos > 0) {
      const rc = this.d.flush(this.wpos, 0);
      if (rc !== 0) this.flushErrors.push(rc);
      this.wpos = 0;
    }
  }

  respond(id: number, code: number, resource = 0): void {
    this.d.txWords.set([TX_RESPOND, id, 0, code, 0, 0, 0, resource], this.wpos);
    this.wpos += TX_RESPOND_WORDS;
  }
}

describe('batch ABI', () => {
  it('has the record sizes the drivers were written for', () => {
    expect(RX_WORDS).toBe(25);
    expect(RX_OPTS).toBe(RX_WORDS);
    expect(TX_RESPOND_WORDS).toBe(8);
    expect(TX_NOTIFY_WORDS).toBe(8);
    expect(TX_AREA_BYTES).toBeGreaterThanOrEqual((1 << 20) + 64 * 1024);
  });
});

describe('endpointConfig', () => {
  it('is tc_ep_config then tc_srv_config, with the core defaults', () => {
    const c = endpointConfig({ maxMessageSize: 1152, maxInProgress: 100 });
    expect(c.length).toBe(CONFIG_WORDS);
    expect(CONFIG_WORDS).toBe(55);
    // the amplification defence: factor, verified endpoints, echo and verified lifetimes; flags
    expect(Array.from(c.subarray(16, 21))).toEqual([3, 4096, 30000, 3600000, 0]);
    expect(endpointConfig({ acceptProxy: true } as object)[20]).toBe(1); // TC_EPF_PROXY (ts/proxy.ts)
    expect(Array.from(endpointConfig({ amplificationLimit: 0, verifiedPeers: 8, echoLifetime: 5000, verifiedLifetime: 9000 }).subarray(16, 20))).toEqual([0, 8, 5000, 9000]);
    const s = Array.from(c.subarray(EP_CONFIG_WORDS));
    // bw1: max_transfers, max_per_peer, max_body, pool_bytes, chunk, max_key, idle, szx, busy_max_age,
    // max_per_host, port_offset, reclaim_idle
    expect(s.slice(0, 12)).toEqual([64, 4, 1 << 20, 4 << 20, 1024, 256, 120000, 6, 2, 16, 1, 10000]);
    // bw2: max_reps, pool_bytes, chunk, max_key, max_opt_bytes, max_opts, szx, lifetime
    expect(s.slice(12, 20)).toEqual([64, 8 << 20, 1024, 256, 256, 16, 6, 60000]);
    // obs: max_observers, per resource, resources, con_every, con_interval, jobs, message size, opts,
    // max_per_host, port_offset, confirm_first
    expect(s.slice(20, 31)).toEqual([16384, 16384, 1024, 20, 86400000, 8, 1152, 16, 64, 1, 1]);
    // max_in_progress and max_message_size follow the ep's; max_resource_keys
    expect(s.slice(31)).toEqual([100, 1152, 256]);
  });

  it('maps the blockwise and observe groups', () => {
    const c = endpointConfig({
      blockwise: {
        maxBodySize: 5000,
        preferredBlockSize: 64,
        maxUploads: 3,
        uploadMemory: 8192,
        uploadTimeout: 777,
        maxRepresentations: 5,
        cacheMemory: 16384,
        representationLifetime: 999,
      },
      observe: { maxObservers: 10, maxObserversPerResource: 7, maxResources: 4, conEvery: 0, conInterval: 5000 },
    });
    const s = Array.from(c.subarray(EP_CONFIG_WORDS));
    expect(s.slice(0, 12)).toEqual([3, 3, 5000, 8192, 1024, 256, 777, 2, 2, 3, 1, 10000]);
    expect(s.slice(12, 20)).toEqual([5, 16384, 1024, 256, 256, 16, 2, 999]);
    expect(s.slice(20, 25)).toEqual([10, 7, 4, 0, 5000]);
    expect(s.slice(28, 31)).toEqual([10, 1, 1]);
    const h = Array.from(endpointConfig({ blockwise: { maxUploadsPerHost: 5, uploadReclaimAfter: 3000 }, observe: { maxObserversPerHost: 9, confirmFirst: false } }).subarray(EP_CONFIG_WORDS));
    expect([h[9], h[11], h[28], h[30]]).toEqual([5, 3000, 9, 0]);
  });

  it('rejects bad group values with RangeError (and a non-object group with TypeError)', () => {
    const bad: EndpointOptions[] = [
      { blockwise: { preferredBlockSize: 48 } },
      { blockwise: { preferredBlockSize: 2048 } },
      { blockwise: { preferredBlockSize: 8 } },
      { blockwise: { maxBodySize: 0 } },
      { blockwise: { maxUploads: 2, maxUploadsPerPeer: 3 } },
      { blockwise: { uploadMemory: 100 } },
      { blockwise: { maxRepresentations: 70000 } },
      { blockwise: { representationLifetime: 0 } },
      { observe: { maxObservers: 4, maxObserversPerResource: 5 } },
      { observe: { maxResources: 0 } },
      { observe: { conEvery: -1 } },
      { observe: { conInterval: 1.5 } },
      { amplificationLimit: -1 },
      { amplificationLimit: 1001 },
      { verifiedPeers: 3 },
      { echoLifetime: 999 },
      { verifiedLifetime: 10 },
      { blockwise: { maxUploadsPerHost: 0 } },
      { blockwise: { uploadReclaimAfter: 0 } },
      { observe: { maxObserversPerHost: 0 } },
    ];
    for (const o of bad) expect(() => endpointConfig(o), JSON.stringify(o)).toThrow(RangeError);
    expect(() => endpointConfig({ observe: 5 as unknown as EndpointOptions['observe'] })).toThrow(TypeError);
  });

  it.skipIf(!hasNative)('is checked by both drivers: a config of the wrong size or with a srv part that disagrees with the ep is refused', () => {
    for (const [, create] of factories) {
      const c = endpointConfig();
      expect(() => create(4, c.subarray(0, EP_CONFIG_WORDS), seed, () => {})).toThrow(RangeError);
      const wrong = c.slice();
      wrong[CONFIG_WORDS - 2] = 1000; // srv max_message_size != ep's
      expect(() => create(4, wrong, seed, () => {})).toThrow(RangeError);
    }
    expect(() => createNative(4, endpointConfig(), new Uint8Array(32), () => {})).toThrow(RangeError);
  });
});

describe.skipIf(!hasNative)('native UDP driver: tx areas from JS', () => {
  it('rejects a flush past the tx areas with a RangeError', async () => {
    const d = await driver(createNative);
    expect(() => d.flush(TX_TABLE_WORDS + 1, 0)).toThrow(RangeError);
    expect(() => d.flush(1, TX_AREA_BYTES + 1)).toThrow(RangeError);
  });

  it('throws a TypeError (no stray write) when JS detached the tx areas', async () => {
    const d = await driver(createNative);
    d.txWords.set([TX_PING, 0, 0, 4, 9, 0x0100007f, 0, 0, 0, 0]);
    // move the record table's memory elsewhere: the driver must not keep writing to it
    const moved = new Uint32Array(structuredClone(d.txWords.buffer, { transfer: [d.txWords.buffer] }));
    expect(d.txWords.length).toBe(0);
    expect(() => d.flush(10, 0)).toThrow(TypeError);
    expect(moved[1]).toBe(0); // the id was not written into the moved table
    expect(d.flush(0, 0)).toBe(0); // an empty flush needs no table
    const movedBytes = structuredClone(d.txBytes.buffer, { transfer: [d.txBytes.buffer] });
    expect(movedBytes.byteLength).toBe(TX_AREA_BYTES);
    expect(() => d.flush(10, 0)).toThrow(TypeError);
  });
});

describe.each(factories)('%s UDP driver: tx records from JS', (_kind, create) => {
  it('reports malformed tables and bad spans as TC_E_INVALID and keeps working', async () => {
    const d = await driver(create);
    const w = d.txWords;
    // unknown record kind
    w[0] = 99;
    expect(d.flush(1, 0)).toBe(E_INVALID);
    // RESPOND whose option count runs past the table; one cut short of its resource word
    w.set([TX_RESPOND, 1, 0, 69, 0, 0, 1000, 0]);
    expect(d.flush(8, 0)).toBe(E_INVALID);
    w.set([TX_RESPOND, 1, 0, 69, 0, 0, 0]);
    expect(d.flush(7, 0)).toBe(E_INVALID);
    // RESPOND whose payload span runs past the byte area: the record fails with rc INVALID
    w.set([TX_RESPOND, 1, 0, 69, 10, 0xffffffff, 0, 0]);
    expect(d.flush(8, 16)).toBe(1);
    expect(w[2]! | 0).toBe(E_INVALID);
    // NOTIFY cut short, with too many options, with a span or a code it cannot send
    w.set([TX_NOTIFY, 1, 0, 0, 69, 0, 0]);
    expect(d.flush(7, 0)).toBe(E_INVALID);
    w.set([TX_NOTIFY, 1, 0, 0, 69, 0, 0, 5]);
    expect(d.flush(8, 0)).toBe(E_INVALID);
    w.set([TX_NOTIFY, 1, 0, 0, 69, 4, 100, 0]);
    expect(d.flush(8, 16)).toBe(1);
    expect(w[2]! | 0).toBe(E_INVALID);
    w.set([TX_NOTIFY, 1, 0, 0, 1, 0, 0, 0]); // 0.01 is a request code
    expect(d.flush(8, 0)).toBe(1);
    expect(w[2]! | 0).toBe(E_INVALID);
    // PING to a bad family fails; to a good address it gets an id
    w.set([TX_PING, 0, 0, 5, 5683, 0, 0, 0, 0, 0]);
    expect(d.flush(10, 0)).toBe(1);
    expect(w[2]! | 0).toBe(E_INVALID);
    w.set([TX_PING, 0, 0, 4, 9, 0x0100007f, 0, 0, 0, 0]);
    expect(d.flush(10, 0)).toBe(0);
    expect(w[1]).toBeGreaterThan(0);
  });

  it('REQUEST with REQ_TOKEN sends the caller\'s token; a bad token word or a token in use is TC_E_INVALID', async () => {
    const d = await driver(create);
    const peer = await RawPeer.open();
    try {
      const w = d.txWords;
      /** A GET to the peer: flags, token word; no payload, no options. */
      const get = (at: number, flags: number, token: number) =>
        w.set([TX_REQUEST, 0, 0, flags, 1, 4, peer.port, 0x0100007f, 0, 0, 0, 0, token, 0, 0, 0], at);
      const tok = [0xa1, 0xb2, 0xc3, 0xd4, 0xe5];
      d.txBytes.set(tok, 8);
      const word = (off: number, len: number) => ((off << REQ_TOKEN_SHIFT) | len) >>> 0;
      // spans outside the byte area of 16 bytes, or longer than 32 bytes: rc INVALID, nothing sent
      for (const bad of [word(12, 5), word(17, 0), word(0, 33), word(0, 63), 0xffffffff]) {
        get(0, REQ_CON | REQ_TOKEN, bad);
        expect(d.flush(TX_REQUEST_WORDS, 16), bad.toString(16)).toBe(1);
        expect(w[2]! | 0).toBe(E_INVALID);
        expect(w[1]).toBe(0);
      }
      // an unknown flag is still refused
      get(0, REQ_CON | 0x200, 4);
      expect(d.flush(TX_REQUEST_WORDS, 0)).toBe(1);
      expect(w[2]! | 0).toBe(E_INVALID);
      expect(d.stats().tx).toBe(0);
      // the caller's token on the wire; kept (Observe-like), it holds the token for the peer
      get(0, REQ_CON | REQ_KEEP | REQ_TOKEN, word(8, 5));
      expect(d.flush(TX_REQUEST_WORDS, 16)).toBe(0);
      const id = w[1]!;
      expect(id).toBeGreaterThan(0);
      const m = await peer.next();
      expect(m.msg).toMatchObject({ type: 'CON', code: '0.01' });
      expect(Array.from(m.msg!.token)).toEqual(tok);
      get(0, REQ_CON | REQ_TOKEN, word(8, 5));
      expect(d.flush(TX_REQUEST_WORDS, 16)).toBe(1);
      expect(w[2]! | 0).toBe(E_INVALID);
      // records run in order: CANCEL the kept request, then the same token again in one flush
      w.fill(0, 0, TX_SMALL_WORDS);
      w.set([TX_CANCEL, id, 0]);
      get(TX_SMALL_WORDS, REQ_TOKEN, word(8, 5)); // NON
      expect(d.flush(TX_SMALL_WORDS + TX_REQUEST_WORDS, 16)).toBe(0);
      expect(w[TX_SMALL_WORDS + 1]).toBeGreaterThan(0);
      const again = await peer.next();
      expect(again.msg).toMatchObject({ type: 'NON', code: '0.01' });
      expect(Array.from(again.msg!.token)).toEqual(tok);
      // an empty caller token; without the flag, word 12 is still the length to generate
      get(0, REQ_TOKEN, word(16, 0));
      get(TX_REQUEST_WORDS, 0, 3);
      expect(d.flush(2 * TX_REQUEST_WORDS, 16)).toBe(0);
      const empty = await peer.next();
      const generated = await peer.next();
      expect(empty.msg!.token.length).toBe(0);
      expect(generated.msg!.token.length).toBe(3);
    } finally {
      await peer.close();
    }
  });

  it('runs RESPOND with its resource word through the pipeline: an unknown exchange is STALE', async () => {
    const d = await driver(create);
    const w = d.txWords;
    w.set([TX_RESPOND, 12345, 0, 69, 0, 2, 0, 7]);
    d.txBytes.set([0x68, 0x69]);
    expect(d.flush(TX_RESPOND_WORDS, 2)).toBe(1);
    expect(w[2]! | 0).toBe(E_STALE);
  });

  it('runs NOTIFY for a resource nobody observes: rc 0, no datagram', async () => {
    const d = await driver(create);
    const before = d.stats();
    const w = d.txWords;
    // 2.05 with Max-Age 60 and a payload, CON, then NON with a payload larger than a block
    d.txBytes.set([60, 0x68, 0x69]);
    w.set([TX_NOTIFY, 42, 0, OBS_CON, 69, 1, 2, 1, 14, 0, 1]);
    w.set([TX_NOTIFY, 43, 0, 0, 69, 0, 3000, 0], 11);
    expect(d.flush(19, 3000)).toBe(0);
    expect(w[2]).toBe(0);
    expect(w[11 + 2]).toBe(0);
    expect(w[1]).toBe(42); // the resource word is left as it was
    const after = d.stats();
    expect(after.notifications).toBe(before.notifications);
    expect(after.sent).toBe(before.sent);
    expect(after.observers).toBe(0);
  });

  it('answers readBody for an unknown body id with a negative core error', async () => {
    const d = await driver(create);
    expect(d.readBody(1, 10)).toBe(E_STALE);
    expect(d.readBody(0xffffffff, 0xffffffff)).toBe(E_STALE);
    await d.close();
    expect(d.readBody(1, 10)).toBe(E_STALE);
  });

  it('survives 2000 random tables (counts, offsets and lengths at their extremes)', async () => {
    const d = await driver(create);
    const next = rng(0x5eed);
    const extremes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, TX_AREA_BYTES, TX_AREA_BYTES - 1];
    let invalid = 0;
    let ran = 0;
    for (let round = 0; round < 2000; round++) {
      const nwords = 1 + (next() % 64);
      for (let i = 0; i < nwords; i++) {
        const r = next();
        d.txWords[i] = r % 3 === 0 ? (extremes[r % extremes.length] as number) : r % 4 === 1 ? 1 + (r % 6) : next();
      }
      const nbytes = next() % 256;
      const rc = d.flush(nwords, nbytes);
      expect(Number.isInteger(rc)).toBe(true);
      if (rc < 0) {
        expect(rc).toBe(E_INVALID);
        invalid++;
      } else {
        expect(rc).toBeLessThanOrEqual(nwords);
        ran++;
      }
    }
    // both outcomes were exercised
    expect(invalid).toBeGreaterThan(0);
    expect(ran).toBeGreaterThan(0);
    await d.close();
    expect(d.flush(1, 0)).toBe(E_STALE);
  });
});

const BLOCK1 = 27;
const OBSERVE = 6;
const URI_PATH = 11;

describe.each(factories)('%s UDP driver: the server pipeline behind the records', (_kind, create) => {
  it('delivers a Block1 upload as one REQUEST with SRVF_BODY; readBody copies it out once', async () => {
    const srv = await TestServer.open(create);
    const peer = await RawPeer.open();
    try {
      const body = new Uint8Array(64 + 10).map((_, i) => (i * 7) & 0xff);
      const got: Rec[] = [];
      let read: Uint8Array | number | undefined;
      let again: Uint8Array | number | undefined;
      srv.handle = (r) => {
        got.push(r);
        read = srv.d.readBody(r.bodyId, r.bodyLen);
        again = srv.d.readBody(r.bodyId, r.bodyLen);
        srv.respond(r.id, 68); // 2.04
      };
      const up = (mid: number, num: number, more: boolean, part: Uint8Array) =>
        peer.send(
          msg('CON', '0.02', mid, [9, 9], [
            { number: URI_PATH, value: 'up' },
            { number: BLOCK1, value: Uint8Array.of((num << 4) | (more ? 8 : 0) | 2) }, // SZX 2: 64 bytes
          ], part),
          srv.port,
        );
      await up(100, 0, true, body.subarray(0, 64));
      const cont = await peer.next();
      expect(cont.msg?.code).toBe('2.31'); // answered by the pipeline, no record
      expect(uintOf(opt(cont.msg, BLOCK1))).toBe(0x0a);
      expect(got.length).toBe(0);
      await up(101, 1, false, body.subarray(64));
      const done = await peer.next();
      expect(done.msg?.code).toBe('2.04');
      expect(uintOf(opt(done.msg, BLOCK1))).toBe(0x12); // NUM 1, SZX 2: Block1 added by the pipeline
      expect(got.length).toBe(1);
      const r = got[0]!;
      expect(r.srvFlags & SRVF_BODY).toBe(SRVF_BODY);
      expect(r.bodyId).toBeGreaterThan(0);
      expect(r.bodyLen).toBe(body.length);
      expect(Array.from(r.payload)).toEqual(Array.from(body.subarray(64))); // the last block only
      expect(read).toBeInstanceOf(Uint8Array);
      expect(Array.from(read as Uint8Array)).toEqual(Array.from(body));
      expect(again).toBe(E_STALE);
      expect(srv.flushErrors).toEqual([]);
      const st = srv.d.stats();
      expect(st.uploadsDone).toBe(1);
      expect(st.blocksIn).toBe(1);
      expect(st.uploads).toBe(0);
    } finally {
      await peer.close();
    }
  });

  it('registers observers through RESPOND resource and notifies 10,000 of them in one flush', async () => {
    const N = 10_000;
    // one raw peer (one host) holds all 10,000, and they are notified NON at once
    const srv = await TestServer.open(create, { observe: { maxObserversPerHost: N, confirmFirst: false } });
    const peer = await RawPeer.open();
    try {
      let flagged = 0;
      srv.handle = (r) => {
        if ((r.srvFlags & SRVF_OBSERVE) !== 0) flagged++;
        srv.respond(r.id, 69, 1); // 2.05, resource 1
      };
      const answered = new Set<number>();
      peer.onMessage = (m) => {
        const t = m.msg?.token;
        if (t !== undefined && t.length === 4 && m.msg?.code === '2.05') answered.add(new DataView(t.buffer, t.byteOffset, 4).getUint32(0));
        return true;
      };
      const register = (i: number) =>
        peer.send(
          msg('NON', '0.01', i & 0xffff, [i >>> 24, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff], [
            { number: OBSERVE, value: new Uint8Array(0) },
            { number: URI_PATH, value: 'obs' },
          ]),
          srv.port,
        );
      // in windows, so that no socket buffer overflows; NON requests lost are sent again
      const WINDOW = 200;
      for (let start = 0; start < N; start += WINDOW) {
        const end = Math.min(N, start + WINDOW);
        for (let attempt = 0; attempt < 5; attempt++) {
          const missing: number[] = [];
          for (let i = start; i < end; i++) if (!answered.has(i)) missing.push(i);
          if (missing.length === 0) break;
          await Promise.all(missing.map(register));
          const t0 = Date.now();
          while (Date.now() - t0 < 1000 && missing.some((i) => !answered.has(i))) await sleep(2);
        }
      }
      expect(answered.size).toBe(N);
      expect(flagged).toBeGreaterThanOrEqual(N);
      expect(srv.flushErrors).toEqual([]);
      expect(srv.d.stats().observers).toBe(N);

      const before = srv.d.stats();
      srv.d.txBytes.set([0x6e, 0x65, 0x77]); // "new"
      srv.d.txWords.set([TX_NOTIFY, 1, 0, 0, 69, 0, 3, 0]);
      expect(srv.d.flush(TX_NOTIFY_WORDS, 3)).toBe(0);
      expect(srv.d.txWords[2]).toBe(0);
      const after = srv.d.stats();
      expect(after.notifications - before.notifications).toBe(N);
      expect(after.sent - before.sent).toBe(N);
      // the peer sees them arrive (its socket buffer may drop some of a burst this size)
      let notified = 0;
      peer.onMessage = (m) => {
        if (m.msg?.code === '2.05' && opt(m.msg, OBSERVE) !== undefined && m.msg.payload.length === 3) notified++;
        return true;
      };
      await within(
        (async () => {
          while (notified === 0) await sleep(5);
        })(),
        2000,
        'the first notification',
      );
      expect(notified).toBeGreaterThan(0);
    } finally {
      await peer.close();
    }
  }, 60_000);
});

describe.skipIf(!hasNative)('native UDP driver: ICMP port unreachable', () => {
  // IP_RECVERR is Linux's; elsewhere the native driver does not learn of refused datagrams
  it.runIf(process.platform === 'linux')('a request to a closed port fails at once: an EV_FAILED record with E_UNREACHABLE for its id (Linux)', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const port = s.address().port;
        s.close(() => resolve(port));
      });
    });
    let found: (() => void) | undefined;
    const seen = new Promise<void>((resolve) => (found = resolve));
    const records: number[][] = [];
    const d = await driver(createNative, (u32, _u8, count) => {
      let r = 0;
      for (let i = 0; i < count; i++) {
        records.push(Array.from(u32.subarray(r, r + RX_WORDS)));
        if (u32[r + RX_KIND] === EV_FAILED) found!();
        r += RX_WORDS + 3 * (u32[r + RX_OPT_COUNT] as number);
      }
    });
    d.txWords.set([TX_REQUEST, 0, 0, REQ_CON, 1, 4, closed, 0x0100007f, 0, 0, 0, 0, 4, 0, 0, 0]);
    expect(d.flush(TX_REQUEST_WORDS, 0)).toBe(0);
    const id = d.txWords[1] as number;
    expect(id).not.toBe(0);
    await within(seen, 5000, 'the EV_FAILED record');
    const rec = records.find((w) => w[RX_KIND] === EV_FAILED)!;
    expect(rec[RX_ID]).toBe(id);
    expect(rec[RX_STATUS]! | 0).toBe(E_UNREACHABLE);
    expect(d.stats().sendErrors).toBe(0);
    expect(d.stats().clientRequests).toBe(0);
  });
});

describe('WASM glue: encode sources from JS', () => {
  it('refuses a payload span past the byte area with TC_E_INVALID (tcw_encode_with)', () => {
    const { exports: ex, memory, tablePtr, bytesPtr } = raw;
    const encodeWith = ex.tcw_encode_with as (tr: number, t: number, w: number, b: number, len: number, out: number) => number;
    const table = new Uint32Array(memory.buffer, tablePtr, 9 + 3 * 4);
    table.fill(0);
    table[1] = 69;
    table[2] = 1;
    table[6] = 16;
    table[7] = 4;
    expect(encodeWith(0, tablePtr, table.length, bytesPtr, 256, 128)).toBeGreaterThan(4);
    table[6] = 4096; // [4096, +64) of a 256-byte area: other memory, before the check
    table[7] = 64;
    expect(encodeWith(0, tablePtr, table.length, bytesPtr, 256, 128)).toBe(E_INVALID);
    table[6] = 0;
    table[7] = 0;
    table[5] = 1;
    table.set([11, 250, 10], 9);
    expect(encodeWith(0, tablePtr, table.length, bytesPtr, 256, 128)).toBe(E_INVALID);
  });
});

describe.skipIf(!hasNative)('native addon: encode sources from JS', () => {
  const enc = addon as unknown as { encodeWith(t: number, table: Uint32Array, buf: Uint8Array, out: number): number };
  it('refuses token / payload / option spans past the byte area with TC_E_INVALID', () => {
    const buf = new Uint8Array(256);
    const table = new Uint32Array(9 + 3 * 4);
    const base = () => {
      table.fill(0);
      table[0] = 0; // CON
      table[1] = 69; // 2.05
      table[2] = 1; // message id
    };
    base();
    table[6] = 16; // payload [16, +4): inside
    table[7] = 4;
    expect(enc.encodeWith(0, table, buf, 128)).toBeGreaterThan(4);
    base();
    table[6] = 4096; // payload [4096, +64): past the end (was a heap over-read)
    table[7] = 64;
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    base();
    table[6] = 250; // payload [250, +0xffffffff): the sum wraps
    table[7] = 0xffffffff;
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    base();
    table[3] = 255; // token [255, +2)
    table[4] = 2;
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    base();
    table[5] = 1; // one option, Uri-Path value [200, +100)
    table.set([11, 200, 100], 9);
    expect(enc.encodeWith(0, table, buf, 128)).toBe(E_INVALID);
    table.set([11, 200, 5], 9); // the same option inside the area
    expect(enc.encodeWith(0, table, buf, 128)).toBeGreaterThan(5);
  });
});
