/**
 * Connections (RFC 8323) between our own client and our own server: BERT (§6) by default and
 * within the smaller Max-Message-Size, the Agent's per-connection request bound against the
 * server's exchange slots, and the public connection options (ConnectionOptions) with their
 * typed argument errors, on createServer, listen() and the Agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from '../ts/client';
import { CoapArgRangeError } from '../ts/errors';
import { Router } from '../ts/router';
import { createServer, type CoapServer } from '../ts/server';
import { udpBackends, within } from './support/udp';

const BODY = new Uint8Array(300_000).map((_, i) => (i * 31 + (i >> 8)) & 0xff);

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

describe.each(udpBackends)('connections between turbocoap peers (%s)', (backend) => {
  let server: CoapServer;
  let big: CoapServer;
  let port = 0;
  let bigPort = 0;
  let stored: Uint8Array = new Uint8Array(0);
  let inFlight = 0;
  let maxInFlight = 0;

  const router = (): Router => {
    const r = new Router();
    r.put('/store', (req) => {
      stored = req.payload;
      return { code: '2.04' };
    });
    r.get('/store', () => ({ code: '2.05', payload: stored }));
    r.get('/slow', async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((res) => setTimeout(res, 20));
      inFlight--;
      return { code: '2.05', payload: 'ok' };
    });
    return r;
  };

  beforeAll(async () => {
    server = createServer(router(), { backend });
    await server.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    port = server.address('tcp').port;
    big = createServer(router(), { backend, maxMessageSize: 16512 });
    await big.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    bigPort = big.address('tcp').port;
  });

  afterAll(async () => {
    await server?.close();
    await big?.close();
  });

  /** Upload then download BODY to `s`; returns the Block1 / Block2 messages the server counted. */
  async function roundTrip(s: CoapServer, p: number, agent: Agent): Promise<{ blocksIn: number; blocksOut: number }> {
    const before = s.stats()!;
    const uri = `coap+tcp://127.0.0.1:${p}/store`;
    const put = await within(request(uri, { agent, method: 'PUT', payload: BODY, timeout: 20_000 }), 30_000, 'upload');
    expect(put.code).toBe('2.04');
    expect(equal(stored, BODY)).toBe(true);
    const got = await within(request(uri, { agent, timeout: 20_000 }), 30_000, 'download');
    expect(got.code).toBe('2.05');
    expect(equal(got.payload, BODY)).toBe(true);
    const after = s.stats()!;
    return { blocksIn: after.blocksIn - before.blocksIn, blocksOut: after.blocksOut - before.blocksOut };
  }

  it('BERT by default: 4 KiB blocks up and down (both sides advertise Max-Message-Size 4224)', async () => {
    const agent = new Agent({ backend });
    try {
      const n = await roundTrip(server, port, agent);
      // 1 KiB blocks would take 293 messages each way
      expect(n.blocksIn).toBe(Math.ceil(BODY.length / 4096) - 1); // the last block goes to the handler
      expect(n.blocksOut).toBeGreaterThan(0);
      expect(n.blocksOut).toBeLessThanOrEqual(Math.ceil(BODY.length / 4096));
    } finally {
      await agent.close();
    }
  });

  it("BERT within the smaller Max-Message-Size: the server's 16512 and our 16512 make 16 KiB blocks, our 1152 makes 1 KiB", async () => {
    const agent = new Agent({ backend, maxMessageSize: 16512 });
    const small = new Agent({ backend, maxMessageSize: 1152 });
    try {
      let n = await roundTrip(big, bigPort, agent);
      expect(n.blocksIn).toBe(Math.ceil(BODY.length / 16384) - 1);
      expect(n.blocksOut).toBeLessThanOrEqual(Math.ceil(BODY.length / 16384));
      n = await roundTrip(big, bigPort, small);
      expect(n.blocksIn).toBe(Math.ceil(BODY.length / 1024) - 1);
      expect(n.blocksOut).toBe(Math.ceil(BODY.length / 1024));
    } finally {
      await agent.close();
      await small.close();
    }
  });

  it('64 concurrent requests down one connection all get 2.05 (the agent keeps to the 16 slots a connection has)', async () => {
    const agent = new Agent({ backend });
    try {
      maxInFlight = 0;
      const all = await within(
        Promise.all(Array.from({ length: 64 }, () => request(`coap+tcp://127.0.0.1:${port}/slow`, { agent, timeout: 20_000 }))),
        30_000,
        '64 requests',
      );
      expect(all.map((r) => r.code)).toEqual(Array(64).fill('2.05'));
      expect(maxInFlight).toBeLessThanOrEqual(16);
      expect(maxInFlight).toBeGreaterThan(1);
    } finally {
      await agent.close();
    }
  });

  it('maxRequestsPerConnection bounds what the agent sends at once', async () => {
    const agent = new Agent({ backend, maxRequestsPerConnection: 3 });
    try {
      maxInFlight = 0;
      const all = await Promise.all(Array.from({ length: 12 }, () => request(`coap+tcp://127.0.0.1:${port}/slow`, { agent, timeout: 20_000 })));
      expect(all.every((r) => r.code === '2.05')).toBe(true);
      expect(maxInFlight).toBeLessThanOrEqual(3);
    } finally {
      await agent.close();
    }
  });

  it('a listener with maxRequestsPerConnection above the 16 default serves 64 pipelined requests from an agent allowed 64', async () => {
    const s = createServer(router(), { backend, maxConnections: 100 });
    await s.listen({ transport: 'tcp', port: 0, host: '127.0.0.1', maxRequestsPerConnection: 64 });
    const agent = new Agent({ backend, maxRequestsPerConnection: 64 });
    try {
      maxInFlight = 0;
      const p = s.address('tcp').port;
      const all = await Promise.all(Array.from({ length: 64 }, () => request(`coap+tcp://127.0.0.1:${p}/slow`, { agent, timeout: 20_000 })));
      expect(all.map((r) => r.code)).toEqual(Array(64).fill('2.05'));
      expect(maxInFlight).toBeGreaterThan(16);
    } finally {
      await agent.close();
      await s.close();
    }
  });
});

