/**
 * The cross-transport proxy (ts/proxy.ts): coap+ws and coap+tcp clients reach a UDP origin
 * (reverse mode), Proxy-Uri / Proxy-Scheme forward mode with its allowlist, block-wise both
 * ways, Observe fanned out and cancelled, the proxy's bounds and its upstream error mapping;
 * libcoap's coap-client-notls -P through it. On both backends where the addon loads.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from '../ts/client';
import { observe } from '../ts/observe';
import { OptionNumber } from '../ts/options';
import { createProxy, type CoapProxy, type ProxyOptions } from '../ts/proxy';
import { Router } from '../ts/router';
import { createServer, type CoapServer } from '../ts/server';
import { cliPath, killAll, libcoap, runCli, runCoapClient, spawnPeer, waitForOutput } from './support/peers';
import { sleep, udpBackends, within } from './support/udp';

const peers = libcoap();
const tools = 'missing' in peers ? undefined : peers;
if (tools === undefined) console.warn(`proxy: libcoap test SKIPPED (CI is not set): ${(peers as { missing: string }).missing}`);

/** A deterministic body of n bytes. */
function body(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const MiB = 1 << 20;
const BIG = body(MiB);

afterAll(async () => {
  await killAll();
});

describe.each(udpBackends)('proxy (%s)', (backend) => {
  let origin: CoapServer;
  let originPort: number;
  /** Requests the origin saw, by kind. */
  const seen = { registrations: 0, deregistrations: 0, uploads: [] as number[], proxyUri: 0 };
  let agent: Agent;
  const proxies: CoapProxy[] = [];

  beforeAll(async () => {
    const router = new Router();
    router.get('/hello', (req) => {
      if (req.option(OptionNumber.ProxyUri) !== undefined) seen.proxyUri++;
      return { code: '2.05', payload: `hello ${req.query.join('&')}`, contentFormat: 0, maxAge: 30, etag: 'v1' };
    });
    router.get('/large', () => ({ code: '2.05', payload: BIG }));
    router.get('/hop', (req) => ({ code: '2.05', payload: String(req.option(OptionNumber.HopLimit)?.[0]) }));
    router.post('/upload', (req) => {
      seen.uploads.push(req.payload.length);
      const want = body(req.payload.length, 9);
      return { code: '2.04', payload: Buffer.compare(Buffer.from(req.payload), Buffer.from(want)) === 0 ? `ok ${req.payload.length}` : 'corrupt' };
    });
    router.get('/slow', () => new Promise(() => {})); // never answers
    router.get(
      '/obs',
      (req) => {
        if (req.observe === 0) seen.registrations++;
        if (req.observe === 1) seen.deregistrations++;
        return { code: '2.05', payload: 'v0' };
      },
      { obs: true },
    );
    origin = createServer(router, { backend });
    await origin.listen({ port: 0, host: '127.0.0.1' });
    originPort = origin.address().port;
    agent = new Agent({ backend });
  });

  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  afterAll(async () => {
    await agent.close();
    await origin.close();
  });

  async function proxyOn(transports: ('udp' | 'tcp' | 'ws')[], o: ProxyOptions = {}): Promise<CoapProxy> {
    const p = createProxy({ backend, ...o });
    proxies.push(p);
    for (const transport of transports) await p.listen({ transport, port: 0, host: '127.0.0.1' });
    return p;
  }

  const url = (p: CoapProxy, t: 'udp' | 'tcp' | 'ws', path: string): string =>
    `${t === 'udp' ? 'coap' : t === 'tcp' ? 'coap+tcp' : 'coap+ws'}://127.0.0.1:${p.address(t).port}${path}`;

  it.each(['ws', 'tcp'] as const)('reverse mode: a coap+%s client reaches the UDP origin (GET with options carried)', async (t) => {
    const p = await proxyOn([t], { target: `coap://127.0.0.1:${originPort}` });
    const r = await request(url(p, t, '/hello?a=1&b=2'), { agent });
    expect(r.code).toBe('2.05');
    expect(r.text()).toBe('hello a=1&b=2');
    expect(r.contentFormat).toBe(0);
    expect(r.option(OptionNumber.MaxAge)?.[0]).toBe(30);
    expect(Buffer.from(r.option(OptionNumber.ETag) ?? []).toString()).toBe('v1');
    const nf = await request(url(p, t, '/nothing'), { agent });
    expect(nf.code).toBe('4.04');
    expect(p.stats().forwarded).toBe(2);
  });

  it('listens again after close()', async () => {
    const p = await proxyOn(['udp'], { target: `coap://127.0.0.1:${originPort}` });
    expect((await request(url(p, 'udp', '/hello'), { agent })).code).toBe('2.05');
    await p.close();
    await p.listen({ transport: 'udp', port: 0, host: '127.0.0.1' });
    expect((await request(url(p, 'udp', '/hello'), { agent })).code).toBe('2.05');
  });

  it.each(['ws', 'tcp'] as const)('reverse mode over coap+%s: 1 MiB Block2 download and 300 kB upload', async (t) => {
    const p = await proxyOn([t], { target: `coap://127.0.0.1:${originPort}` });
    const r = await within(request(url(p, t, '/large'), { agent, maxBodySize: 2 * MiB }), 60_000, 'download');
    expect(r.code).toBe('2.05');
    expect(r.payload.length).toBe(MiB);
    expect(Buffer.compare(Buffer.from(r.payload), Buffer.from(BIG))).toBe(0);
    const up = body(300_000, 9);
    const u = await within(request(url(p, t, '/upload'), { agent, method: 'POST', payload: up }), 60_000, 'upload');
    expect([u.code, u.text()]).toEqual(['2.04', 'ok 300000']);
    expect(seen.uploads.at(-1)).toBe(300_000);
  }, 120_000);

  it('observe over coap+ws: one upstream observation for two observers, notifications carried, cancelled after the last leaves', async () => {
    const p = await proxyOn(['ws', 'tcp'], { target: `coap://127.0.0.1:${originPort}`, observeCheckInterval: 100 });
    const regs0 = seen.registrations;
    const deregs0 = seen.deregistrations;
    const a = observe(url(p, 'ws', '/obs'), { agent });
    const b = observe(url(p, 'tcp', '/obs'), { agent });
    const ia = a[Symbol.asyncIterator]();
    const ib = b[Symbol.asyncIterator]();
    const fa = await within(ia.next(), 10_000, 'first a');
    const fb = await within(ib.next(), 10_000, 'first b');
    expect(fa.value?.text()).toBe('v0');
    expect(fb.value?.text()).toBe('v0');
    expect(fa.value?.option(OptionNumber.Observe)).toBeDefined();
    expect(seen.registrations - regs0).toBe(1); // one upstream registration
    expect(p.stats().observations).toBe(1);
    for (const v of ['v1', 'v2']) {
      origin.resource('/obs').notify(v);
      expect((await within(ia.next(), 10_000, `a ${v}`)).value?.text()).toBe(v);
      expect((await within(ib.next(), 10_000, `b ${v}`)).value?.text()).toBe(v);
    }
    await a.cancel();
    await sleep(400); // checks run: b still observes
    expect(p.stats().observations).toBe(1);
    origin.resource('/obs').notify('v3');
    expect((await within(ib.next(), 10_000, 'b v3')).value?.text()).toBe('v3');
    await b.cancel();
    for (let i = 0; i < 50 && p.stats().observations > 0; i++) await sleep(100);
    expect(p.stats().observations).toBe(0);
    for (let i = 0; i < 50 && seen.deregistrations - deregs0 < 1; i++) await sleep(100);
    // the proxy's own deregistration upstream (RFC 7641 §3.6); the downstream ones end at the
    // proxy (their Observe is hop-by-hop: they go on as plain GETs)
    expect(seen.deregistrations - deregs0).toBe(1);
    expect(seen.registrations - regs0).toBe(1);
  }, 30_000);

  it('observe: an observer whose connection closes is gone too (upstream cancelled); upstream end (4.04) ends the downstream observation', async () => {
    const p = await proxyOn(['ws'], { target: `coap://127.0.0.1:${originPort}`, observeCheckInterval: 100 });
    const deregs0 = seen.deregistrations;
    const own = new Agent({ backend });
    const o = observe(url(p, 'ws', '/obs'), { agent: own });
    const it1 = o[Symbol.asyncIterator]();
    expect((await within(it1.next(), 10_000, 'first')).value?.code).toBe('2.05');
    expect(p.stats().observations).toBe(1);
    await own.close(); // the ws connection closes: the core forgets its observers
    for (let i = 0; i < 50 && p.stats().observations > 0; i++) await sleep(100);
    expect(p.stats().observations).toBe(0);
    for (let i = 0; i < 50 && seen.deregistrations === deregs0; i++) await sleep(100);
    expect(seen.deregistrations - deregs0).toBe(1);

    const o2 = observe(url(p, 'ws', '/obs'), { agent });
    const it2 = o2[Symbol.asyncIterator]();
    expect((await within(it2.next(), 10_000, 'first')).value?.text()).toBe('v0');
    origin.resource('/obs').notify({ code: '4.04', payload: 'gone' });
    const end = await within(it2.next().catch((e: unknown) => e), 10_000, 'end');
    expect((end as { code?: string }).code).toBe('OBSERVE_ENDED');
    expect((end as { response?: { code: string } }).response?.code).toBe('4.04');
    for (let i = 0; i < 50 && p.stats().observations > 0; i++) await sleep(100);
    expect(p.stats().observations).toBe(0);
  }, 30_000);

  it('observe: past maxObservations a registration is forwarded as a plain GET', async () => {
    const p = await proxyOn(['tcp'], { target: `coap://127.0.0.1:${originPort}`, maxObservations: 1 });
    const a = observe(url(p, 'tcp', '/obs'), { agent });
    const fa = await within(a[Symbol.asyncIterator]().next(), 10_000, 'a');
    expect(fa.value?.option(OptionNumber.Observe)).toBeDefined();
    const r = await request(url(p, 'tcp', '/hello'), { agent, options: [{ number: OptionNumber.Observe, value: 0 }] });
    expect(r.code).toBe('2.05');
    expect(r.option(OptionNumber.Observe)).toBeUndefined();
    expect(p.stats().observations).toBe(1);
    await a.cancel();
  }, 20_000);

  it('forward mode: Proxy-Uri over UDP and coap+tcp, Proxy-Scheme + Uri-Host, to an allowed origin', async () => {
    const p = await proxyOn(['udp', 'tcp'], { allow: [`127.0.0.1:${originPort}`] });
    const target = `coap://127.0.0.1:${originPort}/hello?x=y`;
    const before = seen.proxyUri;
    for (const t of ['udp', 'tcp'] as const) {
      const r = await request(url(p, t, '/'), { agent, options: [{ number: OptionNumber.ProxyUri, value: target }] });
      expect([r.code, r.text()]).toEqual(['2.05', 'hello x=y']);
    }
    expect(seen.proxyUri).toBe(before); // Proxy-Uri is not passed on
    const r = await request(url(p, 'tcp', '/hello'), {
      agent,
      options: [
        { number: OptionNumber.ProxyScheme, value: 'coap' },
        { number: OptionNumber.UriHost, value: '127.0.0.1' },
        { number: OptionNumber.UriPort, value: originPort },
      ],
    });
    expect([r.code, r.text()]).toEqual(['2.05', 'hello ']);
    // a plain request to a proxy without a target
    expect((await request(url(p, 'udp', '/hello'), { agent })).code).toBe('4.04');
  });

  it('forward mode refuses: host not allowed 4.03, unsupported scheme 5.05, bad Proxy-Uri 4.00, Proxy-Scheme without Uri-Host 4.00', async () => {
    const p = await proxyOn(['udp'], { allow: ['192.0.2.1'] });
    const ask = (value: string) => request(url(p, 'udp', '/'), { agent, options: [{ number: OptionNumber.ProxyUri, value }] });
    expect((await ask(`coap://127.0.0.1:${originPort}/hello`)).code).toBe('4.03');
    expect((await ask('http://127.0.0.1/hello')).code).toBe('5.05');
    expect((await ask('coap://[::1/x')).code).toBe('4.00');
    const ps = await request(url(p, 'udp', '/hello'), { agent, options: [{ number: OptionNumber.ProxyScheme, value: 'coap' }] });
    expect(ps.code).toBe('4.00');
    // default: no allowlist, nothing is forwarded
    const closed = await proxyOn(['udp']);
    const r = await request(url(closed, 'udp', '/'), { agent, options: [{ number: OptionNumber.ProxyUri, value: `coap://127.0.0.1:${originPort}/hello` }] });
    expect(r.code).toBe('4.03');
    expect(closed.stats().forwarded).toBe(0);
  });

  it('Hop-Limit (RFC 8768): inserted (16), decremented by each proxy, 5.08 when it runs out; unknown unsafe option 5.02', async () => {
    const b = await proxyOn(['udp'], { target: `coap://127.0.0.1:${originPort}` });
    const a = await proxyOn(['tcp'], { target: `coap://127.0.0.1:${b.address('udp').port}` });
    expect((await request(url(a, 'tcp', '/hop'), { agent })).text()).toBe('15');
    expect((await request(url(a, 'tcp', '/hop'), { agent, options: [{ number: OptionNumber.HopLimit, value: 3 }] })).text()).toBe('1');
    const out = await request(url(a, 'tcp', '/hop'), { agent, options: [{ number: OptionNumber.HopLimit, value: 2 }] });
    expect(out.code).toBe('5.08'); // b got 1
    expect((await request(url(a, 'tcp', '/hop'), { agent, options: [{ number: OptionNumber.HopLimit, value: 1 }] })).code).toBe('5.08');
    expect((await request(url(a, 'tcp', '/hop'), { agent, options: [{ number: 2050, value: 'x' }] })).code).toBe('5.02');
  });

  it('a plain server still answers Proxy-Uri 5.05 (the core, without the proxy flag)', async () => {
    const r = await request(`coap://127.0.0.1:${originPort}/`, { agent, options: [{ number: OptionNumber.ProxyUri, value: 'coap://127.0.0.1/hello' }] });
    expect(r.code).toBe('5.05');
  });

  it('bounds: forwards in flight beyond maxInFlight get 5.03 with Max-Age', async () => {
    const p = await proxyOn(['udp'], { target: `coap://127.0.0.1:${originPort}`, maxInFlight: 2, timeout: 3000, agent: { nstart: 4 } });
    const many = new Agent({ backend, nstart: 4 }); // NSTART 1 would hold the second request back
    const held = [request(url(p, 'udp', '/slow'), { agent: many }), request(url(p, 'udp', '/slow'), { agent: many })];
    await sleep(200);
    expect(p.stats().inFlight).toBe(2);
    const r = await request(url(p, 'udp', '/hello'), { agent });
    expect(r.code).toBe('5.03');
    expect(r.option(OptionNumber.MaxAge)?.[0]).toBe(2);
    // the held ones time out upstream: 5.04
    expect((await Promise.all(held)).map((x) => x.code)).toEqual(['5.04', '5.04']);
    expect((await request(url(p, 'udp', '/hello'), { agent })).code).toBe('2.05');
    await many.close();
  }, 15_000);

  it('bounds: maxInFlightPerClient', async () => {
    const p = await proxyOn(['tcp'], { target: `coap://127.0.0.1:${originPort}`, maxInFlightPerClient: 1, timeout: 1500 });
    const held = request(url(p, 'tcp', '/slow'), { agent });
    await sleep(200);
    const r = await request(url(p, 'tcp', '/hello'), { agent });
    expect(r.code).toBe('5.03');
    expect((await held).code).toBe('5.04');
  }, 10_000);

  it('upstream down: UDP port closed -> 5.02, TCP refused -> 5.02, silent -> 5.04', async () => {
    const dead = createServer(() => ({ code: '2.05' }), { backend });
    await dead.listen({ port: 0, host: '127.0.0.1' });
    const deadPort = dead.address().port;
    await dead.close();
    const p = await proxyOn(['ws'], { allow: ['127.0.0.1'], timeout: 1500 });
    const ask = (value: string) => request(url(p, 'ws', '/'), { agent, options: [{ number: OptionNumber.ProxyUri, value }] });
    // native on Linux sees the ICMP port unreachable (5.02); the WASM backend is not told of
    // it, so the upstream request times out (5.04: test/unreachable.test.ts)
    expect((await ask(`coap://127.0.0.1:${deadPort}/x`)).code).toBe(backend === 'native' ? '5.02' : '5.04');
    // a TCP port nobody listens on
    const net: NetServer = createNetServer();
    await new Promise<void>((res) => net.listen(0, '127.0.0.1', res));
    const tcpPort = (net.address() as { port: number }).port;
    await new Promise<void>((res) => net.close(() => res()));
    const refused = await ask(`coap+tcp://127.0.0.1:${tcpPort}/x`);
    expect([refused.code, refused.text()]).toEqual(['5.02', 'upstream: ECONNREFUSED']);
    expect((await ask(`coap://127.0.0.1:${originPort}/slow`)).code).toBe('5.04');
    expect(p.stats().upstreamErrors).toBe(3);
  }, 20_000);

  it('secured upstream: a coap+tcp client reaches a coaps+tcp (TLS PSK) origin; a wrong key is 5.02', async () => {
    const tls = createServer(() => ({ code: '2.05', payload: 'secret hello' }), { backend });
    await tls.listen({ transport: 'tls', port: 0, host: '127.0.0.1', psk: { proxy: 'k3y-of-the-proxy' } });
    try {
      const to = `coaps+tcp://127.0.0.1:${tls.address('tls').port}`;
      const good = await proxyOn(['tcp'], { target: to, upstream: { psk: { identity: 'proxy', key: 'k3y-of-the-proxy' } } });
      expect((await request(url(good, 'tcp', '/x'), { agent })).text()).toBe('secret hello');
      const bad = await proxyOn(['tcp'], { target: to, upstream: { psk: { identity: 'proxy', key: 'wrong' } }, timeout: 5000 });
      const r = await request(url(bad, 'tcp', '/x'), { agent });
      expect(r.code).toBe('5.02');
      expect(r.text()).toMatch(/^upstream: (PSK|HANDSHAKE)$/);
    } finally {
      await tls.close();
    }
  }, 20_000);

  it.skipIf(tools === undefined)('libcoap coap-client-notls -P through the proxy to the UDP origin', async () => {
    const p = await proxyOn(['udp'], { allow: ['127.0.0.1'] });
    const r = await runCoapClient((tools as { client: string }).client, ['-P', `coap://127.0.0.1:${p.address('udp').port}`, `coap://127.0.0.1:${originPort}/hello?q=1`], 5, 15_000);
    expect([r.code, r.body]).toEqual([0, 'hello q=1']);
    const out = join(mkdtempSync(join(tmpdir(), 'proxy-')), 'large');
    const big = await runCoapClient((tools as { client: string }).client, ['-P', `coap://127.0.0.1:${p.address('udp').port}`, '-o', out, `coap://127.0.0.1:${originPort}/large`], 30, 50_000);
    expect([big.code, existsSync(out)]).toEqual([0, true]);
    expect(Buffer.compare(readFileSync(out), Buffer.from(BIG))).toBe(0);
  }, 60_000);
});

describe('turbocoap proxy (CLI)', () => {
  it('listens on coap+tcp and coap+ws and forwards to --to; --help; usage errors exit 2', async () => {
    const origin = createServer(() => ({ code: '2.05', payload: 'from udp' }));
    await origin.listen({ port: 0, host: '127.0.0.1' });
    const peer = spawnPeer('proxy', process.execPath, [cliPath, 'proxy', '--listen', 'coap+tcp://127.0.0.1:0', '--listen', 'coap+ws://127.0.0.1:0', '--to', `coap://127.0.0.1:${origin.address().port}`]);
    try {
      const tcp = await waitForOutput(peer, /listening on coap\+tcp:\/\/127\.0\.0\.1:(\d+)/);
      const ws = await waitForOutput(peer, /listening on coap\+ws:\/\/127\.0\.0\.1:(\d+)/);
      const agent = new Agent();
      expect((await request(`coap+tcp://127.0.0.1:${tcp[1]}/x`, { agent })).text()).toBe('from udp');
      expect((await request(`coap+ws://127.0.0.1:${ws[1]}/x`, { agent })).text()).toBe('from udp');
      await agent.close();
    } finally {
      await peer.kill();
      await origin.close();
    }
    const help = await runCli(['proxy', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--allow HOST\[:PORT\]/);
    const bad = await runCli(['proxy', '--listen', 'http://x']);
    expect(bad.code).toBe(2);
    const twice = await runCli(['proxy', '--listen', 'coap://127.0.0.1:0', '--listen', 'coap://127.0.0.1:0', '--to', 'coap://127.0.0.1']);
    expect([twice.code, twice.stderr]).toEqual([2, expect.stringMatching(/one listener per transport/)]);
  }, 30_000);
});

describe('createProxy options', () => {
  it('rejects bad options', () => {
    expect(() => createProxy({ target: 'http://x' })).toThrow();
    expect(() => createProxy({ target: 'coap://h/?q=1' })).toThrow(/query/);
    expect(() => createProxy({ maxInFlight: 0 })).toThrow(RangeError);
    expect(() => createProxy({ allow: [''] })).toThrow();
    expect(() => createProxy({ allow: 'x' as unknown as string[] })).toThrow(TypeError);
  });
});
