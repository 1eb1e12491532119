/**
 * CoAP over DTLS 1.2 (ts/transport/dtls.ts over native/driver/dtls.c), native backend:
 *  - our server and client over PSK and certificates: GET, a 1 MiB block-wise download, a
 *    300 kB block-wise upload, Observe;
 *  - interop both ways with libcoap's OpenSSL and GnuTLS builds, PSK and certificates made at
 *    test time by `openssl` (EC P-256 CA, server certificate with SAN IP:127.0.0.1);
 *  - forged, replayed and truncated records are dropped without effect;
 *  - a ClientHello flood from thousands of distinct ports keeps no session while a legitimate
 *    client is served during and right after it; a wrong PSK gets nothing.
 *
 * Everything goes through the public API: servers `server.listen({ transport: 'dtls', psk |
 * cert, key, ca })`, clients `request('coaps://…', { psk: { identity, key } | ca, cert, key })`
 * and `observe('coaps://…', …)`. The DTLS counters of a server's listener (dtlsStats) are
 * read from its driver.
 * Outside CI, missing libcoap DTLS builds skip their tests with one line; with CI=true they fail.
 */
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Driver, TlsSettings } from '../ts/driver/driver';
import { dtlsDriverFactory, dtlsStats } from '../ts/transport/dtls';
import '../ts/platform-node';
import { findBinary, inCI, run, sleep } from './support/peers';

const { createServer } = await import('../ts/server');
const { Router } = await import('../ts/router');
const { Agent, request } = await import('../ts/client');
const { observe } = await import('../ts/observe');
const { CoapConnectionError } = await import('../ts/errors');
type Server = import('../ts/server').CoapServer;

/** The `coaps` driver a server listens with (internal: the DTLS counters are not in server.stats()). */
const dtlsDriverOf = (server: Server): Driver =>
  (server as unknown as { openListeners: Map<string, { driver?: Driver }> }).openListeners.get('dtls')?.driver as Driver;

const PSK_ID = 'turbocoap-test';
const PSK = 'secret-psk-0123';
const utf8 = new TextEncoder();
const BIG = new Uint8Array(1 << 20).map((_, i) => (i * 7 + (i >> 10)) & 0xff);

let dir = '';
let pem: { ca: string; cert: string; key: string; caPath: string; certPath: string; keyPath: string };

function makeCerts(): void {
  dir = mkdtempSync(join(tmpdir(), 'tc-dtls-'));
  const sh = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  sh(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tc-dtls-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  writeFileSync(join(dir, 'srv.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  sh(['req', '-new', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=localhost']);
  sh(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'srv.ext', '-out', 'srv.pem']);
  const f = (n: string) => readFileSync(join(dir, n), 'utf8');
  pem = { ca: f('ca.pem'), cert: f('srv.pem'), key: f('srv.key'), caPath: join(dir, 'ca.pem'), certPath: join(dir, 'srv.pem'), keyPath: join(dir, 'srv.key') };
}

type ServerSecurity = import('../ts/security').ServerSecurityOptions;
const pskServer = (): ServerSecurity => ({ psk: { [PSK_ID]: PSK } });
const pskSettings = (key = PSK): TlsSettings => ({ pskIdentity: PSK_ID, pskKey: utf8.encode(key) });
/** The public client options of a PSK. */
const psk = (key = PSK) => ({ psk: { identity: PSK_ID, key } });

/** A server with /hello, /big (1 MiB), /upload (PUT: answers the length), /obs (observable). */
async function startServer(security: ServerSecurity): Promise<{ server: Server; port: number; driver: Driver; uploads: number[]; hits: { n: number }; notify: () => void }> {
  const uploads: number[] = [];
  const hits = { n: 0 };
  let n = 0;
  const router = new Router()
    .get('/hello', () => (hits.n++, { code: '2.05', payload: 'Hello, DTLS!' }))
    .get('/big', () => ({ code: '2.05', payload: BIG }))
    .put('/upload', (req) => {
      uploads.push(req.payload.length);
      return { code: '2.04', payload: String(req.payload.length) };
    })
    .get('/obs', () => ({ code: '2.05', payload: `n=${n}` }), { obs: true });
  const server = createServer(router, { backend: 'native', blockwise: { maxBodySize: 2 << 20 } });
  await server.listen({ transport: 'dtls', port: 0, host: '127.0.0.1', ...security });
  const driver = dtlsDriverOf(server);
  const port = server.address('dtls').port;
  return {
    server,
    port,
    driver,
    uploads,
    hits,
    notify: () => {
      n++;
      server.resource('/obs').notify();
    },
  };
}

