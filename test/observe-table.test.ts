/**
 * The server's table of observable paths (path -> the core's resource id) is bounded like the
 * core's registry: a client registering observations on ever new paths (the soak's "paths"
 * attack) leaves at most observe.maxResources entries plus the slack, an entry whose
 * observers have gone is reclaimed (so new paths stay observable), and observers that are
 * still registered keep getting their own notifications. Both backends, raw datagrams.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IncomingRequest } from '../ts/incoming';
import { Router } from '../ts/router';
import { createServer, type CoapServer, type ResponseInit } from '../ts/server';
import { RawPeer, Tracked, fromUtf8, msg, opt, pathOpts, udpBackends, type RawMessage } from './support/udp';

type Res = ResponseInit | Promise<ResponseInit>;
const OBSERVE = 6;
const MAX_RESOURCES = 8;
const LIMIT = MAX_RESOURCES + 16; // ServerStats.observableResources: maxResources + max(16, max / 4)

describe.each(udpBackends)('observable path table (%s)', (backend) => {
  const servers = new Tracked<CoapServer>();
  const peers = new Tracked<RawPeer>();
  afterEach(async () => {
    await servers.closeAll();
    await peers.closeAll();
  });

  /** A raw peer that acknowledges every CON it gets (a live observer) and queues it. */
  async function livePeer(): Promise<RawPeer> {
    const p = peers.add(await RawPeer.open());
    p.onMessage = (m: RawMessage, peer: RawPeer) => {
      if (m.msg?.type === 'CON') void peer.send(msg('ACK', '0.00', m.msg.messageId ?? 0), m.rinfo.port);
    };
    return p;
  }

  it('stays within maxResources plus its slack under a flood of paths; old observers keep theirs, new paths are served', async () => {
    let n = 0;
    const r = new Router<IncomingRequest, Res>().get('/s/:id', (req) => ({ code: '2.05', payload: `${req.params.id}:${n}` }), { obs: true });
    const server = servers.add(
      createServer(r, { backend, amplificationLimit: 0, observe: { maxResources: MAX_RESOURCES, maxObserversPerHost: 1000 } }),
    );
    await server.listen({ port: 0, host: '127.0.0.1' });
    const port = server.address().port;
    let mid = 1;
    const reg = (p: RawPeer, path: string, token: number[], value = new Uint8Array(0)) =>
      p.send(msg('CON', '0.01', mid++, token, [{ number: OBSERVE, value }, ...pathOpts(path)]), port);
    /** The next datagram for `token` (others are skipped). */
    async function nextFor(p: RawPeer, token: number[]): Promise<RawMessage> {
      for (;;) {
        const m = await p.next(2000);
        if (m.msg !== undefined && m.msg.type !== 'ACK' && [...m.msg.token].join() === token.join()) return m;
        if (m.msg?.type === 'ACK' && m.msg.code !== '0.00' && [...m.msg.token].join() === token.join()) return m;
      }
    }

    // A keeps one observation for the whole test
    const a = await livePeer();
    await reg(a, '/s/keep', [0xee]);
    const first = await nextFor(a, [0xee]);
    expect(first.msg?.code).toBe('2.05');
    expect(opt(first.msg, OBSERVE)).toBeDefined();

    // B floods distinct paths, in rounds: register, then cancel (Observe 1) those registered
    const b = await livePeer();
    const rounds = 6;
    const perRound = 2 * MAX_RESOURCES; // more than the core takes: some are refused
    let registered = 0;
    let refused = 0;
    let highest = 0;
    for (let round = 0; round < rounds; round++) {
      const held: { path: string; token: number[] }[] = [];
      for (let i = 0; i < perRound; i++) {
        const path = `/s/r${round}p${i}`;
        const token = [round, i, 7];
        await reg(b, path, token);
        const res = await nextFor(b, token);
        expect(res.msg?.code).toBe('2.05');
        if (opt(res.msg, OBSERVE) !== undefined) {
          registered++;
          held.push({ path, token });
        } else refused++;
        highest = Math.max(highest, server.stats()!.observableResources);
      }
      // the observers registered this round are notified with their own path's state
      const probe = held[0]!;
      n++;
      server.resource(probe.path).notify();
      const note = await nextFor(b, probe.token);
      expect(fromUtf8(note.msg!.payload)).toBe(`${probe.path.slice(3)}:${n}`);
      // A's observation survived every sweep: its notification, its payload
      server.resource('/s/keep').notify();
      const kept = await nextFor(a, [0xee]);
      expect(fromUtf8(kept.msg!.payload)).toBe(`keep:${n}`);
      for (const h of held) {
        await reg(b, h.path, h.token, Uint8Array.of(1)); // deregister
        await nextFor(b, h.token);
      }
    }
    expect(registered).toBeGreaterThanOrEqual(rounds * (MAX_RESOURCES - 1));
    expect(refused).toBeGreaterThan(0);
    expect(highest).toBeLessThanOrEqual(LIMIT);
    expect(server.stats()!.observableResources).toBeLessThanOrEqual(LIMIT);
    // the core's registry holds A alone again
    expect(server.stats()!.observers).toBe(1);

    // a new observer on a fresh path, from another port, is served and notified
    const c = await livePeer();
    await reg(c, '/s/fresh', [0xcc]);
    const fresh = await nextFor(c, [0xcc]);
    expect(fresh.msg?.code).toBe('2.05');
    expect(opt(fresh.msg, OBSERVE)).toBeDefined();
    n++;
    server.resource('/s/fresh').notify();
    expect(fromUtf8((await nextFor(c, [0xcc])).msg!.payload)).toBe(`fresh:${n}`);
    server.resource('/s/keep').notify();
    expect(fromUtf8((await nextFor(a, [0xee])).msg!.payload)).toBe(`keep:${n}`);
  });

  it('an object held across a sweep keeps notifying its path; refused registrations leave no entry behind', async () => {
    let n = 0;
    const r = new Router<IncomingRequest, Res>().get('/s/:id', (req) => ({ code: '2.05', payload: `${req.params.id}:${n}` }), { obs: true });
    const server = servers.add(createServer(r, { backend, amplificationLimit: 0, observe: { maxResources: MAX_RESOURCES, maxObserversPerHost: 1000 } }));
    await server.listen({ port: 0, host: '127.0.0.1' });
    const port = server.address().port;
    const held = server.resource('/s/held'); // before anyone observes
    const p = await livePeer();
    let mid = 1;
    // many paths nobody ends up observing (registered then cancelled at once)
    for (let i = 0; i < 4 * LIMIT; i++) {
      const token = [i & 0xff, i >> 8, 3];
      await p.send(msg('CON', '0.01', mid++, token, [{ number: OBSERVE, value: new Uint8Array(0) }, ...pathOpts(`/s/x${i}`)]), port);
      await p.next(2000);
      await p.send(msg('CON', '0.01', mid++, token, [{ number: OBSERVE, value: Uint8Array.of(1) }, ...pathOpts(`/s/x${i}`)]), port);
      await p.next(2000);
      expect(server.stats()!.observableResources).toBeLessThanOrEqual(LIMIT);
    }
    const o = await livePeer();
    await o.send(msg('CON', '0.01', mid++, [0x42], [{ number: OBSERVE, value: new Uint8Array(0) }, ...pathOpts('/s/held')]), port);
    const reg = await o.next(2000);
    expect(opt(reg.msg, OBSERVE)).toBeDefined();
    n++;
    held.notify(); // the object from before the sweeps reaches the path's observer
    const note = await o.next(2000);
    expect([...note.msg!.token]).toEqual([0x42]);
    expect(fromUtf8(note.msg!.payload)).toBe(`held:${n}`);
  });
});
