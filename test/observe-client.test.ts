/**
 * Client Observe (RFC 7641) through observe() on both drivers:
 *  - against raw dgram peers that send the notifications each test chooses (reordering,
 *    error codes, a response without Observe, large notifications completed block-wise,
 *    bounded buffering, deregistration on cancel / break / abort with a GET Observe 1 and the
 *    registration's token, re-registration with the same token when Max-Age lapses);
 *  - against libcoap's coap-server-notls (/time), also through the CLI (`get -s`).
 * Every wait is bounded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../ts/client';
import { CoapAbortError, CoapTimeoutError } from '../ts/errors';
import { CoapObserveError } from '../ts/observe';
import type { IncomingResponse } from '../ts/incoming';
import { observe, type Observation } from '../ts/observe';
import { killAll, libcoap, runCli, startLibcoapServer, type Peer } from './support/peers';
import { RawPeer, fromUtf8, msg, opt, sleep, udpBackends, uintBytes, uintOf, within, type RawMessage } from './support/udp';

const OBSERVE = 6;
const ETAG = 4;
const MAX_AGE = 14;
const BLOCK2 = 23;

/** Reads up to n notifications (bounded), as [Observe value, text]. */
async function take(obs: Observation, n: number, ms = 3000): Promise<[number | undefined, string][]> {
  const out: [number | undefined, string][] = [];
  const it = obs[Symbol.asyncIterator]();
  await within(
    (async () => {
      while (out.length < n) {
        const r = await it.next();
        if (r.done === true) break;
        out.push([uintOf(r.value.option(OBSERVE)), r.value.text()]);
      }
    })(),
    ms,
    'waiting for notifications',
  );
  return out;
}

/** Everything left in the observation once it ended, and how it ended. */
async function rest(obs: Observation, ms = 3000): Promise<{ values: IncomingResponse[]; error: unknown }> {
  const values: IncomingResponse[] = [];
  try {
    await within(
      (async () => {
        for await (const r of obs) values.push(r);
      })(),
      ms,
      'waiting for the observation to end',
    );
    return { values, error: undefined };
  } catch (e) {
    return { values, error: e };
  }
}