beforeAll(() => makeCerts());
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('turbocoap client ↔ turbocoap server over DTLS', () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    s = await startServer(pskServer());
  });
  afterAll(async () => {
    await s?.server.close();
  });

  it('PSK: GET, a 1 MiB download and a 300 kB upload (block-wise), over one session', async () => {
    const agent = new Agent({ backend: 'native' });
    try {
      const r = await request(`coaps://127.0.0.1:${s.port}/hello`, { agent, ...psk() });
      expect(Buffer.from(r.payload).toString()).toBe('Hello, DTLS!');
      const big = await request(`coaps://127.0.0.1:${s.port}/big`, { agent, ...psk() });
      expect(big.payload.length).toBe(BIG.length);
      expect(Buffer.compare(Buffer.from(big.payload), Buffer.from(BIG))).toBe(0);
      const up = await request(`coaps://127.0.0.1:${s.port}/upload`, { method: 'PUT', payload: BIG.subarray(0, 300_000), agent, ...psk() });
      expect(Buffer.from(up.payload).toString()).toBe('300000');
      const st = dtlsStats(s.driver)!;
      expect(st.sessions).toBe(1);
      expect(st.handshakes).toBe(1);
      expect(st.resumed).toBe(0); // the counter is exposed; resumption itself: native/test/tls/test_dtls_driver.c test_resume
      expect(st.records_in).toBeGreaterThan(300);
    } finally {
      await agent.close();
    }
  });

  it('PSK: Observe: the registration and three notifications', async () => {
    const agent = new Agent({ backend: 'native' });
    try {
      const o = observe(`coaps://127.0.0.1:${s.port}/obs`, { agent, timeout: 5000, ...psk() });
      const seen: string[] = [];
      for await (const r of o) {
        seen.push(Buffer.from(r.payload).toString());
        if (seen.length === 4) break;
        s.notify();
      }
      expect(seen).toEqual(['n=0', 'n=1', 'n=2', 'n=3']);
    } finally {
      await agent.close();
    }
  });

  it('a wrong PSK gets nothing: the request fails with PSK (or HANDSHAKE), the server establishes no session', async () => {
    const agent = new Agent({ backend: 'native' });
    await sleep(300); // the observer before deregisters
    const before = dtlsStats(s.driver)!;
    try {
      const e = await request(`coaps://127.0.0.1:${s.port}/hello`, { agent, timeout: 20_000, ...psk('wrong-key-000000') }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(CoapConnectionError);
      expect(['PSK', 'HANDSHAKE']).toContain((e as { code?: string }).code);
      const st = dtlsStats(s.driver)!;
      expect(st.handshakes).toBe(before.handshakes);
      expect(st.records_in).toBe(before.records_in);
      // no session was established (a half-open one may wait out its handshake deadline:
      // records with a bad MAC are dropped silently, RFC 6347 §4.1.2.7)
      expect(st.sessions - st.half_open).toBe(before.sessions - before.half_open);
    } finally {
      await agent.close();
    }
  }, 25_000);
});