describe('connection options: typed argument errors', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['maxConnections', { maxConnections: 0 }],
    ['maxConnections', { maxConnections: 70000 }],
    ['maxConnectionsPerHost', { maxConnections: 10, maxConnectionsPerHost: 11 }],
    ['csmTimeout', { csmTimeout: 0 }],
    ['idleTimeout', { idleTimeout: -1 }],
    ['pingTimeout', { pingTimeout: 1.5 }],
    ['maxRequestsPerConnection', { maxRequestsPerConnection: 0 }],
    ['maxMessageSize', { maxMessageSize: 70000 }],
  ];

  it.each(bad)('%s out of range: createServer and new Agent throw CoapArgRangeError', (name, o) => {
    for (const make of [() => createServer(() => ({ code: '2.05' }), o), () => new Agent(o)]) {
      let e: unknown;
      try {
        make();
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(CoapArgRangeError);
      expect((e as CoapArgRangeError).code).toBe('ERR_OUT_OF_RANGE');
      expect((e as Error).message).toContain(name);
    }
  });

  it('a server allows at most 65535 / maxConnections requests per connection', () => {
    expect(() => createServer(() => ({ code: '2.05' }), { maxConnections: 4000, maxRequestsPerConnection: 17 })).toThrow(CoapArgRangeError);
    expect(() => createServer(() => ({ code: '2.05' }), { maxConnections: 1000, maxRequestsPerConnection: 65 })).not.toThrow();
  });

  it('listen() checks its own connection options', async () => {
    const s = createServer(() => ({ code: '2.05' }));
    try {
      await expect(s.listen({ transport: 'tcp', port: 0, host: '127.0.0.1', pingTimeout: 0 })).rejects.toBeInstanceOf(CoapArgRangeError);
      await s.listen({ transport: 'tcp', port: 0, host: '127.0.0.1', maxConnections: 8, maxConnectionsPerHost: 2 });
      expect(s.address('tcp').port).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });
});
