/**
 * Misbehaving peers against our RFC 8323 server (public API: createServer + listen({ transport:
 * 'tcp' | 'tls' })) over raw node:net / node:tls sockets, on both backends. Each case checks
 * the RFC's reaction on the wire (the frames the peer receives, split by the codec's TCP
 * deframer and decoded with decode({ transport: 'tcp' })) and that a well-behaved client
 * (request() through an Agent) is served throughout:
 *  - no CSM (Abort after the CSM timeout), a request before the CSM, a CSM option of bad
 *    length, an unknown critical CSM option (Abort with Bad-CSM-Option), a frame over our
 *    Max-Message-Size, garbage bytes: Abort, then the close;
 *  - connections from one host beyond the per-host bound and beyond the total bound: refused
 *    (closed without a CSM), the others served, the table bounded;
 *  - a slow reader that pipelines requests and never reads: its reading stops (paused), other
 *    connections are unaffected, then the idle Ping finds it dead and it is closed;
 *  - a half-open peer (gone without a FIN: it answers nothing, not even a Ping): Ping, then
 *    closed as dead (TIMEOUT);
 *  - more pending requests on one connection than its exchange slots: 5.03 with Max-Age for the
 *    extra ones, the others answered.
 * The abusive sockets connect from other loopback addresses (127.0.0.2 ...) so that the
 * per-host bound they hit is not the good client's (127.0.0.1).
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from '../ts/client';
import type { CoapMessage } from '../ts/codec';
import type { CoapConnection } from '../ts/connection';
import { CoapConnectionError } from '../ts/errors';
import { Router } from '../ts/router';
import { createServer, type CoapServer } from '../ts/server';
import { anyCodec as codec } from './support/backends';
import { udpBackends, within } from './support/udp';

const utf8 = new TextEncoder();

/* ------------------------------------------------------------------ raw peer */

/** A decoded frame the raw peer received. */
interface Frame {
  code: string;
  msg: CoapMessage;
}

const OPT_MMS = 2; // CSM Max-Message-Size; Abort: Bad-CSM-Option
const OPT_BWT = 4; // CSM Block-Wise-Transfer
const OPT_MAX_AGE = 14;

function uint(v: number): Uint8Array {
  const out: number[] = [];
  while (v > 0) {
    out.unshift(v & 0xff);
    v = Math.floor(v / 256);
  }
  return Uint8Array.from(out);
}
function uintOf(b: Uint8Array | undefined): number | undefined {
  if (b === undefined) return undefined;
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}
const opt = (m: CoapMessage, n: number) => m.options.find((o) => o.number === n)?.value;

function tcpMessage(code: string, token: number[], options: { number: number; value: Uint8Array }[] = [], payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  return codec.encode({ code, token: Uint8Array.from(token), options, payload } as CoapMessage, { transport: 'tcp' });
}
const CSM = () => tcpMessage('7.01', [], [{ number: OPT_MMS, value: uint(8192) }, { number: OPT_BWT, value: new Uint8Array(0) }]);
const GET = (path: string, token: number[]) =>
  tcpMessage(
    '0.01',
    token,
    path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => ({ number: 11, value: utf8.encode(s) })),
  );

/** A raw RFC 8323 peer on a net or tls socket: what it receives, deframed and decoded. */
class RawPeer {
  readonly frames: Frame[] = [];
  closed = false;
  error: Error | undefined;
  bytesIn = 0;
  /** Answer Pings (a live peer); false: a dead or half-open one. */
  pong = true;
  private readonly deframer = codec.createDeframer({ maxMessageSize: 1 << 22 });
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;