describe.each(udpBackends)('observe() against raw peers (%s)', (backend) => {
  const agents: Agent[] = [];
  const peers: RawPeer[] = [];
  const observations: Observation[] = [];
  afterEach(async () => {
    // observations still running deregister; the raw peers do not answer that
    await Promise.all(observations.splice(0).map((o) => o.cancel({ timeout: 100 })));
    await Promise.all(agents.splice(0).map((a) => a.close()));
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });
  function agent(): Agent {
    const a = new Agent({ backend });
    agents.push(a);
    return a;
  }
  async function peer(): Promise<RawPeer> {
    const p = await RawPeer.open();
    peers.push(p);
    return p;
  }
  function watch(o: Observation): Observation {
    observations.push(o);
    return o;
  }
  /** A notification (NON unless type given) with Observe v on the registration's token. */
  function note(reg: RawMessage, mid: number, v: number | undefined, payload: string, code = '2.05', type: 'NON' | 'CON' = 'NON', extra: { number: number; value: Uint8Array }[] = []) {
    const options = v === undefined ? extra : [{ number: OBSERVE, value: uintBytes(v) }, ...extra];
    return msg(type, code, mid, Array.from(reg.msg!.token), options, payload);
  }
  function reply(reg: RawMessage, v: number | undefined, payload: string, code = '2.05', extra: { number: number; value: Uint8Array }[] = []) {
    const options = v === undefined ? extra : [{ number: OBSERVE, value: uintBytes(v) }, ...extra];
    return msg('ACK', code, reg.msg!.messageId!, Array.from(reg.msg!.token), options, payload);
  }

  it('registers with GET Observe 0 and yields the notifications in order, dropping stale ones (§3.4)', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/temp`, { agent: agent() }));
    const reg = await p.next();
    expect(reg.msg).toMatchObject({ type: 'CON', code: '0.01' });
    expect(opt(reg.msg, OBSERVE)).toEqual(new Uint8Array(0)); // Observe 0
    expect(fromUtf8(opt(reg.msg, 11)!)).toBe('temp');
    const port = reg.rinfo.port;
    await p.send(reply(reg, 10, 'a'), port);
    await p.send(note(reg, 0x100, 12, 'c'), port);
    await p.send(note(reg, 0x101, 11, 'b'), port); // older than 12: stale
    await p.send(note(reg, 0x102, 13, 'd'), port);
    // wrap-around: 2^24 - 1 is older than 13 ... and 13 + 2^23 - 1 is newer
    await p.send(note(reg, 0x103, 0xffffff, 'old'), port);
    await p.send(note(reg, 0x104, 13 + 0x7fffff, 'e'), port);
    const got = await take(obs, 4);
    expect(got).toEqual([
      [10, 'a'],
      [12, 'c'],
      [13, 'd'],
      [13 + 0x7fffff, 'e'],
    ]);
    expect(obs.stale).toBe(2);
  });

  it('CON notifications are acknowledged', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/c`, { agent: agent() }));
    const reg = await p.next();
    await p.send(reply(reg, 1, 'one'), reg.rinfo.port);
    await p.send(note(reg, 0x200, 2, 'two', '2.05', 'CON'), reg.rinfo.port);
    expect(await take(obs, 2)).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
    const a = await p.next();
    expect(a.msg).toMatchObject({ type: 'ACK', code: '0.00', messageId: 0x200 });
  });

  it('a response without Observe is yielded last (the server does not observe)', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/plain`, { agent: agent() }));
    const reg = await p.next();
    await p.send(reply(reg, undefined, 'just once'), reg.rinfo.port);
    const { values, error } = await rest(obs);
    expect(error).toBeUndefined();
    expect(values.map((v) => v.text())).toEqual(['just once']);
    expect(obs.closed).toBe(true);
  });

  it('an error response ends the observation with CoapObserveError (registration refused, or ended later)', async () => {
    const p = await peer();
    const a = agent();
    const refused = watch(observe(`coap://127.0.0.1:${p.port}/nope`, { agent: a }));
    let reg = await p.next();
    await p.send(reply(reg, undefined, 'no such thing', '4.04'), reg.rinfo.port);
    let r = await rest(refused);
    expect(r.values).toEqual([]);
    expect(r.error).toBeInstanceOf(CoapObserveError);
    expect((r.error as CoapObserveError).response.code).toBe('4.04');

    const ended = watch(observe(`coap://127.0.0.1:${p.port}/gone`, { agent: a }));
    reg = await p.next();
    await p.send(reply(reg, 5, 'x'), reg.rinfo.port);
    await p.send(note(reg, 0x300, 6, 'y'), reg.rinfo.port);
    await p.send(note(reg, 0x301, undefined, 'bye', '5.03'), reg.rinfo.port);
    r = await rest(ended);
    expect(r.values.map((v) => v.text())).toEqual(['x', 'y']);
    expect(r.error).toBeInstanceOf(CoapObserveError);
    expect((r.error as CoapObserveError).response.code).toBe('5.03');
    // the registration is forgotten: a later notification gets RST
    await p.send(note(reg, 0x302, 7, 'z'), reg.rinfo.port);
    const rst = await p.next();
    expect(rst.msg).toMatchObject({ type: 'RST', messageId: 0x302 });
  });

  it('completes a notification larger than a block with Block2 GETs without Observe (RFC 7959 §2.6)', async () => {
    const p = await peer();
    const body = 'x'.repeat(100) + 'y'.repeat(100) + 'z'.repeat(50);
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/big`, { agent: agent() }));
    const reg = await p.next();
    const blockOpts = (num: number) => [
      { number: ETAG, value: Uint8Array.of(7) },
      { number: BLOCK2, value: uintBytes((num << 4) | ((num + 1) * 64 < body.length ? 8 : 0) | 2) },
    ];
    const gets: RawMessage[] = [];
    p.onMessage = (m, self) => {
      gets.push(m);
      const num = (uintOf(opt(m.msg, BLOCK2)) ?? 0) >> 4;
      void self.send(msg('ACK', '2.05', m.msg!.messageId!, Array.from(m.msg!.token), blockOpts(num), body.slice(num * 64, num * 64 + 64)), m.rinfo.port);
      return true;
    };
    await p.send(reply(reg, 3, body.slice(0, 64), '2.05', blockOpts(0)), reg.rinfo.port);
    const got = await take(obs, 1);
    expect(got).toEqual([[3, body]]);
    expect(gets.length).toBe(3);
    for (const g of gets) {
      expect(g.msg!.code).toBe('0.01');
      expect(opt(g.msg, OBSERVE)).toBeUndefined();
      expect(Buffer.from(g.msg!.token).equals(Buffer.from(reg.msg!.token))).toBe(false);
    }
  });

  it('buffers at most maxBuffered notifications, dropping the oldest', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/fast`, { agent: agent(), maxBuffered: 2 }));
    const reg = await p.next();
    await p.send(reply(reg, 1, 'n1'), reg.rinfo.port);
    for (let v = 2; v <= 5; v++) await p.send(note(reg, 0x400 + v, v, `n${v}`), reg.rinfo.port);
    await sleep(200);
    expect(await take(obs, 2)).toEqual([
      [4, 'n4'],
      [5, 'n5'],
    ]);
    expect(obs.dropped).toBe(3);
  });

  /** Checks that m is the deregistration of reg (§3.6): its request with Observe 1, its token. */
  function expectDeregistration(m: RawMessage, reg: RawMessage): void {
    expect(m.msg).toMatchObject({ type: reg.msg!.type, code: reg.msg!.code });
    expect(m.msg!.messageId).not.toBe(reg.msg!.messageId);
    expect(uintOf(opt(m.msg, OBSERVE))).toBe(1);
    expect(Buffer.from(m.msg!.token).toString('hex')).toBe(Buffer.from(reg.msg!.token).toString('hex'));
    expect(opt(m.msg, 11)).toEqual(opt(reg.msg, 11));
    expect(m.msg!.payload).toEqual(reg.msg!.payload);
  }

  it('cancel() deregisters: GET Observe 1 with the same token, resolved by its response (§3.6)', async () => {
    const p = await peer();
    const a = agent();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/c`, { agent: a }));
    const reg = await p.next();
    expect(reg.msg!.token.length).toBe(8);
    await p.send(reply(reg, 1, 'one'), reg.rinfo.port);
    expect(await take(obs, 1)).toEqual([[1, 'one']]);
    let settled = false;
    const done = obs.cancel().then(() => {
      settled = true;
    });
    expect(obs.closed).toBe(true);
    expect(obs.cancel()).toBe(obs.cancel()); // the same deregistration
    const dereg = await p.next();
    expectDeregistration(dereg, reg);
    await sleep(50);
    expect(settled).toBe(false); // waits for the response
    await p.send(reply(dereg, undefined, 'bye'), dereg.rinfo.port);
    await within(done, 1000, 'the deregistration');
    const { values, error } = await rest(obs);
    expect(values).toEqual([]);
    expect(error).toBeUndefined();
    // nothing is outstanding any more: a late notification with the token gets RST
    expect(a.stats().ipv4!.clientRequests).toBe(0);
    await p.send(note(reg, 0x500, 2, 'two'), reg.rinfo.port);
    expect((await p.next()).msg).toMatchObject({ type: 'RST', code: '0.00', messageId: 0x500 });
  });

  it('deregisters a FETCH observation with the same method, options and payload', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/q`, { agent: agent(), method: 'FETCH', payload: 'which', contentFormat: 'text/plain' }));
    const reg = await p.next();
    expect(reg.msg).toMatchObject({ code: '0.05' });
    expect(fromUtf8(reg.msg!.payload)).toBe('which');
    await p.send(reply(reg, 1, 'one'), reg.rinfo.port);
    expect(await take(obs, 1)).toEqual([[1, 'one']]);
    const done = obs.cancel();
    const dereg = await p.next();
    expectDeregistration(dereg, reg);
    expect(opt(dereg.msg, 12)).toEqual(opt(reg.msg, 12)); // Content-Format
    await p.send(reply(dereg, undefined, ''), dereg.rinfo.port);
    await within(done, 1000, 'the deregistration');
  });

  it('cancel() is bounded: by its timeout, by default by the observation timeout', async () => {
    const p = await peer();
    const a = agent();
    for (const [init, arg] of [
      [{ timeout: 300 }, undefined],
      [{}, { timeout: 300 }],
    ] as const) {
      const obs = watch(observe(`coap://127.0.0.1:${p.port}/silent-later`, { agent: a, ...init }));
      const reg = await p.next();
      await p.send(reply(reg, 1, 'one'), reg.rinfo.port);
      expect(await take(obs, 1)).toEqual([[1, 'one']]);
      const t0 = performance.now();
      await within(obs.cancel(arg), 2000, 'the deregistration');
      const took = performance.now() - t0;
      expect(took).toBeGreaterThanOrEqual(250);
      expectDeregistration(await p.next(), reg); // sent, never answered
      expect(a.stats().ipv4!.clientRequests).toBe(0); // given up
    }
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/x`, { agent: a }));
    await expect(obs.cancel({ timeout: -1 })).rejects.toBeInstanceOf(RangeError);
    expect(obs.closed).toBe(false);
  });

  it('cancel() before any response sends nothing more; a late response gets RST', async () => {
    const p = await peer();
    const a = agent();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/c`, { agent: a }));
    const reg = await p.next();
    await within(obs.cancel(), 100, 'cancel');
    expect(a.stats().ipv4!.clientRequests).toBe(0);
    await p.send(note(reg, 0x510, 1, 'late', '2.05', 'CON'), reg.rinfo.port);
    expect((await p.next()).msg).toMatchObject({ type: 'RST', messageId: 0x510 });
  });

  it('break in for-await deregisters too', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/c`, { agent: agent() }));
    const reg = await p.next();
    await p.send(reply(reg, 1, 'one'), reg.rinfo.port);
    for await (const n of obs) {
      expect(n.text()).toBe('one');
      break;
    }
    expect(obs.closed).toBe(true);
    const dereg = await p.next();
    expectDeregistration(dereg, reg);
    await p.send(reply(dereg, undefined, 'bye'), dereg.rinfo.port);
    await within(obs.cancel(), 1000, 'the deregistration');
  });

  it('re-registers with the same token when Max-Age lapses without a newer notification (§3.3.1)', async () => {
    const p = await peer();
    const a = agent();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/slow`, { agent: a }));
    const reg = await p.next();
    const t0 = Date.now();
    await p.send(reply(reg, 1, 'one', '2.05', [{ number: MAX_AGE, value: uintBytes(1) }]), reg.rinfo.port);
    expect(await take(obs, 1)).toEqual([[1, 'one']]);
    // Max-Age 1 s (+ the client's grace): a new registration, with the same token
    const again = await p.next(6000);
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(5000);
    expect(again.msg).toMatchObject({ type: 'CON', code: '0.01' });
    expect(again.msg!.messageId).not.toBe(reg.msg!.messageId);
    expect(opt(again.msg, OBSERVE)).toEqual(new Uint8Array(0));
    expect(Buffer.from(again.msg!.token).toString('hex')).toBe(Buffer.from(reg.msg!.token).toString('hex'));
    // the old kept request was cancelled for it: one request outstanding
    expect(a.stats().ipv4!.clientRequests).toBe(1);
    await p.send(reply(again, 2, 'two', '2.05', [{ number: MAX_AGE, value: uintBytes(60) }]), again.rinfo.port);
    expect(await take(obs, 1)).toEqual([[2, 'two']]);
    await p.send(note(again, 0x601, 3, 'three'), again.rinfo.port);
    expect(await take(obs, 1)).toEqual([[3, 'three']]);
    expect(a.stats().ipv4!.resetsSent).toBe(0);
    // and the deregistration uses that token too
    const done = obs.cancel();
    const dereg = await p.next();
    expectDeregistration(dereg, reg);
    await p.send(reply(dereg, undefined, 'bye'), dereg.rinfo.port);
    await within(done, 1000, 'the deregistration');
  }, 15_000);

  it('the signal aborts the observation: the iterator throws CoapAbortError', async () => {
    const p = await peer();
    const ctl = new AbortController();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/c`, { agent: agent(), signal: ctl.signal }));
    const reg = await p.next();
    await p.send(reply(reg, 1, 'one'), reg.rinfo.port);
    expect(await take(obs, 1)).toEqual([[1, 'one']]);
    ctl.abort();
    const { values, error } = await rest(obs);
    expect(values).toEqual([]);
    expect(error).toBeInstanceOf(CoapAbortError);
    expectDeregistration(await p.next(), reg); // the relation is ended at the server too
    // unanswered: cancel() returns that deregistration, and its timeout shortens the wait
    const t0 = performance.now();
    await within(obs.cancel({ timeout: 100 }), 1000, 'the deregistration');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it('timeout bounds the wait for the registration response', async () => {
    const p = await peer();
    const obs = watch(observe(`coap://127.0.0.1:${p.port}/silent`, { agent: agent(), timeout: 200 }));
    await p.next();
    const { error } = await rest(obs);
    expect(error).toBeInstanceOf(CoapTimeoutError);
  });
});

