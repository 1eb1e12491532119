/**
 * What a new user hit (issue 9, item 6), on both drivers: server-side mistakes are visible
 * (onError, else console.error) and answered 5.00 without leaking the message; bad JSON is
 * 4.00; options are checked against the registry before they reach the wire; notify() on a
 * path that cannot be observed or on a server that does not listen throws; a server listens
 * again after close() and keeps its counters; an agent works again after close(); errors have
 * codes; lowercase methods and ArrayBuffer payloads are accepted; notifications expose their
 * Observe sequence number.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Agent, globalAgent, request } from '../ts/client';
import {
  CoapAbortError,
  CoapBlockwiseError,
  CoapEncodeError,
  CoapError,
  CoapFrameError,
  CoapNetworkError,
  CoapOptionError,
  CoapParseError,
  CoapResetError,
  CoapResponseError,
  CoapSchemeError,
  CoapServerError,
  CoapTimeoutError,
} from '../ts/errors';
import { CoapRequestError, type IncomingRequest } from '../ts/incoming';
import { CoapObserveError, observe } from '../ts/observe';
import { CoapLinkFormatError } from '../ts/linkformat';
import { CoapRouteError, Router } from '../ts/router';
import { createServer, type CoapServer, type ResponseInit, type ServerOptions } from '../ts/server';
import { CoapUriError, parseUri } from '../ts/uri';
import { RawPeer, udpBackends, within } from './support/udp';

type Handler = (req: IncomingRequest) => ResponseInit | Promise<ResponseInit>;

describe.each(udpBackends)('server and client mistakes (%s)', (backend) => {
  const servers: CoapServer[] = [];
  let agent: Agent;

  beforeAll(() => {
    agent = new Agent({ backend, nstart: 8 });
  });
  afterAll(async () => {
    await agent.close();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function serve(h: Handler | Router, opts: ServerOptions = {}) {
    const s = createServer(h, { backend, ...opts });
    servers.push(s);
    await s.listen({ port: 0, host: '127.0.0.1' });
    return { server: s, url: `coap://127.0.0.1:${s.address().port}` };
  }

  it('a thrown handler error without onError is written with console.error once, and the 5.00 does not carry it', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    const secret = new Error('password=hunter2');
    const { url } = await serve(() => {
      throw secret;
    });
    const res = await within(agent.request(`${url}/x`), 3000);
    expect(res.code).toBe('5.00');
    expect(res.payload.length).toBe(0);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0]).toContain(secret);
  });

  it('exposeErrors: true sends the message as the diagnostic payload', async () => {
    const { url } = await serve(
      async () => {
        throw new Error('visible');
      },
      { exposeErrors: true, onError: () => {} },
    );
    const res = await within(agent.request(`${url}/x`), 3000);
    expect(res.code).toBe('5.00');
    expect(res.text()).toBe('visible');
  });

  it('invalid responses reach onError as CoapResponseError and the client gets 5.00', async () => {
    const errors: unknown[] = [];
    const cases: Record<string, unknown> = {
      '/undefined': undefined,
      '/http404': { code: 404 },
      '/object': { code: '2.05', payload: { a: 1 } },
      '/negative': { code: '2.05', maxAge: -1 },
      '/etag0': { code: '2.05', etag: new Uint8Array(0) },
      '/etag9': { code: '2.05', etag: new Uint8Array(9) },
      '/oversize': { code: '2.05', payload: new Uint8Array(3 << 20) },
    };
    const { url } = await serve((req) => cases[req.path] as ResponseInit, { onError: (e) => errors.push(e) });
    for (const path of Object.keys(cases)) {
      const res = await within(agent.request(`${url}${path}`), 5000, path);
      expect(res.code, path).toBe('5.00');
      expect(res.payload.length, path).toBe(0);
    }
    expect(errors.every((e) => e instanceof CoapResponseError)).toBe(true);
    expect(errors.map((e) => (e as CoapResponseError).code)).toEqual([
      'NO_RESPONSE',
      'INVALID_CODE',
      'INVALID_PAYLOAD',
      'INVALID_OPTION',
      'INVALID_OPTION',
      'INVALID_OPTION',
      'TOO_LARGE',
    ]);
    expect((errors[1] as Error).message).toContain("'4.04'");
    expect((errors[4] as CoapResponseError).cause).toBeInstanceOf(CoapOptionError);
    expect(((errors[5] as CoapResponseError).cause as CoapOptionError).option).toBe(4);
  });

  it('a response larger than the endpoint can send (core refusal) reaches onError too', async () => {
    const errors: unknown[] = [];
    const { url } = await serve(() => ({ code: '2.05', payload: 'y'.repeat(20000) }), {
      maxMessageSize: 256,
      blockwise: { cacheMemory: 8192 },
      onError: (e) => errors.push(e),
    });
    const res = await within(agent.request(`${url}/huge`), 3000);
    expect(res.code).toBe('5.00');
    expect(errors.map((e) => (e as CoapError).code)).toEqual(['TOO_LARGE']);
  });

  it('req.json() on a payload that is not JSON is answered 4.00 (CoapRequestError BAD_JSON)', async () => {
    const errors: unknown[] = [];
    const { url } = await serve((req) => ({ code: '2.04', payload: JSON.stringify(req.json()) }), { onError: (e) => errors.push(e) });
    const ok = await within(agent.request(`${url}/j`, { method: 'PUT', payload: '{"a":1}' }), 3000);
    expect(ok.code).toBe('2.04');
    const bad = await within(agent.request(`${url}/j`, { method: 'PUT', payload: '{nope' }), 3000);
    expect(bad.code).toBe('4.00');
    expect(bad.text()).toBe('BAD_JSON');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CoapRequestError);
    expect((errors[0] as CoapRequestError).code).toBe('BAD_JSON');
  });

  it('a request option outside the registry lengths is refused before it reaches the wire', async () => {
    const peer = await RawPeer.open('127.0.0.1');
    let seen = 0;
    peer.onMessage = () => {
      seen++;
      return true;
    };
    try {
      const url = `coap://127.0.0.1:${peer.port}/x`;
      for (const value of [new Uint8Array(0), new Uint8Array(9)]) {
        const e = await agent.request(url, { options: [{ number: 4, value }], timeout: 2000 }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(CoapOptionError);
        expect(e).toBeInstanceOf(CoapEncodeError);
        expect((e as CoapOptionError).code).toBe('INVALID_OPTION');
        expect((e as CoapOptionError).option).toBe(4);
      }
      // Observe (0..3 bytes): a 4-byte value is refused too; unregistered numbers are not checked.
      await expect(agent.request(url, { options: [{ number: 6, value: 0x1000000 }], timeout: 2000 })).rejects.toBeInstanceOf(CoapOptionError);
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toBe(0);
    } finally {
      await peer.close();
    }
  });

  it('notify() throws CoapServerError before listen, for a path that cannot be observed, and after close', async () => {
    const router = new Router().get('/obs', () => ({ code: '2.05', payload: 'v' }), { obs: true }).get('/plain', () => ({ code: '2.05' }));
    const server = createServer(router, { backend, onError: () => {} });
    servers.push(server);
    const code = (f: () => void): string | undefined => {
      try {
        f();
        return undefined;
      } catch (e) {
        expect(e).toBeInstanceOf(CoapServerError);
        return (e as CoapServerError).code;
      }
    };
    expect(code(() => server.resource('/obs').notify('x'))).toBe('NOT_LISTENING');
    await server.listen({ port: 0, host: '127.0.0.1' });
    expect(code(() => server.resource('/obs').notify('x'))).toBeUndefined();
    expect(code(() => server.resource('/obs').notify())).toBeUndefined();
    expect(code(() => server.resource('/nothing').notify('x'))).toBe('NOT_OBSERVABLE');
    expect(code(() => server.resource('/plain').notify('x'))).toBe('NOT_OBSERVABLE');
    await server.close();
    expect(code(() => server.resource('/obs').notify('x'))).toBe('NOT_LISTENING');
    expect(() => server.address()).toThrow(CoapServerError);
  });

  it('listen() after close() serves again; stats() keeps its last values after close()', async () => {
    const { server, url } = await serve((req) => ({ code: '2.05', payload: req.path }));
    expect((await within(agent.request(`${url}/one`), 3000)).text()).toBe('/one');
    const live = server.stats()!;
    expect(live.rx).toBeGreaterThan(0);
    await server.close();
    const after = server.stats()!;
    expect(after.rx).toBe(live.rx);
    expect(after.tx).toBeGreaterThanOrEqual(live.tx);
    await server.listen({ port: 0, host: '127.0.0.1' });
    await expect(server.listen({ port: 0, host: '127.0.0.1' })).rejects.toBeInstanceOf(CoapServerError);
    const url2 = `coap://127.0.0.1:${server.address().port}`;
    expect((await within(agent.request(`${url2}/two`), 3000)).text()).toBe('/two');
    expect(server.stats()!.rx).toBe(1); // a new endpoint: counting from zero again
  });

  it('lowercase methods and ArrayBuffer / ArrayBufferView payloads (request and response)', async () => {
    const { url } = await serve((req) => ({
      code: '2.05',
      payload: req.method === 'POST' ? new Uint16Array([0x0201, 0x0403]).buffer : new DataView(Uint8Array.of(9, 8, 7).buffer),
      etag: Uint8Array.of(1).buffer,
    }));
    const post = await within(agent.request(`${url}/a`, { method: 'post', payload: Uint8Array.of(1, 2).buffer }), 3000);
    expect([...post.payload]).toEqual([1, 2, 3, 4]);
    expect([...post.etag!]).toEqual([1]);
    const get = await within(agent.request(`${url}/a`, { method: 'get', payload: new DataView(new ArrayBuffer(2)) }), 3000);
    expect([...get.payload]).toEqual([9, 8, 7]);
    await expect(agent.request(`${url}/a`, { method: 'nope' as 'get' })).rejects.toBeInstanceOf(TypeError);
    const router = new Router().on('put', '/r', () => ({ code: '2.04' }));
    const { url: rurl } = await serve(router);
    expect((await within(agent.request(`${rurl}/r`, { method: 'PUT' }), 3000)).code).toBe('2.04');
  });

  it('notifications expose their Observe sequence number', async () => {
    let n = 0;
    const router = new Router().get('/t', () => ({ code: '2.05', payload: `v${n++}` }), { obs: true });
    const { server, url } = await serve(router);
    const obs = observe(`${url}/t`, { agent, timeout: 3000, method: 'get' });
    const it = obs[Symbol.asyncIterator]();
    const first = (await within(it.next(), 3000)).value!;
    expect(typeof first.observe).toBe('number');
    server.resource('/t').notify();
    const second = (await within(it.next(), 3000)).value!;
    expect(second.observe).toBeGreaterThan(first.observe!);
    await obs.cancel({ timeout: 1000 });
    const plain = await within(agent.request(`${url}/t`), 3000);
    expect(plain.observe).toBeUndefined();
  });
});

describe('errors and agents', () => {
  it('every error class has a stable upper-case code', () => {
    const fake = { code: '4.04' } as unknown as ConstructorParameters<typeof CoapObserveError>[0];
    const all: CoapError[] = [
      new CoapError('x'),
      new CoapParseError('RESERVED_TKL'),
      new CoapFrameError('MESSAGE_TOO_LARGE', []),
      new CoapEncodeError('INVALID'),
      new CoapOptionError(4, 'x'),
      new CoapTimeoutError(),
      new CoapResetError(),
      new CoapNetworkError('CLOSED'),
      new CoapAbortError(),
      new CoapBlockwiseError('TOO_LARGE', 'upload', 'x'),
      new CoapObserveError(fake),
      new CoapResponseError('NO_RESPONSE', 'x'),
      new CoapServerError('NOT_LISTENING', 'x'),
      new CoapSchemeError('coaps'),
      new CoapRequestError('BAD_JSON', 'x'),
      new CoapUriError('invalid-host', 'coap://[x]/'),
      new CoapRouteError('/x', 'x'),
      new CoapLinkFormatError('x'),
    ];
    for (const e of all) {
      expect(e.code, e.name).toMatch(/^[A-Z][A-Z0-9_]*$/);
      if (e.constructor !== CoapError) expect(e.code, e.name).not.toBe('ERROR');
    }
  });

  it('CoapUriError has code (and reason as a deprecated alias)', async () => {
    let e: unknown;
    try {
      parseUri('coap://[zz]/');
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(CoapUriError);
    expect((e as CoapUriError).code).toBe('INVALID_HOST');
    expect((e as CoapUriError).reason).toBe('invalid-host');
    // (every scheme parseUri accepts has a transport now, coaps:// included: no CoapSchemeError
    // from request() to test here)
  });

  it('globalAgent.close() does not break later request() calls', async () => {
    const server = createServer((req) => ({ code: '2.05', payload: req.path }));
    await server.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `coap://127.0.0.1:${server.address().port}`;
      expect((await within(request(`${url}/a`), 3000)).text()).toBe('/a');
      await globalAgent.close();
      expect((await within(request(`${url}/b`), 3000)).text()).toBe('/b');
      await globalAgent.close();
    } finally {
      await server.close();
    }
  });
});
