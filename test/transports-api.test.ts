/**
 * The public API over the reliable transports (RFC 8323): server.listen({ transport }), request()
 * and observe() over coap+tcp / coaps+tcp / coap+ws / coaps+ws, connections both ways
 * (server.on('connection'), connect(uri, { handler })), typed connection errors, and several
 * listeners on one server. Every wait is bounded.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../ts/client';
import { connect } from '../ts/connect';
import type { CoapConnection } from '../ts/connection';
import { CoapConnectionError } from '../ts/errors';
import { observe } from '../ts/observe';
import { Router } from '../ts/router';
import { createServer, type CoapServer, type ListenOptions } from '../ts/server';
import { udpBackends, within } from './support/udp';

type Kind = 'tcp' | 'tls' | 'ws' | 'wss';
const SCHEME: Record<Kind, string> = { tcp: 'coap+tcp', tls: 'coaps+tcp', ws: 'coap+ws', wss: 'coaps+ws' };

/** Certificates made at test time by openssl: a CA, a server certificate for 127.0.0.1/localhost, a client certificate. */
interface Pki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
}

function makePki(): Pki {
  const d = mkdtempSync(join(tmpdir(), 'tc-pki-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: d, stdio: 'ignore' });
  };
  try {
    for (const ca of ['ca', 'other']) {
      run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=${ca} test CA`);
    }
    const leaf = (name: string, cn: string, ext: string): void => {
      run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      writeFileSync(join(d, `${name}.ext`), ext);
      run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
    };
    leaf('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    leaf('client', 'test-client', 'extendedKeyUsage=clientAuth\n');
    const r = (f: string): string => readFileSync(join(d, f), 'utf8');
    return { ca: r('ca.crt'), serverCert: r('server.crt'), serverKey: r('server.key'), clientCert: r('client.crt'), clientKey: r('client.key'), otherCa: r('other.crt') };
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

const PSK = { identity: 'client-1', key: 'secret-key-123' };

describe.each(udpBackends)('transports API (%s)', (backend) => {
  let pki: Pki;
  const servers: CoapServer[] = [];
  const conns: CoapConnection[] = [];
  let agent: Agent;

  beforeAll(() => {
    pki = makePki();
    agent = new Agent({ backend });
  });
  afterAll(async () => {
    await agent.close();
  });
  afterEach(async () => {
    await Promise.all(conns.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  function security(kind: Kind, auth: 'psk' | 'cert'): Partial<ListenOptions> {
    if (kind !== 'tls' && kind !== 'wss') return {};
    return auth === 'psk' ? { psk: { [PSK.identity]: PSK.key } } : { cert: pki.serverCert, key: pki.serverKey };
  }
  function clientSecurity(kind: Kind, auth: 'psk' | 'cert'): { psk?: typeof PSK; ca?: string } {
    if (kind !== 'tls' && kind !== 'wss') return {};
    return auth === 'psk' ? { psk: PSK } : { ca: pki.ca };
  }

  function demo(): Router {
    const r = new Router();
    r.get('/hello', (req) => ({ code: '2.05', payload: `hello ${req.remote.address}` }));
    r.put('/store', (req) => ({ code: '2.04', payload: `${req.payload.length}` }));
    r.get('/large', () => ({ code: '2.05', payload: new Uint8Array(1 << 20).map((_, i) => i & 0xff) }));
    r.get('/obs', () => ({ code: '2.05', payload: `n=${n}` }), { obs: true });
    let n = 0;
    (r as unknown as { bump: () => void }).bump = () => n++;
    return r;
  }

  async function serve(kind: Kind, auth: 'psk' | 'cert' = 'psk'): Promise<{ server: CoapServer; url: string; router: Router }> {
    const router = demo();
    const server = createServer(router, { backend });
    servers.push(server);
    await server.listen({ transport: kind, port: 0, host: '127.0.0.1', ...security(kind, auth) });
    return { server, router, url: `${SCHEME[kind]}://127.0.0.1:${server.address(kind).port}` };
  }

  const cases: [Kind, 'psk' | 'cert'][] = [
    ['tcp', 'psk'],
    ['tls', 'psk'],
    ['tls', 'cert'],
    ['ws', 'psk'],
    ['wss', 'cert'],
  ];

  describe.each(cases)('%s (%s)', (kind, auth) => {
    it('GET, PUT and a 1 MiB block-wise download; one connection per origin', async () => {
      const { url } = await serve(kind, auth);
      const sec = clientSecurity(kind, auth);
      const res = await within(agent.request(`${url}/hello`, sec), 10000, 'GET');
      expect(res.code).toBe('2.05');
      expect(res.text()).toBe('hello 127.0.0.1');
      const put = await within(agent.request(`${url}/store`, { ...sec, method: 'PUT', payload: new Uint8Array(300000) }), 20000, 'PUT');
      expect(put.code).toBe('2.04');
      expect(put.text()).toBe('300000');
      const large = await within(agent.request(`${url}/large`, { ...sec, maxBodySize: 2 << 20 }), 30000, 'download');
      expect(large.payload.length).toBe(1 << 20);
      expect(large.payload[4097]).toBe(4097 & 0xff);
    });

    it('observe: notifications come over the connection', async () => {
      const { server, url, router } = await serve(kind, auth);
      const obs = observe(`${url}/obs`, { ...clientSecurity(kind, auth), agent });
      const it = obs[Symbol.asyncIterator]();
      const first = await within(it.next(), 10000, 'registration');
      expect(first.value?.text()).toBe('n=0');
      (router as unknown as { bump: () => void }).bump();
      server.resource('/obs').notify();
      const second = await within(it.next(), 10000, 'notification');
      expect(second.value?.text()).toBe('n=1');
      await obs.cancel();
    });

    it('the server sends a request down the connection; connect() serves it with its handler', async () => {
      const { server, url } = await serve(kind, auth);
      const asked = new Promise<string>((resolve, reject) => {
        server.on('connection', (c: CoapConnection) => {
          c.request('/whoami').then((r) => resolve(r.text()), reject);
        });
      });
      const conn = await within(connect(url, { backend, ...clientSecurity(kind, auth), handler: (req) => ({ code: '2.05', payload: `I am the client (${req.path})` }) }), 10000, 'connect');
      conns.push(conn);
      expect(conn.transport).toBe(kind);
      expect(conn.remote.address).toBe('127.0.0.1');
      expect(await within(asked, 10000, 'server request')).toBe('I am the client (/whoami)');
      const back = await within(conn.request('/hello'), 10000, 'client request');
      expect(back.text()).toBe('hello 127.0.0.1');
      const closed = new Promise<unknown[]>((resolve) => conn.once('close', (...a: unknown[]) => resolve(a)));
      await within(conn.close(), 5000, 'close');
      expect(await closed).toEqual([]);
      expect(conn.closed).toBe(true);
      await expect(conn.request('/hello')).rejects.toMatchObject({ code: 'CLOSED' });
    });
  });

  it('one connection per origin; a request outstanding when the server closes fails CLOSED; the agent reconnects', async () => {
    let release: (() => void) | undefined;
    const server = createServer(
      (req) => (req.path === '/hang' ? new Promise((resolve) => (release = () => resolve({ code: '2.05' }))) : { code: '2.05', payload: 'ok' }),
      { backend, closeTimeout: 100 },
    );
    servers.push(server);
    await server.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    const port = server.address('tcp').port;
    let connections = 0;
    server.on('connection', () => connections++);
    const url = `coap+tcp://127.0.0.1:${port}`;
    for (let i = 0; i < 3; i++) expect((await within(agent.request(`${url}/x`), 10000, 'request')).text()).toBe('ok');
    expect(connections).toBe(1);
    const hanging = agent.request(`${url}/hang`).catch((x: unknown) => x);
    await new Promise((r) => setTimeout(r, 100));
    await within(server.close(), 10000, 'close');
    release?.();
    const e = await within(hanging, 10000, 'outstanding');
    expect(e).toBeInstanceOf(CoapConnectionError);
    expect(['CLOSED', 'ECONNRESET']).toContain((e as CoapConnectionError).code);
    // a new server on the same port: the agent opens a new connection
    const again = createServer(() => ({ code: '2.05', payload: 'again' }), { backend });
    servers.push(again);
    await again.listen({ transport: 'tcp', port, host: '127.0.0.1' });
    expect((await within(agent.request(`${url}/x`), 10000, 'reconnect')).text()).toBe('again');
  });

  it('an Abort from the server closes the client connection with ABORTED', async () => {
    const server = createServer(() => ({ code: '2.05' }), { backend });
    servers.push(server);
    await server.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    server.on('connection', (c: CoapConnection) => setTimeout(() => c.abort('go away'), 50));
    const conn = await within(connect(`coap+tcp://127.0.0.1:${server.address('tcp').port}`, { backend }), 10000, 'connect');
    const err = await within(new Promise<unknown>((resolve) => conn.once('close', resolve)), 10000, 'abort');
    expect(err).toBeInstanceOf(CoapConnectionError);
    expect((err as CoapConnectionError).code).toBe('ABORTED');
    await expect(conn.request('/x')).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('a refused connection rejects with CoapConnectionError ECONNREFUSED', async () => {
    const probe = createServer(() => ({ code: '2.05' }), { backend });
    await probe.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    const port = probe.address('tcp').port;
    await probe.close();
    const e = await within(agent.request(`coap+tcp://127.0.0.1:${port}/x`).catch((x: unknown) => x), 10000, 'refused');
    expect(e).toBeInstanceOf(CoapConnectionError);
    expect((e as CoapConnectionError).code).toBe('ECONNREFUSED');
    const c = await within(connect(`coap+tcp://127.0.0.1:${port}`, { backend }).catch((x: unknown) => x), 10000, 'refused connect');
    expect((c as CoapConnectionError).code).toBe('ECONNREFUSED');
  });

  it('a wrong PSK fails with PSK or HANDSHAKE; a certificate from another CA with VERIFY', async () => {
    const { url } = await serve('tls', 'psk');
    const e = await within(agent.request(`${url}/hello`, { psk: { identity: PSK.identity, key: 'wrong' } }).catch((x: unknown) => x), 10000, 'wrong psk');
    expect(e).toBeInstanceOf(CoapConnectionError);
    expect(['PSK', 'HANDSHAKE']).toContain((e as CoapConnectionError).code);
    const certs = await serve('tls', 'cert');
    const v = await within(agent.request(`${certs.url}/hello`, { ca: pki.otherCa }).catch((x: unknown) => x), 10000, 'bad cert');
    expect(v).toBeInstanceOf(CoapConnectionError);
    expect((v as CoapConnectionError).code).toBe('VERIFY');
    // the right CA works on the same server afterwards
    expect((await within(agent.request(`${certs.url}/hello`, { ca: pki.ca }), 10000, 'good cert')).code).toBe('2.05');
  });

  it('mutual TLS: requestCert refuses a client without a certificate and serves one with', async () => {
    const server = createServer(() => ({ code: '2.05', payload: 'ok' }), { backend });
    servers.push(server);
    await server.listen({ transport: 'tls', port: 0, host: '127.0.0.1', cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true });
    const url = `coaps+tcp://127.0.0.1:${server.address('tls').port}/x`;
    const e = await within(agent.request(url, { ca: pki.ca }).catch((x: unknown) => x), 10000, 'no client cert');
    expect(e).toBeInstanceOf(CoapConnectionError);
    const idents: (string | undefined)[] = [];
    server.on('connection', (c: CoapConnection) => idents.push(c.identity));
    const ok = await within(agent.request(url, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }), 10000, 'client cert');
    expect(ok.text()).toBe('ok');
    expect(idents).toEqual(['test-client']);
  });

  it('one server, one router, several listeners; the same transport twice is ALREADY_LISTENING', async () => {
    const server = createServer(demo(), { backend });
    servers.push(server);
    await server.listen({ transport: 'udp', port: 0, host: '127.0.0.1' });
    await server.listen({ transport: 'tcp', port: 0, host: '127.0.0.1' });
    await server.listen({ transport: 'tls', port: 0, host: '127.0.0.1', psk: (id) => (id === PSK.identity ? PSK.key : undefined) });
    await expect(server.listen({ transport: 'tcp', port: 0 })).rejects.toMatchObject({ code: 'ALREADY_LISTENING' });
    const u = await agent.request(`coap://127.0.0.1:${server.address('udp').port}/hello`);
    const t = await agent.request(`coap+tcp://127.0.0.1:${server.address('tcp').port}/hello`);
    const s = await agent.request(`coaps+tcp://127.0.0.1:${server.address('tls').port}/hello`, { psk: PSK });
    expect([u.text(), t.text(), s.text()]).toEqual(['hello 127.0.0.1', 'hello 127.0.0.1', 'hello 127.0.0.1']);
    await server.close();
    expect(() => server.address('tcp')).toThrow(expect.objectContaining({ code: 'NOT_LISTENING' }));
  });
});