describe('records on the wire', () => {
  it('forged, replayed and truncated records are dropped without effect; the session goes on', async () => {
    const s = await startServer(pskServer());
    // a relay between our client and the server: it keeps the client's records
    const relay = dgram.createSocket('udp4');
    const up = dgram.createSocket('udp4');
    await Promise.all([relay, up].map((u) => new Promise<void>((r) => u.bind(0, '127.0.0.1', () => r()))));
    let client: { port: number } | undefined;
    const appData: Buffer[] = [];
    relay.on('message', (m, rinfo) => {
      client = rinfo;
      if (m[0] === 23) appData.push(Buffer.from(m));
      up.send(m, s.port, '127.0.0.1');
    });
    up.on('message', (m) => {
      if (client !== undefined) relay.send(m, client.port, '127.0.0.1');
    });
    const agent = new Agent({ backend: 'native' });
    const url = `coaps://127.0.0.1:${(relay.address() as { port: number }).port}/hello`;
    try {
      const r = await request(url, { agent, ...psk() });
      expect(Buffer.from(r.payload).toString()).toBe('Hello, DTLS!');
      expect(s.hits.n).toBe(1);
      expect(appData.length).toBeGreaterThan(0);
      const rec = appData[appData.length - 1] as Buffer; // the request: epoch 1, application data
      const before = dtlsStats(s.driver)!;
      const forged = Buffer.from(rec);
      forged[forged.length - 1] ^= 0x55; // the MAC/tag no longer matches
      const truncated = rec.subarray(0, rec.length - 5);
      const header = rec.subarray(0, 13);
      for (const bad of [rec, rec, forged, truncated, header]) up.send(bad, s.port, '127.0.0.1');
      await sleep(300);
      const st = dtlsStats(s.driver)!;
      expect(s.hits.n).toBe(1); // the replayed request reached no handler
      expect(st.records_in).toBe(before.records_in);
      expect(st.sessions).toBe(before.sessions);
      expect(st.closed).toBe(before.closed);
      // the session is intact: the same agent is answered on it, with no new handshake
      const r2 = await request(url, { agent, ...psk() });
      expect(Buffer.from(r2.payload).toString()).toBe('Hello, DTLS!');
      expect(s.hits.n).toBe(2);
      expect(dtlsStats(s.driver)!.handshakes).toBe(before.handshakes);
    } finally {
      await agent.close();
      relay.close();
      up.close();
      await s.server.close();
    }
  });
});

describe('coaps configuration errors', () => {
  const listener = { onRequest() {}, onResponse() {}, onFailed() {}, onRespondFailed() {} };
  it('under WASM, coaps fails with TLS_UNSUPPORTED naming the native addon', () => {
    let e: unknown;
    try {
      dtlsDriverFactory()(4, 'wasm', { security: pskSettings() }, listener, 'client');
    } catch (x) {
      e = x;
    }
    expect((e as { code?: string }).code).toBe('TLS_UNSUPPORTED');
    expect((e as Error).message).toMatch(/native addon/);
  });
  it('a server without credentials, and a bad certificate, fail with TLS_CONFIG', () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (x) {
        return (x as { code?: string }).code;
      }
      return 'no error';
    };
    expect(codeOf(() => dtlsDriverFactory()(4, 'native', {}, listener, 'server'))).toBe('TLS_CONFIG');
    expect(codeOf(() => dtlsDriverFactory()(4, 'native', { security: { certPem: 'not a PEM', keyPem: 'nor this' } }, listener, 'server'))).toBe('TLS_CONFIG');
  });
});

