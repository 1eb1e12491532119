/**
 * A request to a closed port: the native backend on Linux learns of the ICMP port unreachable
 * (IP_RECVERR) and fails at once with CoapNetworkError ECONNREFUSED (tc_ep_unreachable); the
 * WASM backend (node:dgram reports no ICMP errors on an unconnected socket) waits out its
 * timeout, as the README says. Every wait is bounded.
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../ts/client';
import { CoapNetworkError, CoapTimeoutError } from '../ts/errors';
import { observe } from '../ts/observe';
import { RawPeer, msg, udpBackends } from './support/udp';

/** A UDP port nobody listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});
function agent(backend: 'native' | 'wasm'): Agent {
  const a = new Agent({ backend });
  agents.push(a);
  return a;
}

// IP_RECVERR is Linux's: elsewhere the native backend, too, waits out the timeout.
const fast = udpBackends.includes('native') && process.platform === 'linux';

describe.runIf(fast)('closed port, native backend (Linux)', () => {
  it('request() rejects with CoapNetworkError ECONNREFUSED (ICMP port unreachable)', async () => {
    const port = await closedPort();
    const err = await agent('native').request(`coap://127.0.0.1:${port}/x`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoapNetworkError);
    expect((err as CoapNetworkError).code).toBe('ECONNREFUSED');
  }, 30_000);

  it('fails the NON and held (NSTART) requests and the ping to that port too', async () => {
    const port = await closedPort();
    const a = agent('native');
    const url = `coap://127.0.0.1:${port}/x`;
    const all = await Promise.allSettled([
      a.request(url),
      a.request(url), // held by NSTART = 1 behind the first
      a.request(url, { confirmable: false }),
      a.ping(url),
    ]);
    for (const r of all) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CoapNetworkError);
      expect((r as PromiseRejectedResult).reason.code).toBe('ECONNREFUSED');
    }
  }, 30_000);

  it('a request to another peer of the same agent is unaffected', async () => {
    const port = await closedPort();
    const p = await RawPeer.open('127.0.0.1');
    try {
      const a = agent('native');
      const live = a.request(`coap://127.0.0.1:${p.port}/ok`);
      const req = await p.next();
      const dead = await a.request(`coap://127.0.0.1:${port}/x`).catch((e: unknown) => e);
      expect((dead as CoapNetworkError).code).toBe('ECONNREFUSED');
      await p.send(msg('ACK', '2.05', req.msg!.messageId!, Array.from(req.msg!.token), [], 'fine'), req.rinfo.port);
      expect((await live).text()).toBe('fine');
    } finally {
      await p.close();
    }
  }, 30_000);

  it('observe() ends with CoapNetworkError ECONNREFUSED', async () => {
    const port = await closedPort();
    const obs = observe(`coap://127.0.0.1:${port}/obs`, { agent: agent('native') });
    const err = await (async () => {
      for await (const _ of obs) return undefined;
      return undefined;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoapNetworkError);
    expect((err as CoapNetworkError).code).toBe('ECONNREFUSED');
  }, 30_000);
});

describe('closed port, WASM backend', () => {
  it('is not told of the ICMP error: the request times out (README: fast failure is native-on-Linux)', async () => {
    const port = await closedPort();
    const err = await agent('wasm').request(`coap://127.0.0.1:${port}/x`, { timeout: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoapTimeoutError);
  }, 30_000);
});
