/**
 * CoAP over TCP and TLS (RFC 8323) interop with libcoap 4.3 (Debian libcoap3-bin), loopback
 * only, through the public API and the CLI, on both backends:
 *  - libcoap's coap-client-notls / coap-client-openssl against our server (`createServer` +
 *    `listen({ transport: 'tcp' | 'tls' })`): GET, PUT, a 1 MiB block-wise download, a 300 kB
 *    upload (BERT, RFC 8323 §6, when both CSMs allow it; plain 1 KiB blocks with `-b`),
 *    observe (`-s`), PSK, certificates (server and mutual), a wrong PSK and an untrusted
 *    certificate;
 *  - our client (`request()`, `observe()` through an Agent on each backend) against
 *    coap-server-notls / coap-server-openssl: the same, plus typed errors (PSK, VERIFY);
 *  - our CLI as the client (`get coaps+tcp://… --psk`, `-o`, `-f`, exit 3 on a failed
 *    handshake) and as the server (`serve --listen coap+tcp://… --listen coaps+tcp://… --psk`).
 * Certificates are made at test time by openssl (test/support/pki.ts).
 *
 * In CI (CI=true) a missing libcoap binary or openssl fails the suite; locally the suite is
 * skipped with the reason printed.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect as netConnect, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from '../ts/client';
import { CoapConnectionError } from '../ts/errors';
import { observe } from '../ts/observe';
import { Router } from '../ts/router';
import { createServer, type CoapServer, type ListenOptions } from '../ts/server';
import type { CoapConnection } from '../ts/connection';
import { makePki, type Pki } from './support/pki';
import { findBinary, freePort, inCI, killAll, runCli, runCoapClient, sleep, spawnPeer, waitForCoap, type Peer } from './support/peers';
import { udpBackends, within } from './support/udp';

/* ------------------------------------------------------------------ peers */

const BIN = {
  clientNotls: findBinary('coap-client-notls'),
  clientTls: findBinary('coap-client-openssl'),
  serverNotls: findBinary('coap-server-notls'),
  serverTls: findBinary('coap-server-openssl'),
  openssl: findBinary('openssl'),
};
const missing = Object.entries(BIN)
  .filter(([, v]) => v === undefined)
  .map(([k]) => ({ clientNotls: 'coap-client-notls', clientTls: 'coap-client-openssl', serverNotls: 'coap-server-notls', serverTls: 'coap-server-openssl', openssl: 'openssl' })[k]);
if (missing.length > 0) {
  const why = `${missing.join(', ')} not found on PATH (apt-get install libcoap3-bin openssl)`;
  if (inCI) throw new Error(`CI: interop-tcp: ${why}`);
  console.warn(`interop-tcp: SKIPPED (CI is not set): ${why}`);
}
const skip = missing.length > 0;
const bin = BIN as Record<keyof typeof BIN, string>;

const PSK_ID = 'interop-client';
const PSK_KEY = 'interop-secret-7';
const WRONG_KEY = 'not-the-key';

