/**
 * CoAP over DTLS 1.2 (ts/transport/dtls.ts over native/driver/dtls.c), native backend:
 *  - our server and client over PSK and certificates: GET, a 1 MiB block-wise download, a
 *    300 kB block-wise upload, Observe;
 *  - interop both ways with libcoap's OpenSSL and GnuTLS builds, PSK and certificates made at
 *    test time by `openssl` (EC P-256 CA, server certificate with SAN IP:127.0.0.1);
 *  - a ClientHello flood from thousands of distinct ports keeps no session while a legitimate
 *    client is served during and right after it; a wrong PSK gets nothing.
 *
 * Servers listen through the public API (`server.listen({ transport: 'dtls', psk | cert, key,
 * ca })`). Until the Agent routes `coaps://` to the `coaps` driver (ts/client.ts), the client
 * side opens its `coap` sockets over that factory here (vi.mock of ts/transports); the wire is
 * DTLS throughout.
 * Outside CI, missing libcoap DTLS builds skip their tests with one line; with CI=true they fail.
 */
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Driver, DriverFactory, DriverOptions, TlsSettings } from '../ts/driver/driver';
import { dtlsDriverFactory, dtlsFailure, dtlsStats } from '../ts/transport/dtls';
import { findBinary, inCI, run, sleep } from './support/peers';

/** What the next client drivers are opened with; the drivers opened (for dtlsStats). */
const env: { client?: TlsSettings; drivers: Driver[]; patient?: boolean } = { drivers: [] };
const dtls = dtlsDriverFactory({ retransmitMs: 200, handshakeMs: 3000 }); // a wrong PSK fails in 3 s
const patientDtls = dtlsDriverFactory({ retransmitMs: 200 }); // busy machines: the default 15 s
vi.mock('../ts/transports', async (importOriginal) => {
  const m = await importOriginal<typeof import('../ts/transports')>();
  const record = (d: Driver): Driver => (env.drivers.push(d), d);
  // servers: server.listen({ transport: 'dtls', psk | cert, key, ca }) through the real `coaps`
  // factory (recorded). Clients: until the Agent routes coaps:// to the coaps factory
  // (ts/client.ts), its `coap` sockets are opened over it with env.client.
  const clientViaDtls: DriverFactory = (family, backend, options, listener, role) =>
    record(
      role === 'client'
        ? (env.patient ? patientDtls : dtls)(family, backend, { ...(options as DriverOptions), security: env.client }, listener, role)
        : (m.driverFactory('coap') as DriverFactory)(family, backend, options, listener, role),
    );
  const coaps: DriverFactory = (...a) => record((m.driverFactory('coaps') as DriverFactory)(...a));
  return { ...m, driverFactory: (scheme: string) => (scheme === 'coap' ? clientViaDtls : scheme === 'coaps' ? coaps : m.driverFactory(scheme)) };
});

const { createServer } = await import('../ts/server');
const { Router } = await import('../ts/router');
const { Agent, request } = await import('../ts/client');
const { observe } = await import('../ts/observe');
type Server = import('../ts/server').CoapServer;

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
const pskClient = (key = PSK): TlsSettings => ({ pskIdentity: PSK_ID, pskKey: utf8.encode(key) });