describe('features the OpenSSL in use lacks: Connection ID (RFC 9146), Raw Public Keys (RFC 7250)', () => {
  const ver = process.versions.openssl ?? 'unknown';
  const rpk = { key: '-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n' };
  async function failure(p: () => Promise<unknown>): Promise<{ code?: string; message: string; isConn: boolean }> {
    try {
      await p();
    } catch (e) {
      return { code: (e as { code?: string }).code, message: (e as Error).message, isConn: e instanceof CoapConnectionError };
    }
    return { code: 'no error', message: '', isConn: false };
  }
  it('server: listen({ transport: dtls, connectionId | rawPublicKey }) fails with TLS_UNSUPPORTED naming the feature and OpenSSL', async () => {
    const server = createServer(() => ({ code: '2.05' }), { backend: 'native' });
    try {
      const cid = await failure(() => server.listen({ transport: 'dtls', port: 0, host: '127.0.0.1', psk: { [PSK_ID]: PSK }, connectionId: true }));
      expect(cid.isConn).toBe(true);
      expect(cid.code).toBe('TLS_UNSUPPORTED');
      expect(cid.message).toContain('Connection ID (RFC 9146)');
      expect(cid.message).toContain(`OpenSSL ${ver}`);
      const r = await failure(() => server.listen({ transport: 'dtls', port: 0, host: '127.0.0.1', rawPublicKey: rpk }));
      expect(r.code).toBe('TLS_UNSUPPORTED');
      expect(r.message).toContain('Raw Public Keys (RFC 7250)');
      expect(r.message).toContain(`OpenSSL ${ver}`);
      // connectionId: false asks for nothing: the listener opens
      const ok = await failure(() => server.listen({ transport: 'dtls', port: 0, host: '127.0.0.1', psk: { [PSK_ID]: PSK }, connectionId: false }));
      expect(ok.code).toBe('no error');
    } finally {
      await server.close();
    }
  });
  it('client: request(coaps://, { connectionId | rawPublicKey }) rejects with TLS_UNSUPPORTED; nothing is sent', async () => {
    const sock = dgram.createSocket('udp4');
    let got = 0;
    sock.on('message', () => got++);
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const port = sock.address().port;
    try {
      const cid = await failure(() => request(`coaps://127.0.0.1:${port}/x`, { psk: { identity: PSK_ID, key: PSK }, connectionId: true, timeout: 2000 }));
      expect(cid.isConn).toBe(true);
      expect(cid.code).toBe('TLS_UNSUPPORTED');
      expect(cid.message).toContain(`DTLS Connection ID (RFC 9146) needs an OpenSSL with DTLS CID support; this Node carries OpenSSL ${ver}`);
      const r = await failure(() => request(`coaps://127.0.0.1:${port}/x`, { rawPublicKey: rpk, timeout: 2000 }));
      expect(r.code).toBe('TLS_UNSUPPORTED');
      expect(r.message).toContain('Raw Public Keys (RFC 7250)');
      expect(got).toBe(0);
    } finally {
      sock.close();
    }
  });
});

// ------------------------------------------------------------------ libcoap interop

const builds = ['openssl', 'gnutls'] as const;
const bins = Object.fromEntries(
  builds.map((b) => [b, { client: findBinary(`coap-client-${b}`), server: findBinary(`coap-server-${b}`) }]),
) as Record<(typeof builds)[number], { client?: string; server?: string }>;
const missing = builds.flatMap((b) => [bins[b].client === undefined ? `coap-client-${b}` : '', bins[b].server === undefined ? `coap-server-${b}` : '']).filter((x) => x !== '');
if (missing.length > 0) {
  if (inCI) throw new Error(`CI: libcoap DTLS builds missing: ${missing.join(', ')}`);
  console.warn(`dtls interop: SKIPPED for ${missing.join(', ')} (not on PATH; apt-get install libcoap3-bin)`);
}