/** A deterministic body of n bytes. */
function body(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const LARGE = body(1 << 20, 11);
const UPLOAD = body(300_000, 12);

let pki: Pki;
let work = '';

beforeAll(() => {
  if (skip) return;
  pki = makePki(bin.openssl);
  work = pki.dir;
  writeFileSync(join(work, 'upload.bin'), UPLOAD);
});

afterAll(async () => {
  await killAll();
  pki?.remove();
});

/** coap-client (`which`), waiting up to `wait` s for a response (-B). */
function coapClient(which: 'notls' | 'tls', args: readonly string[], wait = 10, timeoutMs = 40_000) {
  return runCoapClient(which === 'tls' ? bin.clientTls : bin.clientNotls, args, wait, timeoutMs);
}

/** The frames of an RFC 8323 byte stream that are complete: [code, header+token length, body length]. */
function csmArrived(chunks: Buffer): boolean {
  // The first frame of a server is its CSM (code 7.01 = 0xe1).
  if (chunks.length < 2) return false;
  const len = chunks[0]! >> 4;
  const ext = len === 13 ? 1 : len === 14 ? 2 : len === 15 ? 4 : 0;
  return chunks.length > 1 + ext && chunks[1 + ext] === 0xe1;
}

/** Resolves once a TCP connection to port gets the server's CSM (an RFC 8323 server is up). */
async function waitForTcpCoap(port: number, timeoutMs: number, proc?: Peer): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${proc.name} exited (code ${proc.exitCode})\n${proc.output()}`);
    const ok = await new Promise<boolean>((res) => {
      let got = Buffer.alloc(0);
      const s = netConnect(port, '127.0.0.1');
      const done = (v: boolean) => {
        clearTimeout(t);
        s.destroy();
        res(v);
      };
      const t = setTimeout(() => done(false), 500);
      s.on('connect', () => s.write(Buffer.from([0x00, 0xe1]))); // an empty CSM
      s.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (csmArrived(got)) done(true);
      });
      s.on('error', () => done(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`no RFC 8323 server answered on 127.0.0.1:${port} within ${timeoutMs} ms${proc ? `\n${proc.output()}` : ''}`);
}

/** Resolves once a TCP connect to port succeeds. */
async function waitForTcpListen(port: number, timeoutMs: number, proc?: Peer): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${proc.name} exited (code ${proc.exitCode})\n${proc.output()}`);
    const ok = await new Promise<boolean>((res) => {
      const s = netConnect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on TCP 127.0.0.1:${port} after ${timeoutMs} ms${proc ? `\n${proc.output()}` : ''}`);
}

/**
 * A port p with p and p + 1 free for UDP and TCP and in no TCP socket at all (libcoap binds its
 * TCP listeners without SO_REUSEADDR: a port in TIME-WAIT, e.g. after a load test on the same
 * machine, fails with EADDRINUSE). Picked below the ephemeral range.
 */
async function quietPortPair(): Promise<number> {
  const used = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      for (const c of [cols[1], cols[2]]) if (c !== undefined && c.includes(':')) used.add(parseInt(c.split(':')[1] as string, 16));
    }
  }
  for (let attempt = 0; attempt < 200; attempt++) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (used.has(p) || used.has(p + 1)) continue;
    const free = await Promise.all([p, p + 1].map(async (q) => (await freePortIs(q)) && (await tcpPortIs(q))));
    if (free.every(Boolean)) return p;
  }
  return freePort('127.0.0.1', true);
}

function freePortIs(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createSocket('udp4');
    s.once('error', () => res(false));
    s.bind(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

function tcpPortIs(port: number): Promise<boolean> {
  return new Promise((res) => {
    const t = createTcpServer();
    t.once('error', () => res(false));
    t.listen(port, '127.0.0.1', () => t.close(() => res(true)));
  });
}

/* ------------------------------------------------------------------ our server */

interface OurServer {
  server: CoapServer;
  tcp: number;
  tls: number;
  /** the connections the server saw, with their identity */
  conns: CoapConnection[];
  /** uploads received: length and sha256 */
  uploads: { length: number; sha: string }[];
  obsTimer: NodeJS.Timeout;
}

function router(uploads: OurServer['uploads']): Router {
  const store = new Map<string, { payload: Uint8Array; format?: number }>();
  let tick = 0;
  return new Router()
    .get('/hello', () => ({ code: '2.05', payload: 'Hello, CoAP!' }))
    .get('/large', () => ({ code: '2.05', payload: LARGE }))
    .put('/upload', (req) => {
      uploads.push({ length: req.payload.length, sha: sha(req.payload) });
      return { code: '2.04', payload: `${req.payload.length} ${sha(req.payload)}` };
    })
    .get('/store/:key', (req) => {
      const v = store.get(req.params.key as string);
      return v === undefined ? { code: '4.04' } : { code: '2.05', payload: v.payload };
    })
    .put('/store/:key', (req) => {
      const created = !store.has(req.params.key as string);
      store.set(req.params.key as string, { payload: req.payload });
      return { code: created ? '2.01' : '2.04' };
    })
    .get('/obs', () => ({ code: '2.05', payload: `tick ${++tick}` }), { obs: true });
}

async function startOurServer(backend: 'native' | 'wasm', tls: Partial<ListenOptions>): Promise<OurServer> {
  const uploads: OurServer['uploads'] = [];
  // maxMessageSize above 1152 lets BERT carry more than one KiB per message.
  const server = createServer(router(uploads), { backend, maxMessageSize: 16384 });
  const conns: CoapConnection[] = [];
  server.on('connection', (c: CoapConnection) => conns.push(c));
  await server.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
  await server.listen({ transport: 'tls', port: 0, host: '127.0.0.1', ...tls });
  const obsTimer = setInterval(() => {
    try {
      server.resource('/obs').notify();
    } catch {
      /* not listening any more */
    }
  }, 300);
  return { server, tcp: server.address('tcp').port, tls: server.address('tls').port, conns, uploads, obsTimer };
}

async function stopOurServer(s: OurServer | undefined): Promise<void> {
  if (s === undefined) return;
  clearInterval(s.obsTimer);
  await s.server.close();
}

const libcoapPsk = ['-u', PSK_ID, '-k', PSK_KEY];

describe.skipIf(skip).each(udpBackends)('libcoap coap-client → turbocoap server over TCP and TLS (%s)', (backend) => {
  let ours: OurServer;
  let mutual: OurServer;

  beforeAll(async () => {
    ours = await startOurServer(backend, { psk: { [PSK_ID]: PSK_KEY }, cert: pki.serverCert.pem, key: pki.serverKey.pem });
    mutual = await startOurServer(backend, { cert: pki.serverCert.pem, key: pki.serverKey.pem, ca: pki.ca.pem, requestCert: true });
    expect(ours.server.backend).toBe(backend);
  });

  afterAll(async () => {
    await stopOurServer(ours);
    await stopOurServer(mutual);
  });

  const tcp = (path: string) => `coap+tcp://127.0.0.1:${ours.tcp}${path}`;
  const tls = (path: string, s = ours) => `coaps+tcp://127.0.0.1:${s.tls}${path}`;

  it('GET over coap+tcp, coaps+tcp with PSK, with the server certificate, and with mutual certificates', async () => {
    let r = await coapClient('notls', [tcp('/hello')]);
    expect([r.code, r.body]).toEqual([0, 'Hello, CoAP!']);
    r = await coapClient('tls', [...libcoapPsk, tls('/hello')]);
    expect(r.body).toBe('Hello, CoAP!');
    expect(ours.conns.some((c) => c.transport === 'tls' && c.identity === PSK_ID)).toBe(true);
    r = await coapClient('tls', ['-R', pki.ca.file, tls('/hello')]);
    expect(r.body).toBe('Hello, CoAP!');
    r = await coapClient('tls', ['-c', pki.clientCert.file, '-j', pki.clientKey.file, '-C', pki.ca.file, tls('/hello', mutual)]);
    expect(r.body).toBe('Hello, CoAP!');
    expect(mutual.conns.some((c) => c.transport === 'tls' && c.identity === pki.clientCn)).toBe(true);
  });

  it('PUT then GET, over TCP and TLS; 4.04 before', async () => {
    let r = await coapClient('notls', [tcp('/store/a')]);
    expect(r.stderr.trim()).toBe('4.04');
    r = await coapClient('notls', ['-m', 'put', '-e', 'over-tcp', tcp('/store/a')]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    r = await coapClient('notls', [tcp('/store/a')]);
    expect(r.body).toBe('over-tcp');
    r = await coapClient('tls', [...libcoapPsk, '-m', 'put', '-e', 'over-tls', tls('/store/a')]);
    expect(r.code).toBe(0);
    r = await coapClient('tls', [...libcoapPsk, tls('/store/a')]);
    expect(r.body).toBe('over-tls');
  });

  it('1 MiB block-wise download over TCP (default and -b 512) and over TLS', async () => {
    const out = join(work, `large-${backend}.bin`);
    const fresh = (): string => {
      rmSync(out, { force: true });
      return out;
    };
    let r = await coapClient('notls', ['-o', fresh(), tcp('/large')], 20, 60_000);
    expect(r.code).toBe(0);
    expect(sha(readFileSync(out))).toBe(sha(LARGE));
    r = await coapClient('notls', ['-b', '512', '-v', '7', '-o', fresh(), tcp('/large')], 20, 60_000);
    expect(sha(readFileSync(out))).toBe(sha(LARGE));
    expect(r.dump).toMatch(/c:2\.05 .*Block2:1\/M\/512/);
    r = await coapClient('tls', [...libcoapPsk, '-o', fresh(), tls('/large')], 20, 60_000);
    expect(sha(readFileSync(out))).toBe(sha(LARGE));
  });

  it('300 kB upload: BERT (SZX 7) when both CSMs offer it, 1 KiB blocks with -b 1024', async () => {
    const file = join(work, 'upload.bin');
    const blocksIn = () => ours.server.stats()?.blocksIn ?? 0;
    let before = blocksIn();
    let r = await coapClient('notls', ['-m', 'put', '-f', file, '-v', '7', tcp('/upload')], 20, 60_000);
    expect(r.dump).toMatch(/Block1:0\/M\/BERT/); // libcoap used BERT: our CSM offered it
    expect(r.dump).toMatch(/c:2\.04 /);
    expect(ours.uploads.at(-1)).toEqual({ length: UPLOAD.length, sha: sha(UPLOAD) });
    const bertMessages = blocksIn() - before;
    // BERT messages carry many KiB each: far fewer messages than 1 KiB blocks (293)
    expect(bertMessages).toBeGreaterThan(0);
    expect(bertMessages).toBeLessThan(100);

    before = blocksIn();
    r = await coapClient('notls', ['-m', 'put', '-b', '1024', '-f', file, '-v', '7', tcp('/upload')], 20, 60_000);
    expect(r.dump).toMatch(/Block1:0\/M\/1024/);
    expect(r.dump).not.toMatch(/BERT/);
    expect(ours.uploads.at(-1)).toEqual({ length: UPLOAD.length, sha: sha(UPLOAD) });
    expect(blocksIn() - before).toBeGreaterThanOrEqual(Math.ceil(UPLOAD.length / 1024) - 1);

    r = await coapClient('tls', [...libcoapPsk, '-m', 'put', '-f', file, tls('/upload')], 20, 60_000);
    expect(r.body).toBe(`${UPLOAD.length} ${sha(UPLOAD)}`);
  });

  it('observe (-s): notifications over TCP and TLS', async () => {
    for (const [which, uri, extra] of [
      ['notls', tcp('/obs'), []],
      ['tls', tls('/obs'), libcoapPsk],
    ] as const) {
      const r = await coapClient(which, [...extra, '-w', '-s', '3', uri], 5, 20_000);
      const ticks = r.stdout.split('\n').filter((l) => /^tick \d+$/.test(l));
      expect(ticks.length, r.dump).toBeGreaterThanOrEqual(3);
      expect(new Set(ticks).size).toBe(ticks.length); // each a new state
    }
  });

  it('a wrong PSK and an untrusted server certificate fail the handshake: no response', async () => {
    const before = ours.conns.length;
    let r = await coapClient('tls', ['-u', PSK_ID, '-k', WRONG_KEY, tls('/hello')], 3, 20_000);
    expect(r.stdout).not.toContain('Hello, CoAP!');
    r = await coapClient('tls', ['-u', 'stranger', '-k', PSK_KEY, tls('/hello')], 3, 20_000);
    expect(r.stdout).not.toContain('Hello, CoAP!');
    r = await coapClient('tls', ['-R', pki.otherCa.file, tls('/hello')], 3, 20_000);
    expect(r.stdout).not.toContain('Hello, CoAP!');
    // a client without a certificate is refused by a server that requires one
    r = await coapClient('tls', ['-R', pki.ca.file, tls('/hello', mutual)], 3, 20_000);
    expect(r.stdout).not.toContain('Hello, CoAP!');
    expect(ours.conns.length).toBe(before); // none of them became a connection
    // and the server still serves
    r = await coapClient('tls', [...libcoapPsk, tls('/hello')]);
    expect(r.body).toBe('Hello, CoAP!');
  });
});

/* ------------------------------------------------------------------ libcoap's server */

interface LibcoapServer {
  peer: Peer;
  /** TCP port; TLS is on port + 1 */
  port: number;
}

/**
 * coap-server-openssl (or -notls) on 127.0.0.1: TCP on PORT, TLS on PORT+1 (PSK and the
 * server certificate both), dynamic resources (-d), the exchange logged at -v 7.
 */
async function startLibcoap(extra: readonly string[] = []): Promise<LibcoapServer> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await quietPortPair();
    const peer = spawnPeer('coap-server-openssl', bin.serverTls, [
      '-A', '127.0.0.1', '-p', String(port), '-v', '7', '-d', '20',
      '-k', PSK_KEY, '-h', 'hint', '-c', pki.serverCert.file, '-j', pki.serverKey.file, ...extra,
    ]);
    try {
      await waitForCoap('127.0.0.1', port, 10_000, peer);
      await waitForTcpCoap(port, 5_000, peer);
      await waitForTcpListen(port + 1, 5_000, peer); // TLS: no CSM before a handshake
      return { peer, port };
    } catch (e) {
      last = e;
      await peer.kill();
    }
  }
  throw last;
}

