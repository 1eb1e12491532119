/**
 * Block-wise transfer and Observe interop with npm `coap` (the JavaScript incumbent), both
 * ways, on both backends, loopback only:
 *  - our request() downloads a body npm coap's server sends block-wise (Block2);
 *  - npm coap's client downloads a large response of our server and observes one of our
 *    resources through notify().
 */
import { afterEach, describe, expect, it } from 'vitest';
import type * as CoapModule from 'coap';
import { Agent } from '../ts/client';
import type { IncomingRequest } from '../ts/incoming';
import { Router } from '../ts/router';
import { createServer, type CoapServer, type ResponseInit } from '../ts/server';
import { freePort, optionalModule } from './support/peers';
import { Tracked, udpBackends, within } from './support/udp';

const npmCoap = optionalModule<typeof CoapModule>('coap', 'npm coap (a devDependency: npm install)');
const coap = npmCoap.module as typeof CoapModule;
if (npmCoap.missing !== undefined) console.warn(`interop-npm-coap: SKIPPED (CI is not set): ${npmCoap.missing}`);

const body = new Uint8Array(5000).map((_, i) => i % 251);

describe.skipIf(npmCoap.missing !== undefined).each(udpBackends)('npm coap interop, block-wise and Observe (%s)', (backend) => {
  const agents = new Tracked<Agent>();
  const servers = new Tracked<CoapServer>();
  afterEach(async () => {
    await agents.closeAll();
    await servers.closeAll();
  });

  it('request() completes a body npm coap serves with Block2', async () => {
    const srv = coap.createServer((_req, res) => res.end(Buffer.from(body)));
    const port = await freePort('127.0.0.1');
    await new Promise<void>((resolve, reject) => srv.listen(port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    try {
      const agent = agents.add(new Agent({ backend }));
      let progress = 0;
      const r = await within(agent.request(`coap://127.0.0.1:${port}/x`, { onProgress: (p) => (progress = p.bytes) }), 10_000);
      expect(r.code).toBe('2.05');
      expect(Buffer.from(r.payload).equals(Buffer.from(body))).toBe(true);
      expect(progress).toBe(body.length);
    } finally {
      srv.close();
    }
  });

  it("npm coap's client gets a large response and observes a resource of ours", async () => {
    const router = new Router<IncomingRequest, ResponseInit | Promise<ResponseInit>>();
    let n = 0;
    router.get('/big', () => ({ code: '2.05', payload: body }));
    router.get('/obs', () => ({ code: '2.05', payload: `v${n}` }), { obs: true });
    // npm coap's client does not answer RFC 9175 Echo challenges: the defence is off for it
    const server = servers.add(createServer(router, { backend, amplificationLimit: 0 }));
    await server.listen({ port: 0, host: '127.0.0.1' });
    const port = server.address().port;

    const big = await within(
      new Promise<Buffer>((resolve, reject) => {
        const req = coap.request({ hostname: '127.0.0.1', port, pathname: '/big' });
        req.on('response', (res: { payload: Buffer }) => resolve(res.payload));
        req.on('error', reject);
        req.end();
      }),
      10_000,
    );
    expect(Buffer.from(big).equals(Buffer.from(body))).toBe(true);

    const seen = await within(
      new Promise<string[]>((resolve, reject) => {
        const values: string[] = [];
        const req = coap.request({ hostname: '127.0.0.1', port, pathname: '/obs', observe: true });
        let timer: NodeJS.Timeout | undefined;
        req.on('response', (res: { on(e: 'data', f: (d: Buffer) => void): void; close(): void }) => {
          res.on('data', (d) => {
            values.push(String(d));
            if (values.length === 3) {
              clearInterval(timer);
              res.close();
              resolve(values);
            }
          });
          timer = setInterval(() => {
            n++;
            server.resource('/obs').notify();
          }, 50);
        });
        req.on('error', reject);
        req.end();
      }),
      10_000,
    );
    expect(seen[0]).toBe('v0');
    // every later value is one the server sent, in order
    const later = seen.slice(1).map((v) => Number(v.slice(1)));
    expect(later[0]).toBeGreaterThan(0);
    expect(later[1]).toBeGreaterThan(later[0] as number);
  });
});