/** coap-client over DTLS: waits `wait` s (-B); returns exit code and the body lines. */
async function coapClient(bin: string, args: readonly string[], wait = 5) {
  const r = await run(bin, ['-B', String(wait), ...args], { timeoutMs: (wait + 10) * 1000 });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

describe.each(builds)('libcoap coap-client-%s → turbocoap DTLS server', (build) => {
  const bin = bins[build].client;
  let psk: Awaited<ReturnType<typeof startServer>>;
  let pki: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    if (bin === undefined) return;
    psk = await startServer(pskServer());
    pki = await startServer({ cert: pem.cert, key: pem.key, ca: pem.ca });
  });
  afterAll(async () => {
    await psk?.server.close();
    await pki?.server.close();
  });

  it.skipIf(bin === undefined)('PSK GET', async () => {
    const r = await coapClient(bin!, ['-u', PSK_ID, '-k', PSK, `coaps://127.0.0.1:${psk.port}/hello`]);
    expect(r.out).toContain('Hello, DTLS!');
  });

  it.skipIf(bin === undefined)('certificates: GET with the CA trusted', async () => {
    const r = await coapClient(bin!, ['-R', pem.caPath, `coaps://127.0.0.1:${pki.port}/hello`]);
    expect(r.out).toContain('Hello, DTLS!');
  });

  it.skipIf(bin === undefined)('PSK: 1 MiB block-wise download, 300 kB block-wise upload', async () => {
    const out = join(dir, `big-${build}.bin`);
    let r = await coapClient(bin!, ['-u', PSK_ID, '-k', PSK, '-o', out, `coaps://127.0.0.1:${psk.port}/big`], 30);
    expect(r.code).toBe(0);
    expect(Buffer.compare(readFileSync(out), Buffer.from(BIG))).toBe(0);
    const up = join(dir, `up-${build}.bin`);
    writeFileSync(up, BIG.subarray(0, 300_000));
    r = await coapClient(bin!, ['-u', PSK_ID, '-k', PSK, '-m', 'put', '-f', up, `coaps://127.0.0.1:${psk.port}/upload`], 30);
    expect(r.out).toContain('300000');
    expect(psk.uploads).toContain(300_000);
  }, 60_000);

  it.skipIf(bin === undefined)('PSK: Observe (-s): notifications arrive', async () => {
    const p = coapClient(bin!, ['-u', PSK_ID, '-k', PSK, '-s', '3', '-w', `coaps://127.0.0.1:${psk.port}/obs`], 4);
    for (let i = 0; i < 3; i++) {
      await sleep(600);
      psk.notify();
    }
    const r = await p;
    expect(r.out.match(/n=\d+/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
  }, 20_000);

  it.skipIf(bin === undefined)('a wrong PSK gets nothing', async () => {
    const before = dtlsStats(psk.driver)!;
    const r = await coapClient(bin!, ['-u', PSK_ID, '-k', 'not-the-key', `coaps://127.0.0.1:${psk.port}/hello`], 3);
    expect(r.out).not.toContain('Hello, DTLS!');
    const st = dtlsStats(psk.driver)!;
    expect(st.records_in).toBe(before.records_in);
    expect(st.handshakes).toBe(before.handshakes);
  }, 20_000);
});

describe.each(builds)('turbocoap client → libcoap coap-server-%s over DTLS', (build) => {
  const bin = bins[build].server;
  let proc: import('node:child_process').ChildProcess | undefined;
  let port = 0;
  beforeAll(async () => {
    if (bin === undefined) return;
    const base = 20000 + Math.floor(Math.random() * 20000) * 2;
    port = base + 1; // DTLS on PORT+1
    const { spawn } = await import('node:child_process');
    proc = spawn(bin, ['-A', '127.0.0.1', '-p', String(base), '-v', '0', '-k', PSK, '-c', pem.certPath, '-j', pem.keyPath, '-C', pem.caPath, '-d', '10'], { stdio: 'ignore' });
    await sleep(500);
  });
  afterAll(() => {
    proc?.kill('SIGTERM');
  });

  it.skipIf(bin === undefined)('PSK GET /', async () => {
    const agent = new Agent({ backend: 'native' });
    try {
      const r = await request(`coaps://127.0.0.1:${port}/`, { agent, ...psk() });
      expect(r.code).toBe('2.05');
      expect(Buffer.from(r.payload).toString()).toContain('libcoap');
    } finally {
      await agent.close();
    }
  });

  it.skipIf(bin === undefined)('certificates: GET / with the server verified against the CA (SAN IP:127.0.0.1)', async () => {
    const agent = new Agent({ backend: 'native' });
    try {
      const r = await request(`coaps://127.0.0.1:${port}/`, { agent, ca: pem.ca, cert: pem.cert, key: pem.key });
      expect(r.code).toBe('2.05');
    } finally {
      await agent.close();
    }
  });

  it.skipIf(bin === undefined)('PSK: 300 kB upload then 300 kB download (block-wise)', async () => {
    const agent = new Agent({ backend: 'native' });
    try {
      const body = BIG.subarray(0, 300_000);
      const put = await request(`coaps://127.0.0.1:${port}/big-${build}`, { method: 'PUT', payload: body, agent, timeout: 60_000, ...psk() });
      expect(put.code).toMatch(/^2\./);
      const got = await request(`coaps://127.0.0.1:${port}/big-${build}`, { agent, timeout: 60_000, ...psk() });
      expect(Buffer.compare(Buffer.from(got.payload), Buffer.from(body))).toBe(0);
    } finally {
      await agent.close();
    }
  }, 90_000);

  it.skipIf(bin === undefined)('a certificate from an untrusted CA fails with VERIFY', async () => {
    const agent = new Agent({ backend: 'native' });
    try {
      // no `ca`: the server's certificate (from the test CA) cannot be verified
      const e = (await request(`coaps://127.0.0.1:${port}/`, { agent, timeout: 10_000, rejectUnauthorized: true }).catch((x: unknown) => x)) as { code?: string };
      expect(e).toBeInstanceOf(CoapConnectionError);
      expect(e.code).toBe('VERIFY');
    } finally {
      await agent.close();
    }
  }, 20_000);
});

// ------------------------------------------------------------------ flood

describe('ClientHello flood', () => {
  it('thousands of ClientHellos from distinct ports keep no session; a legitimate client is served during and after', async () => {
    const s = await startServer(pskServer());
    try {
      // a real ClientHello: the first datagram our DTLS client sends to a silent socket
      const sink = dgram.createSocket('udp4');
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      const hello = new Promise<Buffer>((r) => sink.once('message', (m) => r(m)));
      const probe = new Agent({ backend: 'native' });
      const pending = request(`coaps://127.0.0.1:${(sink.address() as { port: number }).port}/x`, { agent: probe, timeout: 2000, ...psk() }).catch(() => undefined);
      const ch = await hello;
      sink.close();
      await pending;
      await probe.close();
      expect(ch[0]).toBe(22);

      const FLOOD = 3000;
      const before = dtlsStats(s.driver)!;
      let sent = 0;
      const legit = new Agent({ backend: 'native' });
      let during: Promise<unknown> | undefined;
      for (let batch = 0; batch < FLOOD / 500; batch++) {
        const socks = await Promise.all(
          Array.from({ length: 500 }, () => {
            const u = dgram.createSocket('udp4');
            return new Promise<dgram.Socket>((r) => u.bind(0, '127.0.0.1', () => r(u)));
          }),
        );
        await Promise.all(socks.map((u) => new Promise<void>((r) => u.send(ch, s.port, '127.0.0.1', () => r()))));
        sent += socks.length;
        if (batch === 2) during = request(`coaps://127.0.0.1:${s.port}/hello`, { agent: legit, timeout: 30_000, ...psk() });
        await sleep(20);
        await Promise.all(socks.map((u) => new Promise<void>((r) => u.close(() => r()))));
      }
      const r1 = (await during) as { payload: Uint8Array };
      expect(Buffer.from(r1.payload).toString()).toBe('Hello, DTLS!');
      await sleep(100);
      const st = dtlsStats(s.driver)!;
      expect(sent).toBe(FLOOD);
      expect(st.hello_verify - before.hello_verify).toBeGreaterThanOrEqual(FLOOD * 0.9); // a few may be lost by the socket
      expect(st.sessions).toBe(1); // the legitimate client's only
      expect(st.half_open).toBe(0);
      // right after the flood, a new client
      const after = new Agent({ backend: 'native' });
      const r2 = await request(`coaps://127.0.0.1:${s.port}/hello`, { agent: after, timeout: 30_000, ...psk() });
      expect(Buffer.from(r2.payload).toString()).toBe('Hello, DTLS!');
      expect(dtlsStats(s.driver)!.sessions).toBe(2);
      await legit.close();
      await after.close();
    } finally {
      await s.server.close();
    }
  }, 90_000);
});