describe.skipIf(skip).each(udpBackends)('turbocoap client → libcoap coap-server over TCP and TLS (%s)', (backend) => {
  let lc: LibcoapServer;
  let lcMutual: LibcoapServer;
  let agent: Agent;

  beforeAll(async () => {
    lc = await startLibcoap();
    lcMutual = await startLibcoap(['-C', pki.ca.file]);
    agent = new Agent({ backend, maxMessageSize: 16384 });
  });

  afterAll(async () => {
    await agent?.close();
    await lc?.peer.kill();
    await lcMutual?.peer.kill();
  });

  const psk = { identity: PSK_ID, key: PSK_KEY };
  const tcp = (p: string) => `coap+tcp://127.0.0.1:${lc.port}${p}`;
  const tls = (p: string, s = lc) => `coaps+tcp://127.0.0.1:${s.port + 1}${p}`;

  it('GET / over coap+tcp, coaps+tcp with PSK, with the CA, and with a client certificate', async () => {
    let r = await request(tcp('/'), { agent, timeout: 5000 });
    expect(agent.backend).toBe(backend);
    expect(r.code).toBe('2.05');
    expect(r.text()).toContain('This is a test server made with libcoap');
    r = await request(tls('/'), { agent, psk, timeout: 5000 });
    expect(r.text()).toContain('libcoap');
    r = await request(tls('/'), { agent, ca: pki.ca.pem, timeout: 5000 });
    expect(r.text()).toContain('libcoap');
    r = await request(tls('/', lcMutual), { agent, ca: pki.ca.pem, cert: pki.clientCert.pem, key: pki.clientKey.pem, timeout: 5000 });
    expect(r.text()).toContain('libcoap');
  });

  it('PUT /example_data then GET it back (TCP and TLS)', async () => {
    for (const [uri, sec] of [
      [tcp, {}],
      [tls, { psk }],
    ] as const) {
      const v = `turbocoap-${backend}-${Math.random()}`;
      const put = await request(uri('/example_data'), { agent, method: 'PUT', payload: v, contentFormat: 'text/plain', timeout: 5000, ...sec });
      expect(put.code).toMatch(/^2\.0[14]$/);
      const r = await request(uri('/example_data'), { agent, timeout: 5000, ...sec });
      expect(r.text()).toBe(v);
    }
  });

  it('a 300 kB upload and a 1 MiB download through a dynamic resource (block-wise, TCP and TLS)', async () => {
    const put = await within(request(tcp(`/up-${backend}`), { agent, method: 'PUT', payload: UPLOAD, timeout: 20_000 }), 60_000, 'upload');
    expect(put.code).toMatch(/^2\.0[14]$/);
    let r = await within(request(tcp(`/up-${backend}`), { agent, timeout: 20_000 }), 60_000, 'download');
    expect(r.payload.length).toBe(UPLOAD.length);
    expect(sha(r.payload)).toBe(sha(UPLOAD));

    const big = await within(request(tls(`/big-${backend}`), { agent, psk, method: 'PUT', payload: LARGE, timeout: 30_000 }), 90_000, '1 MiB upload');
    expect(big.code).toMatch(/^2\.0[14]$/);
    r = await within(request(tls(`/big-${backend}`), { agent, psk, maxBodySize: 2 << 20, timeout: 30_000 }), 90_000, '1 MiB download');
    expect(r.payload.length).toBe(LARGE.length);
    expect(sha(r.payload)).toBe(sha(LARGE));
  });

  it('BERT (RFC 8323 §6): both CSMs offer it, so our uploads and our block requests use SZX 7', async () => {
    // a server of its own: its log (-v 7) is what we check, from the start
    const own = await startLibcoap();
    try {
      const uri = `coap+tcp://127.0.0.1:${own.port}/bert-${backend}`;
      const put = await within(request(uri, { agent, method: 'PUT', payload: UPLOAD, timeout: 20_000 }), 60_000, 'upload');
      expect(put.code).toMatch(/^2\.0[14]$/);
      const r = await within(request(uri, { agent, timeout: 20_000 }), 60_000, 'download');
      expect(sha(r.payload)).toBe(sha(UPLOAD));
      const log = own.peer.stdout;
      // what we sent, as libcoap logged it: v:1 t:CON c:PUT ... Block1:NUM/M/SIZE
      const puts = log.split('\n').filter((l) => / c:PUT .*Block1:/.test(l));
      expect(puts.length).toBeGreaterThan(0);
      expect(puts[0]).toMatch(/Block1:0\/M\/BERT/);
      // libcoap answers our GET with a BERT block; our next requests ask for BERT blocks too
      const gets = log.split('\n').filter((l) => / c:GET .*Block2:/.test(l));
      expect(log).toMatch(/c:2\.05 .*Block2:0\/M\/BERT/);
      expect(gets.length).toBeGreaterThan(0);
      expect(gets[0]).toMatch(/Block2:\d+\/_\/BERT/);
    } finally {
      await own.peer.kill();
    }
  });

  it("observe() of libcoap's /time over TCP and TLS", async () => {
    for (const [uri, sec] of [
      [tcp, {}],
      [tls, { psk }],
    ] as const) {
      const ac = new AbortController();
      const obs = observe(uri('/time'), { agent, signal: ac.signal, ...sec });
      const seen: string[] = [];
      await within(
        (async () => {
          for await (const n of obs) {
            expect(n.code).toBe('2.05');
            seen.push(n.text());
            if (seen.length >= 3) break;
          }
        })(),
        15_000,
        'three notifications',
      );
      ac.abort();
      expect(seen.length).toBe(3);
      for (const s of seen) expect(s).toMatch(/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d$/);
      expect(new Set(seen).size).toBeGreaterThanOrEqual(2);
    }
  });

  it('typed errors: wrong PSK -> PSK (or HANDSHAKE), untrusted certificate -> VERIFY', async () => {
    const fresh = new Agent({ backend });
    try {
      const e1 = await request(tls('/'), { agent: fresh, psk: { identity: PSK_ID, key: WRONG_KEY }, timeout: 5000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(e1).toBeInstanceOf(CoapConnectionError);
      expect(['PSK', 'HANDSHAKE']).toContain((e1 as CoapConnectionError).code);
      const e2 = await request(tls('/'), { agent: fresh, ca: pki.otherCa.pem, timeout: 5000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(e2).toBeInstanceOf(CoapConnectionError);
      expect((e2 as CoapConnectionError).code).toBe('VERIFY');
      // the refused connections did not break the agent
      const r = await request(tls('/'), { agent: fresh, psk, timeout: 5000 });
      expect(r.code).toBe('2.05');
    } finally {
      await fresh.close();
    }
  });
});

/* ------------------------------------------------------------------ the CLI */

describe.skipIf(skip).each(udpBackends)('turbocoap CLI over TCP and TLS (%s)', (backend) => {
  let lc: LibcoapServer;
  const env = { ...process.env, TURBOCOAP_BACKEND: backend };

  beforeAll(async () => {
    lc = await startLibcoap();
  });
  afterAll(async () => {
    await lc?.peer.kill();
  });

  const cli = (args: readonly string[], timeoutMs = 30_000) => runCli(args, { env, timeoutMs });

  it('get coap+tcp:// and coaps+tcp:// --psk against libcoap', async () => {
    let r = await cli(['get', `coap+tcp://127.0.0.1:${lc.port}/`]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('This is a test server made with libcoap');
    r = await cli(['get', `coaps+tcp://127.0.0.1:${lc.port + 1}/`, '--psk', `${PSK_ID}:${PSK_KEY}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('libcoap');
    r = await cli(['get', `coaps+tcp://127.0.0.1:${lc.port + 1}/`, '--ca', pki.ca.file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('libcoap');
  });

  it('put -f FILE, then get -o FILE (block-wise, TLS with PSK)', async () => {
    const out = join(work, `cli-out-${backend}.bin`);
    rmSync(out, { force: true });
    const uri = `coaps+tcp://127.0.0.1:${lc.port + 1}/cli-${backend}`;
    let r = await cli(['put', uri, '-f', join(work, 'upload.bin'), '--psk', `${PSK_ID}:${PSK_KEY}`], 60_000);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['get', uri, '-o', out, '--psk', `${PSK_ID}:${PSK_KEY}`], 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(readFileSync(out))).toBe(sha(UPLOAD));
  });

  it('a wrong PSK or an untrusted certificate exits 3', async () => {
    let r = await cli(['get', `coaps+tcp://127.0.0.1:${lc.port + 1}/`, '--psk', `${PSK_ID}:${WRONG_KEY}`]);
    expect(r.code).toBe(3);
    expect(r.stdout).not.toContain('libcoap');
    expect(r.stderr).toMatch(/PSK|HANDSHAKE/);
    r = await cli(['get', `coaps+tcp://127.0.0.1:${lc.port + 1}/`, '--ca', pki.otherCa.file]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/VERIFY|certificate/i);
  });

  it('serve --listen coap+tcp://… --listen coaps+tcp://… --psk, with libcoap clients', async () => {
    let peer: Peer | undefined;
    let tcpPort = 0;
    let tlsPort = 0;
    for (let attempt = 0; attempt < 3 && peer === undefined; attempt++) {
      tcpPort = await quietPortPair();
      tlsPort = tcpPort + 1;
      const p = spawnPeer(`turbocoap serve (${backend})`, process.execPath, [
        join(__dirname, '..', 'dist', 'cli.js'), 'serve',
        '--listen', `coap+tcp://127.0.0.1:${tcpPort}`,
        '--listen', `coaps+tcp://127.0.0.1:${tlsPort}`,
        '--psk', `${PSK_ID}:${PSK_KEY}`,
      ], { env });
      try {
        await waitForTcpCoap(tcpPort, 15_000, p);
        peer = p;
      } catch (e) {
        await p.kill();
        if (attempt === 2) throw e;
      }
    }
    try {
      let r = await coapClient('notls', [`coap+tcp://127.0.0.1:${tcpPort}/hello`]);
      expect(r.body).toBe('Hello, CoAP!');
      r = await coapClient('tls', [...libcoapPsk, `coaps+tcp://127.0.0.1:${tlsPort}/hello`]);
      expect(r.body).toBe('Hello, CoAP!');
      const out = join(work, `cli-large-${backend}.bin`);
      rmSync(out, { force: true });
      r = await coapClient('tls', [...libcoapPsk, '-o', out, `coaps+tcp://127.0.0.1:${tlsPort}/large`], 20, 60_000);
      expect(r.code).toBe(0);
      const large = readFileSync(out); // the demo's /large: 1 MiB, byte i = i % 251, block-wise
      expect(large.length).toBe(1 << 20);
      expect(large[1000]).toBe(1000 % 251);
      r = await coapClient('tls', ['-u', PSK_ID, '-k', WRONG_KEY, `coaps+tcp://127.0.0.1:${tlsPort}/hello`], 3, 20_000);
      expect(r.stdout).not.toContain('Hello, CoAP!');
      r = await coapClient('notls', ['-w', '-s', '3', `coap+tcp://127.0.0.1:${tcpPort}/time`], 5, 20_000);
      const times = r.stdout.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
      expect(times.length, r.dump).toBeGreaterThanOrEqual(2);
      expect(peer!.stdout).toMatch(new RegExp(`\\(${backend} backend\\)`));
    } finally {
      await peer!.kill();
    }
  });
});