/** A server with /hello, /big (1 MiB), /upload (PUT: answers the length), /obs (observable). */
async function startServer(security: ServerSecurity): Promise<{ server: Server; port: number; driver: Driver; uploads: number[]; notify: () => void }> {
  const uploads: number[] = [];
  let n = 0;
  const router = new Router()
    .get('/hello', () => ({ code: '2.05', payload: 'Hello, DTLS!' }))
    .get('/big', () => ({ code: '2.05', payload: BIG }))
    .put('/upload', (req) => {
      uploads.push(req.payload.length);
      return { code: '2.04', payload: String(req.payload.length) };
    })
    .get('/obs', () => ({ code: '2.05', payload: `n=${n}` }), { obs: true });
  const server = createServer(router, { backend: 'native', blockwise: { maxBodySize: 2 << 20 } });
  await server.listen({ transport: 'dtls', port: 0, host: '127.0.0.1', ...security });
  const driver = env.drivers[env.drivers.length - 1] as Driver;
  const port = server.address('dtls').port;
  return {
    server,
    port,
    driver,
    uploads,
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
    env.client = pskClient();
    const agent = new Agent({ backend: 'native' });
    try {
      const r = await request(`coap://127.0.0.1:${s.port}/hello`, { agent });
      expect(Buffer.from(r.payload).toString()).toBe('Hello, DTLS!');
      const big = await request(`coap://127.0.0.1:${s.port}/big`, { agent });
      expect(big.payload.length).toBe(BIG.length);
      expect(Buffer.compare(Buffer.from(big.payload), Buffer.from(BIG))).toBe(0);
      const up = await request(`coap://127.0.0.1:${s.port}/upload`, { method: 'PUT', payload: BIG.subarray(0, 300_000), agent });
      expect(Buffer.from(up.payload).toString()).toBe('300000');
      const st = dtlsStats(s.driver)!;
      expect(st.sessions).toBe(1);
      expect(st.handshakes).toBe(1);
      expect(st.records_in).toBeGreaterThan(300);
    } finally {
      await agent.close();
    }
  });

  it('PSK: Observe: the registration and three notifications', async () => {
    env.client = pskClient();
    const agent = new Agent({ backend: 'native' });
    try {
      const o = observe(`coap://127.0.0.1:${s.port}/obs`, { agent, timeout: 5000 });
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

  it('a wrong PSK gets nothing: the request fails with PSK, the server keeps no session', async () => {
    env.client = pskClient('wrong-key-000000');
    const agent = new Agent({ backend: 'native' });
    await sleep(300); // the observer before deregisters
    const before = dtlsStats(s.driver)!;
    try {
      const e = await request(`coap://127.0.0.1:${s.port}/hello`, { agent, timeout: 20_000 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(Error);
      const st = dtlsStats(s.driver)!;
      expect(st.handshakes).toBe(before.handshakes);
      expect(st.records_in).toBe(before.records_in);
      const cst = dtlsStats(env.drivers[env.drivers.length - 1])!;
      expect(cst.handshake_failures).toBe(1);
      expect(dtlsFailure(-107)?.code).toBe('PSK');
    } finally {
      await agent.close();
    }
  }, 25_000);
});

describe('coaps configuration errors', () => {
  const listener = { onRequest() {}, onResponse() {}, onFailed() {}, onRespondFailed() {} };
  it('under WASM, coaps fails with TLS_UNSUPPORTED naming the native addon', () => {
    let e: unknown;
    try {
      dtlsDriverFactory()(4, 'wasm', { security: pskClient() }, listener, 'client');
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
    env.client = pskClient();
    const agent = new Agent({ backend: 'native' });
    try {
      const r = await request(`coap://127.0.0.1:${port}/`, { agent });
      expect(r.code).toBe('2.05');
      expect(Buffer.from(r.payload).toString()).toContain('libcoap');
    } finally {
      await agent.close();
    }
  });

  it.skipIf(bin === undefined)('certificates: GET / with the server verified against the CA (SAN IP:127.0.0.1)', async () => {
    env.client = { caPem: pem.ca, certPem: pem.cert, keyPem: pem.key };
    const agent = new Agent({ backend: 'native' });
    try {
      const r = await request(`coap://127.0.0.1:${port}/`, { agent });
      expect(r.code).toBe('2.05');
    } finally {
      await agent.close();
    }
  });

  it.skipIf(bin === undefined)('PSK: 300 kB upload then 300 kB download (block-wise)', async () => {
    env.client = pskClient();
    const agent = new Agent({ backend: 'native' });
    try {
      const body = BIG.subarray(0, 300_000);
      const put = await request(`coap://127.0.0.1:${port}/big-${build}`, { method: 'PUT', payload: body, agent, timeout: 60_000 });
      expect(put.code).toMatch(/^2\./);
      const got = await request(`coap://127.0.0.1:${port}/big-${build}`, { agent, timeout: 60_000 });
      expect(Buffer.compare(Buffer.from(got.payload), Buffer.from(body))).toBe(0);
    } finally {
      await agent.close();
    }
  }, 90_000);

  it.skipIf(bin === undefined)('a certificate from an untrusted CA fails with VERIFY', async () => {
    env.client = { caPem: undefined, rejectUnauthorized: true };
    const agent = new Agent({ backend: 'native' });
    try {
      const e = (await request(`coap://127.0.0.1:${port}/`, { agent, timeout: 10_000 }).catch((x: unknown) => x)) as { code?: string };
      expect(e).toBeInstanceOf(Error);
      const cst = dtlsStats(env.drivers[env.drivers.length - 1])!;
      expect(cst.handshake_failures).toBeGreaterThanOrEqual(1);
    } finally {
      await agent.close();
    }
  }, 20_000);
});

// ------------------------------------------------------------------ flood

describe('ClientHello flood', () => {
  it('thousands of ClientHellos from distinct ports keep no session; a legitimate client is served during and after', async () => {
    const s = await startServer(pskServer());
    env.patient = true;
    try {
      // a real ClientHello: the first datagram our DTLS client sends to a silent socket
      const sink = dgram.createSocket('udp4');
      await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
      const hello = new Promise<Buffer>((r) => sink.once('message', (m) => r(m)));
      env.client = pskClient();
      const probe = new Agent({ backend: 'native' });
      const pending = request(`coap://127.0.0.1:${(sink.address() as { port: number }).port}/x`, { agent: probe, timeout: 2000 }).catch(() => undefined);
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
        if (batch === 2) during = request(`coap://127.0.0.1:${s.port}/hello`, { agent: legit, timeout: 30_000 });
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
      env.client = pskClient();
      const after = new Agent({ backend: 'native' });
      const r2 = await request(`coap://127.0.0.1:${s.port}/hello`, { agent: after, timeout: 30_000 });
      expect(Buffer.from(r2.payload).toString()).toBe('Hello, DTLS!');
      expect(dtlsStats(s.driver)!.sessions).toBe(2);
      await legit.close();
      await after.close();
    } finally {
      env.patient = false;
      await s.server.close();
    }
  }, 90_000);
});