// ------------------------------------------------------------------ libcoap interop

const tools = libcoap();
const server = 'missing' in tools ? undefined : tools.server;
if (server === undefined) console.warn(`observe-client: libcoap part SKIPPED (CI is not set): ${(tools as { missing: string }).missing}`);

describe.skipIf(server === undefined)('observe() against libcoap coap-server /time', () => {
  let srv: Peer;
  let base: string;
  beforeAll(async () => {
    const s = await startLibcoapServer(server as string);
    srv = s.peer;
    base = `coap://127.0.0.1:${s.port}`;
  });
  afterAll(async () => {
    await srv?.kill();
    await killAll();
  });

  for (const backend of udpBackends) {
    it(`(${backend}) yields notifications with growing Observe values; cancel() ends the relation`, async () => {
      const a = new Agent({ backend });
      try {
        const obs = observe(`${base}/time`, { agent: a });
        const got = await take(obs, 3, 5000);
        expect(got.length).toBe(3);
        for (const [v, text] of got) {
          expect(v).toBeTypeOf('number');
          expect(text).toMatch(/\d\d:\d\d:\d\d/);
        }
        expect(got[1]![0]!).toBeGreaterThan(got[0]![0]!);
        expect(got[2]![0]!).toBeGreaterThan(got[1]![0]!);
        // the deregistration (GET Observe 1, the same token) is answered...
        const s0 = a.stats().ipv4!;
        await within(obs.cancel(), 3000, 'the deregistration');
        await sleep(200);
        const s1 = a.stats().ipv4!;
        expect(s1.rx).toBeGreaterThan(s0.rx);
        expect(s1.clientRequests).toBe(0);
        // ... and libcoap, which notifies every second, stops: no datagram, no RST needed
        await sleep(2500);
        const s2 = a.stats().ipv4!;
        expect(s2.rx).toBe(s1.rx);
        expect(s2.resetsSent).toBe(0);
      } finally {
        await a.close();
      }
    }, 15_000);
  }

  it('turbocoap get -s 3 prints the notifications, one a line', async () => {
    const r = await runCli(['get', '-s', '3', `${base}/time`], { timeoutMs: 10_000 });
    expect([r.code, r.stderr]).toEqual([0, '']);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/\d\d:\d\d:\d\d/);
  }, 15_000);
});