  constructor(readonly sock: Socket) {
    this.opened = new Promise((res, rej) => {
      sock.once(sock.constructor.name === 'TLSSocket' ? 'secureConnect' : 'connect', () => res());
      sock.once('error', rej);
    });
    sock.on('data', (d: Buffer) => {
      this.bytesIn += d.length;
      try {
        for (const f of this.deframer.push(new Uint8Array(d))) {
          const msg = codec.decode(f, { transport: 'tcp' });
          this.frames.push({ code: msg.code, msg });
          // alive: a Ping gets its Pong (same token), unless the test plays a dead peer
          if (msg.code === '7.02' && this.pong) this.send(tcpMessage('7.03', Array.from(msg.token)));
        }
      } catch (e) {
        this.error = e as Error;
      }
      this.wake();
    });
    sock.on('error', (e) => {
      this.error ??= e;
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async tcp(port: number, localAddress = '127.0.0.2'): Promise<RawPeer> {
    const p = new RawPeer(netConnect({ port, host: '127.0.0.1', localAddress }));
    await p.opened;
    return p;
  }

  static async tls(port: number, psk: { identity: string; key: string }, localAddress = '127.0.0.2'): Promise<RawPeer> {
    const p = new RawPeer(
      tlsConnect({
        port,
        host: '127.0.0.1',
        localAddress,
        ALPNProtocols: ['coap'],
        maxVersion: 'TLSv1.2' as const,
        ciphers: 'PSK-AES128-GCM-SHA256:PSK-AES128-CCM8',
        checkServerIdentity: () => undefined,
        pskCallback: () => ({ identity: psk.identity, psk: Buffer.from(psk.key) }),
      } as ConnectionOptions),
    );
    await p.opened;
    return p;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(b: Uint8Array): void {
    this.sock.write(b);
  }

  /** Waits (bounded) until pred holds. */
  async until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; frames: ${this.frames.map((f) => f.code).join(' ')}; closed ${this.closed}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  frame(code: string): Frame | undefined {
    return this.frames.find((f) => f.code === code);
  }

  close(): void {
    this.sock.destroy();
  }
}

async function waitFor(pred: () => boolean, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/* ------------------------------------------------------------------ the server */

const LIMITS = {
  maxConnections: 48,
  maxConnectionsPerHost: 12,
  csmTimeout: 600,
  idleTimeout: 1000,
  pingTimeout: 2000,
  maxMessageSize: 2048,
  overloadMaxAge: 7,
};
const PSK = { identity: 'abuse', key: 'abuse-key-1' };

describe.each(udpBackends)('stream abuse (%s)', (backend) => {
  let server: CoapServer;
  let port = 0;
  let tlsPort = 0;
  let agent: Agent;
  const conns: CoapConnection[] = [];
  const peers: RawPeer[] = [];
  let hold: Promise<void> = Promise.resolve();
  let release: () => void = () => undefined;

  const raw = async (local?: string) => {
    const p = await RawPeer.tcp(port, local);
    peers.push(p);
    return p;
  };
  const stats = () => server.stats() as unknown as Record<string, number>;
  /** The good client: a request through the agent (its connection comes from 127.0.0.1). */
  const served = async () => {
    const r = await within(request(`coap+tcp://127.0.0.1:${port}/hello`, { agent, timeout: 5000 }), 8000, 'the good client');
    expect(r.code).toBe('2.05');
    expect(r.text()).toBe('hello');
  };
  const connsFrom = (addr: string) => conns.filter((c) => c.remote.address.replace(/^::ffff:/, '') === addr);

  beforeAll(async () => {
    const router = new Router()
      .get('/hello', () => ({ code: '2.05', payload: 'hello' }))
      .get('/kb', () => ({ code: '2.05', payload: new Uint8Array(1000).fill(0x5a) }))
      .get('/held', async () => {
        await hold;
        return { code: '2.05', payload: 'released' };
      });
    server = createServer(router, { backend, ...LIMITS });
    server.on('connection', (c: CoapConnection) => conns.push(c));
    await server.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    await server.listen({ transport: 'tls', port: 0, host: '127.0.0.1', psk: { [PSK.identity]: PSK.key } });
    port = server.address('tcp').port;
    tlsPort = server.address('tls').port;
    expect(server.backend).toBe(backend);
    agent = new Agent({ backend });
    await served();
  });

  afterEach(() => {
    for (const p of peers.splice(0)) p.close();
  });

  afterAll(async () => {
    release();
    await agent?.close();
    await server?.close();
  });

  it('no CSM: our CSM, then Abort once the CSM timeout passes, then the close', async () => {
    const p = await raw();
    await p.until(() => p.frame('7.01') !== undefined, 'our CSM');
    expect(uintOf(opt(p.frames[0]!.msg, OPT_MMS))).toBe(LIMITS.maxMessageSize);
    await p.until(() => p.closed, 'the close', 5000);
    expect(p.frames.map((f) => f.code)).toEqual(['7.01', '7.05']);
    await served();
  });

  it('a request before the CSM: Abort, close, no response', async () => {
    const p = await raw();
    p.send(GET('/hello', [1]));
    await p.until(() => p.closed, 'the close');
    expect(p.frames.map((f) => f.code)).toEqual(['7.01', '7.05']);
    await served();
  });

  it('a CSM option of bad length: Abort with Bad-CSM-Option, close', async () => {
    const p = await raw();
    // Max-Message-Size is a uint of 0..4 bytes: 5 is a bad length
    p.send(tcpMessage('7.01', [], [{ number: OPT_MMS, value: Uint8Array.of(1, 0, 0, 0, 0) }]));
    await p.until(() => p.closed, 'the close');
    const abort = p.frame('7.05');
    expect(abort).toBeDefined();
    expect(uintOf(opt(abort!.msg, OPT_MMS))).toBe(OPT_MMS);
    expect(p.frame('2.05')).toBeUndefined();
  });

  it('an unknown critical CSM option: Abort with Bad-CSM-Option naming it, close', async () => {
    const p = await raw();
    p.send(tcpMessage('7.01', [], [{ number: OPT_MMS, value: uint(4096) }, { number: 9, value: Uint8Array.of(1) }]));
    p.send(GET('/hello', [2]));
    await p.until(() => p.closed, 'the close');
    const abort = p.frame('7.05');
    expect(abort).toBeDefined();
    expect(uintOf(opt(abort!.msg, OPT_MMS))).toBe(9);
    expect(p.frame('2.05')).toBeUndefined();
    await served();
  });

  it('a frame over our Max-Message-Size: Abort before it is read, close', async () => {
    const p = await raw();
    p.send(CSM());
    p.send(GET('/hello', [3]));
    await p.until(() => p.frame('2.05') !== undefined, 'the response to a good request');
    // Len 14: a 2-byte extended length, 60000 + 269 bytes announced; only the start is sent
    const head = Uint8Array.of(0xe1, (60000 >> 8) & 0xff, 60000 & 0xff, 0x02, 0x07);
    p.send(head);
    p.send(new Uint8Array(4096).fill(0x41));
    await p.until(() => p.closed, 'the close');
    expect(p.frame('7.05')).toBeDefined();
    await served();
  });

  it('garbage bytes: Abort (or at least the close), never a crash; others served', async () => {
    for (let i = 0; i < 8; i++) {
      const p = await raw();
      const junk = new Uint8Array(randomBytes(64 + i * 97));
      junk[0] = 0xf0 | (junk[0]! & 0x0f); // reserved-ish header first
      p.send(junk);
      await p.until(() => p.closed, `the close of garbage peer ${i}`);
      expect(p.frames[0]?.code).toBe('7.01');
      expect(p.frames.every((f) => f.code === '7.01' || f.code === '7.05')).toBe(true);
    }
    // garbage after a valid CSM
    const q = await raw();
    q.send(CSM());
    q.send(Uint8Array.of(0x0f, 0x01, 0xff, 0xff, 0xff)); // TKL 15 is reserved
    await q.until(() => q.closed, 'the close');
    expect(q.frame('7.05')).toBeDefined();
    await served();
  });

  it('connections beyond the per-host bound are refused (closed without a CSM); other hosts served', async () => {
    const before = stats();
    const ps: RawPeer[] = [];
    for (let i = 0; i < LIMITS.maxConnectionsPerHost + 4; i++) {
      const p = await raw('127.0.0.5');
      p.send(CSM());
      ps.push(p);
    }
    await Promise.all(ps.map((p) => p.until(() => p.frames.length > 0 || p.closed, 'a CSM or the close')));
    const accepted = ps.filter((p) => p.frame('7.01') !== undefined && !p.closed);
    const refused = ps.filter((p) => p.closed);
    expect(accepted.length).toBe(LIMITS.maxConnectionsPerHost);
    expect(refused.length).toBe(4);
    for (const p of refused) expect(p.frames).toEqual([]);
    const after = stats();
    // both hosts count a refusal by the per-host bound the same way
    expect((after.refusedHost ?? 0) - (before.refusedHost ?? 0)).toBeGreaterThanOrEqual(4);
    expect((after.refused ?? 0) - (before.refused ?? 0)).toBeGreaterThanOrEqual(4);
    // the accepted ones work
    accepted[0]!.send(GET('/hello', [9]));
    await accepted[0]!.until(() => accepted[0]!.frame('2.05') !== undefined, 'a response on an accepted connection');
    await served();
    for (const p of ps) p.close();
  });

  it('hundreds of idle connections: bounded by the total, the table and memory bounded, the good client served', async () => {
    await served(); // the agent's connection exists before the flood
    const ps: RawPeer[] = [];
    const hosts = ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15'];
    const attempts = 200;
    for (let i = 0; i < attempts; i++) {
      try {
        const p = await raw(hosts[i % hosts.length]);
        p.send(CSM());
        ps.push(p);
      } catch {
        /* a refused connect also counts as refused */
      }
    }
    await Promise.all(ps.map((p) => p.until(() => p.frames.length > 0 || p.closed, 'a CSM or the close')));
    const open = ps.filter((p) => !p.closed && p.frame('7.01') !== undefined);
    // the bounds: total (the agent's connection among them) and per host
    expect(open.length).toBeLessThanOrEqual(LIMITS.maxConnections);
    for (const h of hosts) expect(open.filter((p) => p.sock.localAddress === h).length).toBeLessThanOrEqual(LIMITS.maxConnectionsPerHost);
    expect(open.length).toBeGreaterThan(0);
    const st = stats();
    expect(st.conns).toBeLessThanOrEqual(LIMITS.maxConnections);
    expect(st.refused).toBeGreaterThan(0);
    expect(st.refusedTotal).toBeGreaterThan(0);
    await served();
    for (const p of ps) p.close();
    // their slots come back
    await waitFor(() => stats().conns <= 2, 'the table to empty', 5000);
    await served();
  });

  it('a slow reader pipelining requests: 2.05 then 5.03 with Max-Age, others unaffected, then it is closed as dead', async () => {
    const p = await raw('127.0.0.6');
    p.pong = false;
    p.send(CSM());
    await p.until(() => p.frame('7.01') !== undefined, 'our CSM');
    p.sock.pause(); // never reads from now on
    let sent = 0;
    const t0 = Date.now();
    // pipeline requests for 1 kB responses until the kernel stops taking them (or 20 MB)
    // each request carries two 200-byte Uri-Query options (Uri-Query is at most 255 bytes)
    const query = { number: 15, value: new Uint8Array(200).fill(0x71) };
    const kb = (t: number) => tcpMessage('0.01', [(t >> 16) & 0xff, (t >> 8) & 0xff, t & 0xff], [{ number: 11, value: utf8.encode('kb') }, query, query]);
    while (Date.now() - t0 < 3000 && !p.closed) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 200; i++, sent++) batch.push(kb(sent));
      if (!p.sock.write(Buffer.concat(batch))) {
        await new Promise((r) => setTimeout(r, 50));
        if (p.sock.writableLength > 2 << 20) break; // the server stopped reading: our output backs up
      }
    }
    expect(sent).toBeGreaterThan(1000);
    // others are served meanwhile
    await served();
    // (while its output drains into the kernel's socket buffer the server keeps reading and
    // answers what has no exchange slot with a small 5.03; it pauses the socket once that
    // buffer is full: seen on the native host as `paused`, not asserted: it depends on timing)
    // the idle Ping finds no room / no Pong: the connection is closed as dead
    const c = connsFrom('127.0.0.6');
    expect(c.length).toBe(1);
    const closed = await within(
      new Promise<unknown>((res) => (c[0]!.closed ? res(c[0]!._closeError) : c[0]!.once('close', res))),
      LIMITS.idleTimeout + LIMITS.pingTimeout + 5000,
      'the slow reader closed',
    );
    expect((closed as { code?: string } | undefined)?.code).toBe('TIMEOUT');
    // what it was sent: 2.05 while its output had room, then 5.03 with Max-Age (its exchange
    // slots held by responses it does not read), a Ping, the Abort; nothing else
    p.sock.resume();
    await p.until(() => p.closed, 'the rest of the stream', 10_000);
    const codes = new Set(p.frames.map((f) => f.code));
    for (const c of codes) expect(['7.01', '2.05', '5.03', '7.02', '7.05']).toContain(c);
    expect(codes.has('2.05')).toBe(true);
    for (const f of p.frames.filter((x) => x.code === '5.03').slice(0, 50)) expect(uintOf(opt(f.msg, OPT_MAX_AGE))).toBe(LIMITS.overloadMaxAge);
    // (the Abort is queued behind output this peer never read: the host writes it if the
    // socket takes it, and drops it with the socket after the linger bound, as a dead peer's)
    const last = p.frames.at(-1)?.code;
    expect(['2.05', '5.03', '7.02', '7.05']).toContain(last);
    await served();
  });

  it('a half-open peer (answers nothing, not even a Ping): Ping on the wire, then closed as dead', async () => {
    const p = await raw('127.0.0.7');
    p.pong = false;
    p.send(CSM());
    p.send(GET('/hello', [4]));
    await p.until(() => p.frame('2.05') !== undefined, 'the response');
    // then silence: the server Pings after idleTimeout and closes after pingTimeout
    await p.until(() => p.frame('7.02') !== undefined, 'a Ping', LIMITS.idleTimeout + 3000);
    await p.until(() => p.closed, 'the close', LIMITS.pingTimeout + 3000);
    const c = connsFrom('127.0.0.7');
    expect(c.length).toBe(1);
    expect(c[0]!.closed).toBe(true);
    expect(c[0]!._closeError?.code).toBe('TIMEOUT');
    await served();
  });

  it('a peer that answers Pings stays open past the idle timeout', async () => {
    const p = await raw('127.0.0.8');
    p.send(CSM());
    const pings = () => p.frames.filter((x) => x.code === '7.02').length;
    await p.until(() => pings() >= 2, 'two Pings answered', 3 * (LIMITS.idleTimeout + LIMITS.pingTimeout) + 2000);
    expect(p.closed).toBe(false);
    p.send(GET('/hello', [5]));
    await p.until(() => p.frame('2.05') !== undefined, 'a response after the Pings');
  });

  it('more pending requests than exchange slots: 5.03 with Max-Age for the extra ones, the rest answered', async () => {
    hold = new Promise<void>((r) => (release = r));
    const p = await raw('127.0.0.9');
    p.send(CSM());
    const n = 40;
    const reqs: Uint8Array[] = [];
    for (let i = 0; i < n; i++) reqs.push(GET('/held', [0x70, i]));
    p.send(Buffer.concat(reqs));
    await p.until(() => p.frames.filter((f) => f.code === '5.03').length > 0, 'a 5.03');
    await new Promise((r) => setTimeout(r, 300));
    const busy = p.frames.filter((f) => f.code === '5.03');
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.length).toBeLessThan(n);
    for (const f of busy) expect(uintOf(opt(f.msg, OPT_MAX_AGE))).toBe(LIMITS.overloadMaxAge);
    expect(p.frames.filter((f) => f.code === '2.05')).toEqual([]);
    release();
    await p.until(() => p.frames.filter((f) => f.code === '2.05' || f.code === '5.03').length === n, 'every request answered');
    const ok = p.frames.filter((f) => f.code === '2.05');
    expect(ok.length + busy.length).toBe(n);
    // each token answered once
    const tokens = p.frames.filter((f) => f.code === '2.05' || f.code === '5.03').map((f) => f.msg.token[1]);
    expect(new Set(tokens).size).toBe(n);
    await served();
  });

  it('TLS: no CSM after the handshake -> Abort; garbage inside TLS -> Abort; a wrong PSK never reaches CoAP', async () => {
    const p = await RawPeer.tls(tlsPort, PSK, '127.0.0.20');
    peers.push(p);
    await p.until(() => p.closed, 'the close', 5000);
    expect(p.frames.map((f) => f.code)).toEqual(['7.01', '7.05']);
    const q = await RawPeer.tls(tlsPort, PSK, '127.0.0.20');
    peers.push(q);
    q.send(CSM());
    q.send(Uint8Array.of(0x0f, 0x01, 0xff, 0xff));
    await q.until(() => q.closed, 'the close');
    expect(q.frame('7.05')).toBeDefined();
    const bad = await RawPeer.tls(tlsPort, { identity: PSK.identity, key: 'wrong' }, '127.0.0.20').then(
      (x) => {
        peers.push(x);
        return x.until(() => x.closed, 'the close').then(() => x);
      },
      () => undefined,
    );
    expect(bad === undefined || bad.frames.length === 0).toBe(true);
    await served();
  });
});

/* ------------------------------------------------------------------ a misbehaving server */

/**
 * Our client against raw servers that break RFC 8323: one that never sends its CSM, one whose
 * response is larger than the Max-Message-Size our CSM announced, one that sends garbage.
 * The request fails with a typed error (CoapConnectionError PROTOCOL) and our client aborts
 * (7.05 on the wire) instead of hanging or buffering without bound.
 */
describe.each(udpBackends)('stream abuse: misbehaving servers against our client (%s)', (backend) => {
  const servers: NetServer[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  /** A raw server; `onFrame` answers each decoded frame the client sends. */
  async function rawServer(onFrame: (f: Frame, sock: Socket) => void, sendCsm = true): Promise<{ port: number; got: Frame[] }> {
    const got: Frame[] = [];
    const srv = createNetServer((sock) => {
      const d = codec.createDeframer({ maxMessageSize: 1 << 20 });
      if (sendCsm) sock.write(CSM());
      sock.on('data', (b: Buffer) => {
        for (const f of d.push(new Uint8Array(b))) {
          const msg = codec.decode(f, { transport: 'tcp' });
          const fr = { code: msg.code, msg };
          got.push(fr);
          onFrame(fr, sock);
        }
      });
      sock.on('error', () => undefined);
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { port: (srv.address() as { port: number }).port, got };
  }

  /** The request's failure; the agent closes at once, and `got` still receives our Abort. */
  async function failure(port: number, got: Frame[]): Promise<unknown> {
    const agent = new Agent({ backend, maxMessageSize: 2048, csmTimeout: 500 });
    let closed = false;
    try {
      const e = await within(
        request(`coap+tcp://127.0.0.1:${port}/x`, { agent, timeout: 4000 }).then(
          (r) => new Error(`unexpected response ${r.code}`),
          (err: unknown) => err,
        ),
        8000,
        'the request to fail',
      );
      // closing right after the connection error: the Abort it queued is sent all the same
      await agent.close();
      closed = true;
      await waitFor(() => got.some((f) => f.code === '7.05'), 'our Abort', 3000);
      return e;
    } finally {
      if (!closed) await agent.close();
    }
  }

  it('a server that never sends its CSM: the request fails, our client aborts', async () => {
    const { port, got } = await rawServer(() => undefined, false);
    const e = await failure(port, got);
    expect(e).toBeInstanceOf(CoapConnectionError);
    expect(['PROTOCOL', 'TIMEOUT']).toContain((e as CoapConnectionError).code);
  });

  it('a response over our Max-Message-Size: PROTOCOL, Abort', async () => {
    const { port, got } = await rawServer((f, sock) => {
      if (f.code === '0.01') sock.write(tcpMessage('2.05', Array.from(f.msg.token), [], new Uint8Array(100_000).fill(1)));
    });
    const e = await failure(port, got);
    expect(e).toBeInstanceOf(CoapConnectionError);
    expect((e as CoapConnectionError).code).toBe('PROTOCOL');
  });

  it('garbage instead of a response: PROTOCOL, Abort', async () => {
    const { port, got } = await rawServer((f, sock) => {
      if (f.code === '0.01') sock.write(Uint8Array.of(0x0f, 0x45, 0xff, 0xff, 0xff, 0xff));
    });
    const e = await failure(port, got);
    expect(e).toBeInstanceOf(CoapConnectionError);
    expect((e as CoapConnectionError).code).toBe('PROTOCOL');
  });
});
