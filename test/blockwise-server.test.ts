/**
 * Block-wise transfer (RFC 7959) and Observe (RFC 7641) on the server, both drivers, over
 * loopback with raw dgram peers (messages built with the codec), so that loss, reordering,
 * duplicates and out-of-bounds requests can be sent on purpose. Every wait is bounded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IncomingRequest } from '../ts/incoming';
import { Router } from '../ts/router';
import { createServer, type CoapServer, type ResponseInit, type ServerOptions } from '../ts/server';
import { RawPeer, Tracked, blockOf, blockValue, msg, opt, pathOpts, sleep, udpBackends, uintBytes, uintOf, type RawMessage } from './support/udp';

type Res = ResponseInit | Promise<ResponseInit>;

const OBSERVE = 6;
const ETAG = 4;
const BLOCK2 = 23;
const BLOCK1 = 27;
const SIZE2 = 28;
const SIZE1 = 60;

const pattern = (n: number, seed: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 31 + seed) % 251);

describe.each(udpBackends)('block-wise and Observe on the server (%s)', (backend) => {
  const servers = new Tracked<CoapServer>();
  const peers = new Tracked<RawPeer>();
  afterEach(async () => {
    await servers.closeAll();
    await peers.closeAll();
  });

  async function serve(router: Router<IncomingRequest, Res>, opts: ServerOptions = {}) {
    // raw peers here do not answer Echo challenges: the amplification defence has its own suite
    const server = servers.add(createServer(router, { backend, amplificationLimit: 0, ...opts }));
    await server.listen({ port: 0, host: '127.0.0.1' });
    return { server, port: server.address().port };
  }
  const raw = async (): Promise<RawPeer> => peers.add(await RawPeer.open('127.0.0.1'));
  /** Sends a CON and returns the piggybacked answer. */
  async function ask(p: RawPeer, port: number, m: ReturnType<typeof msg>): Promise<RawMessage> {
    await p.send(m, port);
    const r = await p.next(2000);
    expect(r.msg?.type).toBe('ACK');
    expect(r.msg?.messageId).toBe(m.messageId);
    return r;
  }

  it('Block1: reassembles an upload with duplicates and a gap (4.08), the handler sees one request', async () => {
    const seen: Uint8Array[] = [];
    const router = new Router<IncomingRequest, Res>();
    router.put('/up', (req) => {
      seen.push(new Uint8Array(req.payload));
      return { code: '2.04', payload: `got ${req.payload.length}` };
    });
    const { port } = await serve(router);
    const p = await raw();
    const body = pattern(64 * 5 + 10, 1); // 6 blocks of 64 bytes, the last 10 bytes
    const put = (mid: number, num: number, tok = 7) => {
      const last = (num + 1) * 64 >= body.length;
      return msg('CON', '0.03', mid, [tok], [...pathOpts('/up'), { number: BLOCK1, value: blockValue(num, !last, 64) }], body.subarray(num * 64, (num + 1) * 64));
    };
    let r = await ask(p, port, put(1, 0));
    expect(r.msg?.code).toBe('2.31');
    expect(blockOf(r, BLOCK1)).toEqual({ num: 0, more: true, size: 64 });
    r = await ask(p, port, put(2, 1));
    expect(r.msg?.code).toBe('2.31');
    // The same block again under a new Message ID: answered as before, stored once.
    r = await ask(p, port, put(3, 1));
    expect(r.msg?.code).toBe('2.31');
    expect(blockOf(r, BLOCK1)?.num).toBe(1);
    // A gap: block 3 before block 2.
    r = await ask(p, port, put(4, 3));
    expect(r.msg?.code).toBe('4.08');
    for (let num = 2, mid = 5; num <= 5; num++, mid++) {
      r = await ask(p, port, put(mid, num));
      expect(r.msg?.code).toBe(num < 5 ? '2.31' : '2.04');
    }
    // The final response carries Block1 of the last block (M = 0).
    expect(blockOf(r, BLOCK1)).toEqual({ num: 5, more: false, size: 64 });
    expect(new TextDecoder().decode(r.msg?.payload)).toBe(`got ${body.length}`);
    expect(seen.length).toBe(1);
    expect(Buffer.from(seen[0] as Uint8Array).equals(Buffer.from(body))).toBe(true);
    // Lost: a block of an upload the server does not know.
    r = await ask(p, port, put(20, 2, 9));
    expect(r.msg?.code).toBe('4.08');
  });

  it('Block1: 4.13 with Size1 above blockwise.maxBodySize, up front (Size1) and on the way', async () => {
    let calls = 0;
    const router = new Router<IncomingRequest, Res>();
    router.put('/up', () => (calls++, { code: '2.04' }));
    const { port } = await serve(router, { blockwise: { maxBodySize: 256 } });
    const p = await raw();
    let r = await ask(p, port, msg('CON', '0.03', 1, [1], [...pathOpts('/up'), { number: BLOCK1, value: blockValue(0, true, 64) }, { number: SIZE1, value: uintBytes(1000) }], pattern(64, 0)));
    expect(r.msg?.code).toBe('4.13');
    expect(uintOf(opt(r.msg, SIZE1))).toBe(256);
    for (let num = 0; num < 4; num++) {
      r = await ask(p, port, msg('CON', '0.03', 10 + num, [2], [...pathOpts('/up'), { number: BLOCK1, value: blockValue(num, true, 64) }], pattern(64, num)));
      expect(r.msg?.code).toBe('2.31');
    }
    r = await ask(p, port, msg('CON', '0.03', 20, [2], [...pathOpts('/up'), { number: BLOCK1, value: blockValue(4, false, 64) }], pattern(1, 0)));
    expect(r.msg?.code).toBe('4.13');
    expect(uintOf(opt(r.msg, SIZE1))).toBe(256);
    expect(calls).toBe(0);
  });

  it('Block2: a large response goes block by block; later blocks come from the cache, not the handler', async () => {
    let calls = 0;
    const big = pattern(5000, 3);
    const router = new Router<IncomingRequest, Res>();
    router.get('/big', () => (calls++, { code: '2.05', payload: big, contentFormat: 42 }));
    const { port, server } = await serve(router);
    for (const size of [16, 64, 256, 1024]) {
      const p = await raw();
      const parts: Uint8Array[] = [];
      let etag: string | undefined;
      let mid = 100;
      for (let num = 0; ; num++) {
        const r = await ask(p, port, msg('CON', '0.01', mid++, [5, num & 0xff], [...pathOpts('/big'), { number: BLOCK2, value: blockValue(num, false, size) }]));
        expect(r.msg?.code).toBe('2.05');
        const b = blockOf(r, BLOCK2);
        expect(b?.num).toBe(num);
        expect(b?.size).toBe(size);
        if (num === 0) expect(uintOf(opt(r.msg, SIZE2))).toBe(big.length);
        const e = Buffer.from(opt(r.msg, ETAG) ?? []).toString('hex');
        expect(e.length).toBeGreaterThan(0);
        if (etag === undefined) etag = e;
        expect(e).toBe(etag);
        expect(uintOf(opt(r.msg, 12))).toBe(42);
        parts.push(r.msg?.payload as Uint8Array);
        if (!b?.more) break;
        expect(r.msg?.payload.length).toBe(size);
      }
      expect(Buffer.concat(parts).equals(Buffer.from(big))).toBe(true);
    }
    // Block 0 runs the handler (a fresh representation), later blocks never do.
    expect(calls).toBe(4);
    expect(server.stats()?.blocksOut).toBeGreaterThan(300);
  });

  it('Block2 without an early Block2 option: the server picks the preferred size', async () => {
    const big = pattern(3000, 4);
    const router = new Router<IncomingRequest, Res>();
    router.get('/big', () => ({ code: '2.05', payload: big }));
    const { port } = await serve(router, { blockwise: { preferredBlockSize: 512 } });
    const p = await raw();
    const r = await ask(p, port, msg('CON', '0.01', 1, [1], pathOpts('/big')));
    expect(blockOf(r, BLOCK2)).toEqual({ num: 0, more: true, size: 512 });
    expect(r.msg?.payload.length).toBe(512);
  });

  it('Observe: registration, notifications with rising sequence numbers, deregistration', async () => {
    const router = new Router<IncomingRequest, Res>();
    let n = 0;
    router.get('/obs', () => ({ code: '2.05', payload: `v${n}` }), { obs: true });
    router.get('/plain', () => ({ code: '2.05', payload: 'x' }));
    const { port, server } = await serve(router);
    const res = server.resource('/obs');
    const p = await raw();
    let r = await ask(p, port, msg('CON', '0.01', 1, [0xaa, 0xbb], [{ number: OBSERVE, value: uintBytes(0) }, ...pathOpts('/obs')]));
    expect(r.msg?.code).toBe('2.05');
    const first = uintOf(opt(r.msg, OBSERVE));
    expect(first).toBeDefined();
    // A route without obs answers without Observe.
    r = await ask(p, port, msg('CON', '0.01', 2, [0xcc], [{ number: OBSERVE, value: uintBytes(0) }, ...pathOpts('/plain')]));
    expect(opt(r.msg, OBSERVE)).toBeUndefined();
    expect(server.stats()?.observers).toBe(1);
    let last = first as number;
    for (let i = 0; i < 3; i++) {
      n++;
      res.notify(); // re-runs the handler
      const m = await p.next(2000);
      expect([...(m.msg?.token ?? [])]).toEqual([0xaa, 0xbb]);
      expect(new TextDecoder().decode(m.msg?.payload)).toBe(`v${n}`);
      const seq = uintOf(opt(m.msg, OBSERVE)) as number;
      expect(seq).toBeGreaterThan(last);
      last = seq;
      if (m.msg?.type === 'CON') await p.send(msg('ACK', '0.00', m.msg.messageId as number), port);
    }
    res.notify({ code: '2.05', payload: 'explicit', maxAge: 5 });
    const m = await p.next(2000);
    expect(new TextDecoder().decode(m.msg?.payload)).toBe('explicit');
    expect(uintOf(opt(m.msg, 14))).toBe(5);
    // Deregister (GET with Observe 1): answered as a plain GET, no more notifications.
    r = await ask(p, port, msg('CON', '0.01', 3, [0xaa, 0xbb], [{ number: OBSERVE, value: uintBytes(1) }, ...pathOpts('/obs')]));
    expect(r.msg?.code).toBe('2.05');
    expect(opt(r.msg, OBSERVE)).toBeUndefined();
    expect(server.stats()?.observers).toBe(0);
    res.notify('nobody');
    expect(await p.drain(200)).toEqual([]);
  });

  it('Observe: an observer that answers a notification with RST is removed', async () => {
    const router = new Router<IncomingRequest, Res>();
    router.get('/obs', () => ({ code: '2.05', payload: 'x' }), { obs: true });
    const { port, server } = await serve(router);
    const a = await raw();
    const b = await raw();
    await ask(a, port, msg('CON', '0.01', 1, [1], [{ number: OBSERVE, value: uintBytes(0) }, ...pathOpts('/obs')]));
    await ask(b, port, msg('CON', '0.01', 1, [2], [{ number: OBSERVE, value: uintBytes(0) }, ...pathOpts('/obs')]));
    expect(server.stats()?.observers).toBe(2);
    server.resource('/obs').notify('one');
    const ma = await a.next(2000);
    const mb = await b.next(2000);
    await a.send(msg('RST', '0.00', ma.msg?.messageId as number), port);
    if (mb.msg?.type === 'CON') await b.send(msg('ACK', '0.00', mb.msg.messageId as number), port);
    for (let i = 0; i < 50 && server.stats()?.observers !== 1; i++) await sleep(20);
    expect(server.stats()?.observers).toBe(1);
    server.resource('/obs').notify('two');
    expect(new TextDecoder().decode((await b.next(2000)).msg?.payload)).toBe('two');
    expect(await a.drain(200)).toEqual([]);
  });

  it('Observe: a notification larger than a block carries block 0; the rest comes from the cache', async () => {
    const router = new Router<IncomingRequest, Res>();
    router.get('/obs', () => ({ code: '2.05', payload: 'small' }), { obs: true });
    const { port, server } = await serve(router);
    const p = await raw();
    await ask(p, port, msg('CON', '0.01', 1, [9], [{ number: OBSERVE, value: uintBytes(0) }, ...pathOpts('/obs')]));
    const big = pattern(2500, 5);
    server.resource('/obs').notify({ code: '2.05', payload: big });
    const m = await p.next(2000);
    expect(opt(m.msg, OBSERVE)).toBeDefined();
    expect(blockOf(m, BLOCK2)).toEqual({ num: 0, more: true, size: 1024 });
    const etag = Buffer.from(opt(m.msg, ETAG) ?? []).toString('hex');
    if (m.msg?.type === 'CON') await p.send(msg('ACK', '0.00', m.msg.messageId as number), port);
    const parts = [m.msg?.payload as Uint8Array];
    for (let num = 1; ; num++) {
      const r = await ask(p, port, msg('CON', '0.01', 10 + num, [10 + num], [...pathOpts('/obs'), { number: BLOCK2, value: blockValue(num, false, 1024) }]));
      expect(Buffer.from(opt(r.msg, ETAG) ?? []).toString('hex')).toBe(etag);
      parts.push(r.msg?.payload as Uint8Array);
      if (!blockOf(r, BLOCK2)?.more) break;
    }
    expect(Buffer.concat(parts).equals(Buffer.from(big))).toBe(true);
  });

  it('Observe: observe.maxObservers bounds registrations (the rest are served without Observe)', async () => {
    const router = new Router<IncomingRequest, Res>();
    router.get('/obs', () => ({ code: '2.05', payload: 'x' }), { obs: true });
    const { port, server } = await serve(router, { observe: { maxObservers: 2 } });
    const p = await raw();
    const got: (number | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await ask(p, port, msg('CON', '0.01', 1 + i, [i + 1], [{ number: OBSERVE, value: uintBytes(0) }, ...pathOpts('/obs')]));
      expect(r.msg?.code).toBe('2.05');
      got.push(uintOf(opt(r.msg, OBSERVE)));
    }
    expect(got.filter((x) => x !== undefined).length).toBe(2);
    expect(got[2]).toBeUndefined();
    expect(server.stats()?.observers).toBe(2);
  });
});
