// The JavaScript-socket stream host (ts/transport/stream-js.ts) over the WASM connection driver
// (wasm/glue_stream.c): TCP and TLS (node:net / node:tls), WebSockets (ws), at the StreamCore
// record level, and libcoap's coap-client over coap+tcp.
import { afterAll, describe, expect, it } from 'vitest';
import { loadWasmBackend, wasmRaw } from '../ts/backend/wasm';
import { CONN_EVF_SYSERR, CONN_EVF_TLS, CONN_EVF_TLSERR, CONN_EV_OPEN, TLS_E_PSK, TLS_E_VERIFY } from '../ts/driver/abi';
import { jsStreamCore } from '../ts/transport/stream-js';
import { tcpSocketHost } from '../ts/transport/stream-node';
import { wasmStreamFeed } from '../ts/transport/stream-wasm';
import { Harness } from './support/stream-harness';

const raw = wasmRaw(loadWasmBackend())!;
const tcp = jsStreamCore(wasmStreamFeed(raw), tcpSocketHost);
const cores: Harness[] = [];
function harness(...a: ConstructorParameters<typeof Harness> extends [unknown, ...infer R] ? R : never): Harness {
  const h = new Harness(tcp, ...a);
  cores.push(h);
  return h;
}
afterAll(async () => {
  await Promise.all(cores.map((h) => h.core.close()));
});

describe('JS stream host: CoAP over TCP (WASM driver)', () => {
  it('request -> response, OPEN / READY / CLOSED', async () => {
    const srv = harness('tcp', 'server');
    srv.autoRespond = (path) => `hello ${path}`;
    const { index, address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
    expect(index).toBe(0);
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port });
    const open = await cli.opened(id);
    expect(open.flags & CONN_EVF_TLS).toBe(0);
    await cli.ready(id);
    const rq = cli.request(id, '/a/b');
    const res = await cli.response(rq);
    expect(res.code).toBe(0x45);
    expect(Buffer.from(res.payload).toString()).toBe('hello a/b');
    const sopen = srv.recs.find((r) => r.kind === CONN_EV_OPEN)!;
    expect(sopen.status).toBe(0); // listener index
    cli.core.closeConn(id, false);
    const c = await cli.closed(id);
    expect(c.status).toBe(0);
    await srv.closed(sopen.conn);
    expect(srv.core.stats().conns).toBe(0);
  });

  it('a refused connect is CLOSED with SYSERR -ECONNREFUSED', async () => {
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: 1 });
    const c = await cli.closed(id);
    expect(c.flags).toBe(CONN_EVF_SYSERR);
    expect(c.status).toBe(-111);
    expect(cli.recs.some((r) => r.kind === CONN_EV_OPEN)).toBe(false);
  });
});

// ----------------------------------------------------------------------------- TLS

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, inCI } from './support/peers';

interface Pki {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
  otherCa: string;
}

/** An EC P-256 CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost, CN server), a client
 *  certificate (CN client-7) and an unrelated CA, made by openssl now. */
