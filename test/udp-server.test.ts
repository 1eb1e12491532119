/**
 * The CoAP/UDP server on both drivers (native addon, WebAssembly + dgram), over loopback:
 * our client for round trips, raw dgram peers (messages built with the codec) for
 * everything the client would not send. Every wait is bounded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../ts/client';
import { CoapNetworkError } from '../ts/errors';
import type { IncomingRequest } from '../ts/incoming';
import { parseLinks } from '../ts/linkformat';
import { Router } from '../ts/router';
import { createServer, type CoapServer, type ResponseInit, type ServerOptions } from '../ts/server';
import { RawPeer, fromUtf8, msg, opt, pathOpts, sleep, udpBackends, uintOf, utf8, within } from './support/udp';

type Handler = (req: IncomingRequest) => ResponseInit | Promise<ResponseInit>;

describe.each(udpBackends)('server (%s)', (backend) => {
  const servers: CoapServer[] = [];
  const peers: RawPeer[] = [];
  let agent: Agent;

  beforeAll(() => {
    agent = new Agent({ backend, nstart: 16 });
  });
  afterAll(async () => {
    await agent.close();
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });

  async function serve(h: Handler | Router<IncomingRequest, ResponseInit | Promise<ResponseInit>>, opts: ServerOptions = {}, host = '127.0.0.1') {
    const s = createServer(h, { backend, ...opts });
    servers.push(s);
    await s.listen({ port: 0, host });
    expect(s.backend).toBe(backend);
    const port = s.address().port;
    return { server: s, port, url: `coap://${host.includes(':') ? `[${host}]` : host}:${port}` };
  }

  async function raw(host = '127.0.0.1'): Promise<RawPeer> {
    const p = await RawPeer.open(host);
    peers.push(p);
    return p;
  }

  it('answers every method, with payloads, query and options', async () => {
    const seen: string[] = [];
    const { url } = await serve((req) => {
      seen.push(req.method);
      return {
        code: req.method === 'POST' ? '2.01' : req.method === 'DELETE' ? '2.02' : '2.05',
        payload: JSON.stringify({ m: req.method, path: req.path, q: req.query, body: req.text(), cf: req.contentFormat, acc: req.accept }),
        contentFormat: 'application/json',
      };
    });
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH'] as const) {
      const res = await within(
        agent.request(`${url}/a/b%2Fc/d?x=1&y=%C3%A9`, { method, payload: `body-${method}`, contentFormat: 0, accept: 50 }),
        3000,
      );
      expect(res.code).toBe(method === 'POST' ? '2.01' : method === 'DELETE' ? '2.02' : '2.05');
      expect(res.contentFormat).toBe(50);
      expect(res.json()).toEqual({ m: method, path: '/a/b%2Fc/d', q: ['x=1', 'y=é'], body: `body-${method}`, cf: 0, acc: 50 });
    }
    expect(seen).toEqual(['GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH']);
  });

  it('carries binary and empty payloads, response options and custom options', async () => {
    const big = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
    const { url } = await serve((req) => {
      if (req.path === '/empty') return { code: '2.04' };
      const custom = req.option(65000);
      return {
        code: '2.05',
        payload: req.payload,
        maxAge: 30,
        etag: Uint8Array.of(1, 2, 3, 4),
        location: '/made/here?v=2',
        options: [
          { number: 65002, value: custom ?? new Uint8Array(0) },
          { number: 65004, value: 'text' },
          { number: 65006, value: 0x10203 },
        ],
      };
    });
    const res = await agent.request(`${url}/bin`, { method: 'PUT', payload: big, options: [{ number: 65000, value: Uint8Array.of(9, 8, 7) }] });
    expect(res.code).toBe('2.05');
    expect(Array.from(res.payload)).toEqual(Array.from(big));
    expect(res.maxAge).toBe(30);
    expect(Array.from(res.etag ?? [])).toEqual([1, 2, 3, 4]);
    const o = (n: number) => res.options.filter((x) => x.number === n).map((x) => Array.from(x.value));
    expect(o(8)).toEqual([Array.from(utf8.encode('made')), Array.from(utf8.encode('here'))]);
    expect(o(20)).toEqual([Array.from(utf8.encode('v=2'))]);
    expect(o(65002)).toEqual([[9, 8, 7]]);
    expect(o(65004)).toEqual([Array.from(utf8.encode('text'))]);
    expect(o(65006)).toEqual([[1, 2, 3]]);
    // options come back in ascending order
    const nums = res.options.map((x) => x.number);
    expect(nums).toEqual([...nums].sort((a, b) => a - b));
    const empty = await agent.request(`${url}/empty`, { method: 'POST' });
    expect(empty.code).toBe('2.04');
    expect(empty.payload.length).toBe(0);
    expect(empty.text()).toBe('');
  });

  it('answers a NON request with a NON response, and the client can send NON', async () => {
    const { port, url } = await serve((req) => ({ code: '2.05', payload: req.confirmable ? 'con' : 'non' }));
    const p = await raw();
    await p.send(msg('NON', '0.01', 0x1234, [1, 2, 3, 4], pathOpts('/x')), port);
    const r = await p.next();
    expect(r.msg).toMatchObject({ type: 'NON', code: '2.05' });
    expect(Array.from(r.msg!.token)).toEqual([1, 2, 3, 4]);
    expect(fromUtf8(r.msg!.payload)).toBe('non');
    const res = await agent.request(`${url}/x`, { confirmable: false });
    expect(res.type).toBe('NON');
    expect(res.text()).toBe('non');
  });

  it('sends an empty ACK then a CON separate response when the handler is slow; the client ACKs it', async () => {
    const { server, port, url } = await serve(
      async (req) => {
        await sleep(150);
        return { code: '2.05', payload: `late ${req.path}` };
      },
      { separateResponseDelay: 30, ackTimeout: 100 },
    );
    const p = await raw();
    await p.send(msg('CON', '0.01', 0x4242, [7, 7], pathOpts('/slow')), port);
    const ack = await p.next(1000);
    expect(ack.msg).toMatchObject({ type: 'ACK', code: '0.00', messageId: 0x4242 });
    const sep = await p.next(1000);
    expect(sep.msg).toMatchObject({ type: 'CON', code: '2.05' });
    expect(Array.from(sep.msg!.token)).toEqual([7, 7]);
    expect(fromUtf8(sep.msg!.payload)).toBe('late /slow');
    await p.send(msg('ACK', '0.00', sep.msg!.messageId!), port);
    // acknowledged: no retransmission follows (ackTimeout is 100 ms)
    expect(await p.drain(400)).toEqual([]);
    expect(server.stats()!.retransmits).toBe(0);
    // our client gets it too, and acknowledges it (no retransmits either)
    const before = server.stats()!.retransmits;
    const res = await within(agent.request(`${url}/slow`), 3000);
    expect(res.code).toBe('2.05');
    expect(res.confirmable).toBe(true);
    expect(res.type).toBe('CON');
    await sleep(300);
    expect(server.stats()!.retransmits).toBe(before);
  });

  it('retransmits an unacknowledged separate response', async () => {
    const { server, port } = await serve(
      async () => {
        await sleep(60);
        return { code: '2.05', payload: 'again' };
      },
      // the defence off: toward an unverified endpoint only the transmissions that fit 3x the
      // request are sent (test/hardening.test.ts)
      { separateResponseDelay: 20, ackTimeout: 60, maxRetransmit: 2, amplificationLimit: 0 },
    );
    const p = await raw();
    await p.send(msg('CON', '0.01', 0x99, [1], pathOpts('/r')), port);
    const got = await p.drain(1200);
    const cons = got.filter((m) => m.msg?.type === 'CON');
    expect(got[0]?.msg).toMatchObject({ type: 'ACK', code: '0.00' });
    expect(cons.length).toBe(3); // first + MAX_RETRANSMIT
    expect(new Set(cons.map((m) => m.msg!.messageId)).size).toBe(1);
    expect(server.stats()!.retransmits).toBe(2);
  });

  it('rejects malformed datagrams (RST for CON, nothing for NON) and keeps serving', async () => {
    const { server, port, url } = await serve(() => ({ code: '2.05', payload: 'ok' }));
    const p = await raw();
    // CON GET, MID 0x0102, option delta 15 (reserved) -> format error
    await p.sendBytes(Uint8Array.of(0x40, 0x01, 0x01, 0x02, 0xf1, 0x00), port);
    const rst = await p.next();
    expect(rst.msg).toMatchObject({ type: 'RST', code: '0.00', messageId: 0x0102 });
    // NON with a truncated option: ignored
    await p.sendBytes(Uint8Array.of(0x50, 0x01, 0x01, 0x03, 0xb5, 0x61), port);
    // garbage shorter than a header, and a version 2 message: ignored
    await p.sendBytes(Uint8Array.of(0x40), port);
    await p.sendBytes(Uint8Array.of(0x80, 0x01, 0, 1), port);
    expect(await p.drain(200)).toEqual([]);
    expect(server.stats()!.formatErrors).toBeGreaterThanOrEqual(3);
    const res = await agent.request(`${url}/still`);
    expect(res.text()).toBe('ok');
    // a CoAP ping (Empty CON) gets RST
    await p.send(msg('CON', '0.00', 0x77), port);
    expect((await p.next()).msg).toMatchObject({ type: 'RST', messageId: 0x77 });
  });

  it('calls the handler once for a flood of duplicate CONs and answers each with the cached response', async () => {
    let calls = 0;
    const { server, port } = await serve(async (req) => {
      calls++;
      await sleep(50);
      return { code: '2.05', payload: `n=${calls} ${req.path}` };
    });
    const p = await raw();
    const m = msg('CON', '0.01', 0xbeef, [0xaa, 0xbb], pathOpts('/dup'));
    // duplicates while the request is in progress: ignored, handler not called again
    for (let i = 0; i < 20; i++) await p.send(m, port);
    const first = await p.next(1000);
    expect(first.msg).toMatchObject({ type: 'ACK', code: '2.05', messageId: 0xbeef });
    expect(fromUtf8(first.msg!.payload)).toBe('n=1 /dup');
    expect(await p.drain(100)).toEqual([]);
    // duplicates after the response: each gets the same bytes
    for (let i = 0; i < 50; i++) await p.send(m, port);
    const replays: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) replays.push((await p.next(1000)).bytes);
    for (const r of replays) expect(Array.from(r)).toEqual(Array.from(first.bytes));
    expect(calls).toBe(1);
    const st = server.stats()!;
    expect(st.duplicates).toBe(69);
    expect(st.replays).toBe(50);
  });

  it('answers an unknown critical option with 4.02 and an unknown method with 4.05', async () => {
    let calls = 0;
    const { port } = await serve(() => {
      calls++;
      return { code: '2.05' };
    });
    const p = await raw();
    await p.send(msg('CON', '0.01', 1, [1], [...pathOpts('/x'), { number: 65001, value: 'x' }]), port);
    const r = await p.next();
    expect(r.msg).toMatchObject({ type: 'ACK', code: '4.02', messageId: 1 });
    await p.send(msg('CON', '0.08', 2, [2], pathOpts('/x')), port);
    expect((await p.next()).msg).toMatchObject({ type: 'ACK', code: '4.05', messageId: 2 });
    // an unknown elective option is fine
    await p.send(msg('CON', '0.01', 3, [3], [...pathOpts('/x'), { number: 65000, value: 'x' }]), port);
    expect((await p.next()).msg).toMatchObject({ type: 'ACK', code: '2.05', messageId: 3 });
    expect(calls).toBe(1);
  });

  it('answers 5.03 with Max-Age beyond maxInProgress', async () => {
    const release: (() => void)[] = [];
    const { server, port } = await serve(
      () =>
        new Promise<ResponseInit>((resolve) => {
          release.push(() => resolve({ code: '2.05', payload: 'done' }));
        }),
      { maxInProgress: 2, overloadMaxAge: 7 },
    );
    const p = await raw();
    for (let i = 0; i < 3; i++) await p.send(msg('CON', '0.01', 10 + i, [i], pathOpts('/busy')), port);
    const busy = await p.next();
    expect(busy.msg).toMatchObject({ type: 'ACK', code: '5.03', messageId: 12 });
    expect(uintOf(opt(busy.msg, 14))).toBe(7);
    await sleep(50);
    expect(release.length).toBe(2);
    expect(server.stats()!.inProgress).toBe(2);
    expect(server.stats()!.overloads).toBe(1);
    release.forEach((f) => f());
    const a = await p.next();
    const b = await p.next();
    expect([a.msg!.messageId, b.msg!.messageId].sort()).toEqual([10, 11]);
    expect(server.stats()!.inProgress).toBe(0);
  });

  it('turns a thrown error or a rejection into 5.00, with the message when exposeErrors is set', async () => {
    const errors: unknown[] = [];
    const { url } = await serve(
      (req) => {
        if (req.path === '/sync') throw new Error('boom sync');
        if (req.path === '/bad') return { code: '9.99' } as ResponseInit;
        if (req.path === '/none') return undefined as unknown as ResponseInit;
        return Promise.reject(new Error('boom async'));
      },
      // The diagnostic 5.00 of /bad is over 3x the request: with the amplification defence on,
      // the agent's first such response is a 4.01 + Echo and its repeated request runs the
      // handler again (a second INVALID_CODE). That path has its own tests (hardening.test.ts);
      // here each mistake is reported once per request.
      { onError: (e) => errors.push(e), exposeErrors: true, amplificationLimit: 0 },
    );
    const s = await agent.request(`${url}/sync`);
    expect(s.code).toBe('5.00');
    expect(s.text()).toBe('boom sync');
    const a = await agent.request(`${url}/async`);
    expect(a.code).toBe('5.00');
    expect(a.text()).toBe('boom async');
    const bad = await agent.request(`${url}/bad`);
    expect(bad.code).toBe('5.00');
    expect(bad.text()).toContain('invalid response code');
    const none = await agent.request(`${url}/none`);
    expect(none.code).toBe('5.00');
    expect(errors.map((e) => (e as { code?: string }).code ?? (e as Error).message)).toEqual(['boom sync', 'boom async', 'INVALID_CODE', 'NO_RESPONSE']);
  });

  it('serves a response larger than maxMessageSize block-wise; 5.00 when even the Block2 cache cannot hold it', async () => {
    const errors: unknown[] = [];
    const { url } = await serve(
      (req) => ({ code: '2.05', payload: (req.path === '/big' ? 'x' : 'y').repeat(req.path === '/big' ? 400 : 20000) }),
      { maxMessageSize: 256, blockwise: { cacheMemory: 8192 }, onError: (e) => errors.push(e) },
    );
    const res = await agent.request(`${url}/big`);
    expect(res.code).toBe('2.05');
    expect(res.text()).toBe('x'.repeat(400));
    const huge = await agent.request(`${url}/huge`);
    expect(huge.code).toBe('5.00');
    expect(huge.text()).toBe(''); // no diagnostic without exposeErrors
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code: string }).code).toBe('TOO_LARGE');
  });

  it('routes with a Router and serves /.well-known/core', async () => {
    const router = new Router<IncomingRequest, ResponseInit>();
    router.get('/sensors/:id', (req, params) => ({ code: '2.05', payload: `sensor ${params.id} ${req.params.id}` }), { href: '/sensors/1', rt: 'temp' });
    router.put('/sensors/:id', () => ({ code: '2.04' }));
    router.get('/hello', () => ({ code: '2.05', payload: 'hi' }), { rt: 'greeting', ct: 0 });
    const { url } = await serve(router);
    expect((await agent.request(`${url}/sensors/42`)).text()).toBe('sensor 42 42');
    expect((await agent.request(`${url}/sensors/42`, { method: 'PUT' })).code).toBe('2.04');
    expect((await agent.request(`${url}/sensors/42`, { method: 'DELETE' })).code).toBe('4.05');
    expect((await agent.request(`${url}/nope`)).code).toBe('4.04');
    const wk = await agent.request(`${url}/.well-known/core`);
    expect(wk.code).toBe('2.05');
    expect(wk.contentFormat).toBe(40);
    const links = parseLinks(wk.text());
    expect(links.map((l) => l.href).sort()).toEqual(['/hello', '/sensors/1']);
    const filtered = parseLinks((await agent.request(`${url}/.well-known/core?rt=greeting`)).text());
    expect(filtered.map((l) => l.href)).toEqual(['/hello']);
    expect((await agent.request(`${url}/.well-known/core`, { method: 'POST' })).code).toBe('4.04');
  });

  it('lets a route override /.well-known/core', async () => {
    const router = new Router<IncomingRequest, ResponseInit>();
    router.get('/.well-known/core', () => ({ code: '2.05', payload: '</custom>', contentFormat: 40 }));
    const { url } = await serve(router);
    expect((await agent.request(`${url}/.well-known/core`)).text()).toBe('</custom>');
  });

  it('serves IPv6 on ::1', async () => {
    const { url, server } = await serve((req) => ({ code: '2.05', payload: `${req.remote.family} ${req.remote.address}` }), {}, '::1');
    expect(server.address()).toMatchObject({ address: '::1', family: 'IPv6' });
    const res = await within(agent.request(`${url}/v6`), 3000);
    expect(res.text()).toBe('IPv6 ::1');
    expect(res.remote).toMatchObject({ address: '::1', family: 'IPv6', port: server.address().port });
  });

  it('serves IPv4 clients on a dual-stack :: socket', async () => {
    const { server } = await serve((req) => ({ code: '2.05', payload: req.remote.address }), {}, '::');
    const port = server.address().port;
    expect(server.address()).toMatchObject({ address: '::', family: 'IPv6' });
    const res = await within(agent.request(`coap://127.0.0.1:${port}/dual`), 3000);
    expect(res.text()).toBe('::ffff:127.0.0.1');
  });

  it('reports its address; close() with a request in flight resolves and still answers it', async () => {
    let reached!: () => void;
    const inHandler = new Promise<void>((r) => (reached = r));
    const { server, url, port } = await serve(async () => {
      reached();
      await sleep(100);
      return { code: '2.05', payload: 'finished' };
    });
    expect(server.address()).toEqual({ address: '127.0.0.1', family: 'IPv4', port });
    expect(server.listening).toBe(true);
    const pending = agent.request(`${url}/inflight`);
    await inHandler;
    await within(server.close(), 2000, 'close');
    expect(server.listening).toBe(false);
    const res = await within(pending, 2000);
    expect(res.text()).toBe('finished');
    expect(() => server.address()).toThrow();
    await server.close(); // idempotent
  });

  it('close() gives up on a handler that never answers after closeTimeout', async () => {
    const { server, url } = await serve(() => new Promise<ResponseInit>(() => {}), { closeTimeout: 50 });
    const pending = agent.request(url + '/never', { timeout: 400 });
    pending.catch(() => {});
    await sleep(50);
    const t0 = Date.now();
    await within(server.close(), 1000, 'close');
    expect(Date.now() - t0).toBeLessThan(500);
    await expect(pending).rejects.toThrow();
  });

  it('fails to listen on a port in use with a CoapNetworkError', async () => {
    const { port } = await serve(() => ({ code: '2.05' }));
    const other = createServer(() => ({ code: '2.05' }), { backend });
    await expect(other.listen({ port, host: '127.0.0.1' })).rejects.toSatisfy(
      (e: unknown) => e instanceof CoapNetworkError && e.code === 'EADDRINUSE',
    );
    await other.close();
  });

  it('hands over a batch early when its byte area fills (burst of 50 KB datagrams)', async () => {
    const sizes: number[] = [];
    const { server, port } = await serve((req) => {
      sizes.push(req.payload.length);
      return { code: '2.04', payload: String(req.payload[req.payload.length - 1]) };
    });
    const p = await raw();
    const n = 40;
    for (let i = 0; i < n; i++) {
      const body = new Uint8Array(50_000).fill(i);
      await p.send(msg('CON', '0.02', 0x2000 + i, [i], pathOpts('/big'), body), port);
    }
    const got = new Set<number>();
    for (let i = 0; i < n; i++) {
      const r = await p.next(3000);
      expect(r.msg).toMatchObject({ type: 'ACK', code: '2.04' });
      got.add(r.msg!.messageId! - 0x2000);
      expect(fromUtf8(r.msg!.payload)).toBe(String(r.msg!.messageId! - 0x2000));
    }
    expect(got.size).toBe(n);
    expect(sizes).toEqual(new Array(n).fill(50_000));
    // more than one batch was needed for 2 MB of datagrams
    expect(server.stats()!.batches).toBeGreaterThan(1);
  });

  it('flushes early when the TX area fills (600 requests written in one turn)', async () => {
    const { url } = await serve((req) => ({ code: '2.05', payload: req.payload }));
    const a = new Agent({ backend, nstart: 1000, conSlots: 1024, maxClientRequests: 1024 });
    try {
      const body = new Uint8Array(1000).fill(0x61);
      const all = Array.from({ length: 600 }, (_, i) => a.request(`${url}/tx?${i}`, { method: 'POST', payload: body }).then((r) => r.payload.length));
      expect(await within(Promise.all(all), 15000)).toEqual(new Array(600).fill(1000));
    } finally {
      await a.close();
    }
  });

  it('sends a burst of same-size responses to one peer as separate datagrams (GSO on native)', async () => {
    const { server, port } = await serve((req) => ({ code: '2.05', payload: `r-${req.query[0]}` }));
    const p = await raw();
    const n = 30;
    // fire the burst without waiting, so the requests share receive batches
    await Promise.all(
      Array.from({ length: n }, (_, i) => p.send(msg('CON', '0.01', 0x3000 + i, [i], [...pathOpts('/g'), { number: 15, value: String(10 + i) }]), port)),
    );
    const seen = new Map<number, string>();
    for (let i = 0; i < n; i++) {
      const r = await p.next(2000);
      expect(r.msg).toMatchObject({ type: 'ACK', code: '2.05' });
      seen.set(r.msg!.messageId! - 0x3000, fromUtf8(r.msg!.payload));
    }
    expect(seen.size).toBe(n);
    for (const [i, body] of seen) expect(body).toBe(`r-${10 + i}`);
    const st = server.stats()!;
    expect(st.sent).toBe(n);
    if (backend === 'native' && process.platform === 'linux') expect(st.gsoSends).toBeGreaterThan(0); // GSO is Linux's
    else expect(st.gsoSends).toBe(0);
  });

  it('serves many concurrent requests from many clients', async () => {
    let n = 0;
    const { url } = await serve((req) => ({ code: '2.05', payload: `${++n}:${req.query[0]}` }));
    const agents = [new Agent({ backend, nstart: 32 }), new Agent({ backend: udpBackends.find((b) => b !== backend) ?? backend, nstart: 32 })];
    try {
      const all: Promise<string>[] = [];
      for (let i = 0; i < 400; i++) {
        all.push(agents[i % 2]!.request(`${url}/c?${i}`).then((r) => r.text().split(':')[1] as string));
      }
      const got = await within(Promise.all(all), 10000);
      expect(got).toEqual(Array.from({ length: 400 }, (_, i) => String(i)));
      expect(n).toBe(400);
    } finally {
      await Promise.all(agents.map((a) => a.close()));
    }
  });
});