function makePki(): Pki | string {
  const openssl = findBinary('openssl');
  if (openssl === undefined) {
    if (inCI) throw new Error('CI: openssl not found');
    return 'openssl not found on PATH';
  }
  const dir = mkdtempSync(join(tmpdir(), 'tc-pki-'));
  const run = (...args: string[]): void => void execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  try {
    const ca = (name: string): void => {
      run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
      run('req', '-x509', '-new', '-key', `${name}.key`, '-days', '2', '-subj', `/CN=${name}`, '-out', `${name}.pem`);
    };
    const leaf = (name: string, cn: string, ext: string): void => {
      run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
      run('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
      require('node:fs').writeFileSync(join(dir, `${name}.ext`), ext);
      run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    };
    ca('ca');
    ca('other');
    leaf('server', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    leaf('client', 'client-7', 'extendedKeyUsage=clientAuth\n');
    const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
    return { ca: r('ca.pem'), cert: r('server.pem'), key: r('server.key'), clientCert: r('client.pem'), clientKey: r('client.key'), otherCa: r('other.pem') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pki = makePki();
if (typeof pki === 'string') console.warn(`stream-js TLS certificates: SKIPPED (${pki})`);
const key7 = new Uint8Array(Buffer.from('secret-key-7'));

describe('JS stream host: CoAP over TLS (WASM driver)', () => {
  it('PSK: round trip, OPEN carries TLS and the identity on both sides', async () => {
    const srv = harness('tcp', 'server');
    srv.autoRespond = () => 'psk ok';
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { pskTable: new Map([['dev-7', key7]]) } });
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { pskIdentity: 'dev-7', pskKey: key7 } });
    const open = await cli.opened(id);
    expect(open.flags & CONN_EVF_TLS).toBe(CONN_EVF_TLS);
    await cli.ready(id);
    const res = await cli.response(cli.request(id, '/x'));
    expect(Buffer.from(res.payload).toString()).toBe('psk ok');
    const sopen = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'server OPEN');
    expect(Buffer.from(sopen.data).toString()).toBe('dev-7');
    expect(sopen.flags & CONN_EVF_TLS).toBe(CONN_EVF_TLS);
  });

  it('PSK: a wrong key or an unknown identity is CLOSED with TLSERR PSK', async () => {
    const srv = harness('tcp', 'server');
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { pskCallback: (id) => (id === 'dev-7' ? key7 : undefined) } });
    const cli = harness('tcp', 'client');
    const a = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { pskIdentity: 'dev-7', pskKey: new Uint8Array(Buffer.from('wrong')) } });
    const b = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { pskIdentity: 'nobody', pskKey: key7 } });
    for (const id of [a, b]) {
      const c = await cli.closed(id);
      expect(c.flags).toBe(CONN_EVF_TLSERR);
      expect(c.status).toBe(TLS_E_PSK);
    }
    expect(srv.recs.some((r) => r.kind === CONN_EV_OPEN)).toBe(false);
  });

  it.skipIf(typeof pki === 'string')('certificates: server cert (IP SAN) and a client certificate; OPEN carries the CN', async () => {
    const p = pki as Pki;
    const srv = harness('tcp', 'server');
    srv.autoRespond = () => 'cert ok';
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { certPem: p.cert, keyPem: p.key, caPem: p.ca, requestCert: true } });
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: p.ca, certPem: p.clientCert, keyPem: p.clientKey } });
    const open = await cli.opened(id);
    expect(Buffer.from(open.data).toString()).toBe('server');
    await cli.ready(id);
    const res = await cli.response(cli.request(id, '/c'));
    expect(Buffer.from(res.payload).toString()).toBe('cert ok');
    const sopen = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'server OPEN');
    expect(Buffer.from(sopen.data).toString()).toBe('client-7');
  });

  it.skipIf(typeof pki === 'string')('certificates: an untrusted server, or a name mismatch, is CLOSED with TLSERR VERIFY', async () => {
    const p = pki as Pki;
    const srv = harness('tcp', 'server');
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { certPem: p.cert, keyPem: p.key } });
    const cli = harness('tcp', 'client');
    const a = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: p.otherCa } });
    const b = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: p.ca, servername: 'example.org' } });
    for (const id of [a, b]) {
      const c = await cli.closed(id);
      expect(c.flags).toBe(CONN_EVF_TLSERR);
      expect(c.status).toBe(TLS_E_VERIFY);
    }
  });
});

// ----------------------------------------------------------------------------- WebSockets

import * as http from 'node:http';
import * as https from 'node:https';
import { WebSocket as WsClient } from 'ws';
import { wsNodeSocketHost } from '../ts/transport/ws-node';

const ws = jsStreamCore(wasmStreamFeed(raw), wsNodeSocketHost);
function wsHarness(role: 'server' | 'client'): Harness {
  const h = new Harness(ws, 'ws', role);
  cores.push(h);
  return h;
}

describe('JS stream host: CoAP over WebSockets (ws, WASM driver)', () => {
  it('standalone server: round trip; OPEN / READY / CLOSED', async () => {
    const srv = wsHarness('server');
    srv.autoRespond = (p) => `ws ${p}`;
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
    const cli = wsHarness('client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port });
    await cli.opened(id);
    await cli.ready(id);
    const res = await cli.response(cli.request(id, '/q'));
    expect(Buffer.from(res.payload).toString()).toBe('ws q');
    const sopen = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'server OPEN');
    cli.core.closeConn(id, false);
    await cli.closed(id);
    await srv.closed(sopen.conn);
  });

  it('attached to an existing http server (other paths untouched); subprotocol coap required', async () => {
    const hs = http.createServer((_req, res) => res.end('plain http'));
    await new Promise<void>((r) => hs.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (hs.address() as { port: number }).port;
      const srv = wsHarness('server');
      srv.autoRespond = () => 'attached';
      await srv.core.listen({ host: '127.0.0.1', port: 0, httpServer: hs });
      const cli = wsHarness('client');
      const id = cli.core.connect({ host: '127.0.0.1', port, url: `ws://127.0.0.1:${port}/.well-known/coap` });
      await cli.ready(id);
      expect(Buffer.from((await cli.response(cli.request(id, '/a'))).payload).toString()).toBe('attached');
      const body = await new Promise<string>((r) => http.get(`http://127.0.0.1:${port}/x`, (res) => res.on('data', (d) => r(String(d)))));
      expect(body).toBe('plain http');
      // no "coap" subprotocol: refused
      const bad = new WsClient(`ws://127.0.0.1:${port}/.well-known/coap`, 'mqtt');
      const code = await new Promise<number>((r) => bad.on('unexpected-response', (_q, res) => r(res.statusCode ?? 0)).on('error', () => r(-1)));
      expect(code).toBe(400);
      bad.terminate();
      await cli.core.close();
      await srv.core.close();
    } finally {
      hs.closeAllConnections();
      await new Promise<void>((r) => hs.close(() => r()));
    }
  });

  it.skipIf(typeof pki === 'string')('wss: certificates, standalone and attached to an https server', async () => {
    const p = pki as Pki;
    const srv = wsHarness('server');
    srv.autoRespond = () => 'wss';
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { certPem: p.cert, keyPem: p.key } });
    const cli = wsHarness('client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: p.ca } });
    const open = await cli.opened(id);
    expect(open.flags & CONN_EVF_TLS).toBe(CONN_EVF_TLS);
    expect(Buffer.from(open.data).toString()).toBe('server');
    await cli.ready(id);
    expect(Buffer.from((await cli.response(cli.request(id, '/s'))).payload).toString()).toBe('wss');
    // an untrusted server
    const bad = cli.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: p.otherCa } });
    const c = await cli.closed(bad);
    expect([c.flags, c.status]).toEqual([CONN_EVF_TLSERR, TLS_E_VERIFY]);
    // attached to an https server
    const hs = https.createServer({ cert: p.cert, key: p.key });
    await new Promise<void>((r) => hs.listen(0, '127.0.0.1', () => r()));
    try {
      const srv2 = wsHarness('server');
      srv2.autoRespond = () => 'wss attached';
      await srv2.core.listen({ host: '127.0.0.1', port: 0, httpServer: hs });
      const port = (hs.address() as { port: number }).port;
      const id2 = cli.core.connect({ host: '127.0.0.1', port, tls: { caPem: p.ca } });
      await cli.ready(id2);
      expect(Buffer.from((await cli.response(cli.request(id2, '/t'))).payload).toString()).toBe('wss attached');
      const sopen = await srv2.waitFor((r) => r.kind === CONN_EV_OPEN, 'OPEN');
      expect(sopen.flags & CONN_EVF_TLS).toBe(CONN_EVF_TLS);
      await cli.core.close();
      await srv2.core.close();
    } finally {
      await Promise.all(cores.map((h) => h.core.close()));
      hs.closeAllConnections();
      await new Promise<void>((r) => hs.close(() => r()));
    }
  });
});
