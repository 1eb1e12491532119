// The JavaScript-socket stream host (ts/transport/stream-js.ts) over the WASM connection driver
// (wasm/glue_stream.c): TCP and TLS (node:net / node:tls), WebSockets (ws), at the StreamCore
// record level, and libcoap's coap-client over coap+tcp.
import { afterAll, describe, expect, it } from 'vitest';
import { loadWasmBackend, wasmRaw } from '../ts/backend/wasm';
import { CONN_EVF_SYSERR, CONN_EVF_TLS, CONN_EVF_TLSERR, CONN_EV_CLOSED, CONN_EV_OPEN, TLS_E_PSK, TLS_E_VERIFY } from '../ts/driver/abi';
import { jsStreamCore } from '../ts/transport/stream-js';
import { tcpSocketHost } from '../ts/transport/stream-node';
import { wasmStreamFeed } from '../ts/transport/stream-wasm';
import { Harness } from './support/stream-harness';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, inCI } from './support/peers';
import * as http from 'node:http';
import * as https from 'node:https';
import { WebSocket as WsClient } from 'ws';
import { wsNodeSocketHost } from '../ts/transport/ws-node';
import * as net from 'node:net';
import { wsBrowserSocketHost } from '../ts/transport/ws-browser';
import { CONNC_CSM_TIMEOUT_MS, CONNC_IDLE_MS, CONNC_PING_TIMEOUT_MS, CONN_EV_ABORT, E_TIMEOUT, STREAM_CONFIG_CONN } from '../ts/driver/abi';
import { loadNativeAddon } from '../ts/backend/native';
import type { StreamFeedFactory } from '../ts/transport/stream-feed';
import { nativeStreamFeed, type StreamFeedAddon } from '../ts/transport/stream-feed-native';

const raw = wasmRaw(loadWasmBackend())!;
const cores: Harness[] = [];

/** The connection driver under the JS sockets: WebAssembly, and the addon's feed exports. */
const FEEDS: [string, StreamFeedFactory][] = [['WASM', wasmStreamFeed(raw)]];
try {
  FEEDS.push(['native', nativeStreamFeed(loadNativeAddon() as unknown as StreamFeedAddon)]);
} catch (e) {
  if (inCI) throw e;
  console.warn(`stream-js over the addon's feed: SKIPPED (${String((e as Error).message).split('\n')[0]})`);
}

/** Factories and harness makers over one feed. */
function kit(feed: StreamFeedFactory) {
  const tcp = jsStreamCore(feed, tcpSocketHost);
  const ws = jsStreamCore(feed, wsNodeSocketHost);
  const harness = (...a: ConstructorParameters<typeof Harness> extends [unknown, ...infer R] ? R : never): Harness => {
    const h = new Harness(tcp, ...a);
    cores.push(h);
    return h;
  };
  const wsHarness = (role: 'server' | 'client'): Harness => {
    const h = new Harness(ws, 'ws', role);
    cores.push(h);
    return h;
  };
  return { tcp, ws, harness, wsHarness };
}
afterAll(async () => {
  await Promise.all(cores.map((h) => h.core.close()));
});

for (const [feedKind, feed] of FEEDS) {
  describe(`JS stream host: CoAP over TCP [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
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
      const st = srv.core.stats();
      expect(st.conns).toBe(0);
      expect([st.opened, st.closed, st.accepted]).toEqual([1, 1, 1]);
      expect(st.rxBytes).toBeGreaterThan(0);
      expect(st.txBytes).toBeGreaterThan(0);
      expect(cli.core.stats().connects).toBe(1);
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
}

// ----------------------------------------------------------------------------- TLS

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
      writeFileSync(join(dir, `${name}.ext`), ext);
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

for (const [feedKind, feed] of FEEDS) {
  describe(`JS stream host: CoAP over TLS [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
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
}

// ----------------------------------------------------------------------------- WebSockets

for (const [feedKind, feed] of FEEDS) {
  describe(`JS stream host: CoAP over WebSockets (ws) [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
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
}

// ------------------------------------------------------------- bounds, garbage, slow readers

/** RFC 8323 §3.2 frames in buf: [code, token length, whole frame length]; stops at a partial one. */
function frames(buf: Buffer): { codes: number[]; used: number } {
  const codes: number[] = [];
  let p = 0;
  for (;;) {
    if (p + 2 > buf.length) break;
    const len = (buf[p] as number) >> 4;
    const tkl = (buf[p] as number) & 15;
    const ext = len === 13 ? 1 : len === 14 ? 2 : len === 15 ? 4 : 0;
    if (p + 1 + ext + 1 > buf.length) break;
    let n = len;
    if (ext === 1) n = (buf[p + 1] as number) + 13;
    else if (ext === 2) n = buf.readUInt16BE(p + 1) + 269;
    else if (ext === 4) n = buf.readUInt32BE(p + 1) + 65805;
    const total = 1 + ext + 1 + tkl + n;
    if (p + total > buf.length) break;
    codes.push(buf[p + 1 + ext] as number);
    p += total;
  }
  return { codes, used: p };
}

/** A raw client: connects, optionally sends our CSM, collects frames. */
function rawClient(port: number): Promise<{ sock: net.Socket; codes: number[]; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const codes: number[] = [];
    let pending = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      const f = frames(pending);
      codes.push(...f.codes);
      pending = pending.subarray(f.used);
    });
    const ended = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('error', () => undefined);
    sock.once('connect', () => resolve({ sock, codes, ended }));
    sock.once('error', reject);
  });
}

for (const [feedKind, feed] of FEEDS) {
  describe(`JS stream host: bounds and misbehaving peers [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
    it('connections over the total or per-host bound are refused (socket destroyed)', async () => {
      const srv = new Harness(tcp, 'tcp', 'server', { maxConnections: 2, maxConnectionsPerHost: 2 });
      cores.push(srv);
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const cli = harness('tcp', 'client');
      const ids = [0, 1, 2].map(() => cli.core.connect({ host: '127.0.0.1', port: address.port }));
      const third = await cli.closed(ids[2] as number);
      expect(third.kind).toBe(CONN_EV_CLOSED);
      await cli.ready(ids[0] as number);
      await cli.ready(ids[1] as number);
      const st = srv.core.stats();
      expect(st.refused).toBeGreaterThanOrEqual(1);
      expect(st.conns).toBe(2);
      expect(srv.recs.filter((r) => r.kind === CONN_EV_OPEN).length).toBe(2);

      const one = new Harness(tcp, 'tcp', 'server', { maxConnections: 8, maxConnectionsPerHost: 1 });
      cores.push(one);
      const a2 = await one.core.listen({ host: '127.0.0.1', port: 0 });
      const x = cli.core.connect({ host: '127.0.0.1', port: a2.address.port });
      await cli.ready(x);
      const y = cli.core.connect({ host: '127.0.0.1', port: a2.address.port });
      await cli.closed(y);
      expect(one.core.stats().refused).toBe(1);
    });

    it('hundreds of idle connections and a slow reader do not starve a client', async () => {
    const srv = harness('tcp', 'server');
    srv.autoRespond = () => 'served';
    const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
    const idle = await Promise.all(Array.from({ length: 300 }, () => rawClient(address.port)));
    const slow = await rawClient(address.port);
    slow.sock.pause();
    slow.sock.write(Buffer.from([0x40, 0xe1, 0x23, 0x01, 0x00, 0x00]));
    const cli = harness('tcp', 'client');
    const id = cli.core.connect({ host: '127.0.0.1', port: address.port });
    await cli.ready(id);
    for (let k = 0; k < 20; k++) expect(Buffer.from((await cli.response(cli.request(id, '/p'))).payload).toString()).toBe('served');
    expect(srv.core.stats().conns).toBe(302);
    for (const c of idle) c.sock.destroy();
    slow.sock.destroy();
  });

  it('garbage instead of a CSM is answered with Abort (7.05) and the connection closes', async () => {
      const srv = harness('tcp', 'server');
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const c = await rawClient(address.port);
      c.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.ended;
      expect(c.codes[0]).toBe(0xe1); // the server's CSM
      expect(c.codes).toContain(0xe5); // Abort
      const open = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'OPEN');
      const closed = await srv.closed(open.conn);
      expect(closed.status).not.toBe(0);
    });

    it('a slow reader pauses its connection; every request is answered once it reads', async () => {
      const srv = harness('tcp', 'server');
      const big = 'x'.repeat(16000);
      srv.autoRespond = () => big;
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const c = await rawClient(address.port);
      c.sock.pause(); // reads nothing
      // CSM: Max-Message-Size 65536 (so that responses of 16 kB may be sent)
      c.sock.write(Buffer.from([0x40, 0xe1, 0x23, 0x01, 0x00, 0x00]));
      const req = (i: number): Buffer => Buffer.from([0x22, 0x01, i >> 8, i & 0xff, 0xb1, 0x70]); // GET /p, 2-byte token
      let sent = 0;
      // a few requests at a time (within the connection's exchange slots) until the server paused
      while (srv.core.stats().readPauses === 0 && sent < 60000) {
        c.sock.write(Buffer.concat(Array.from({ length: 8 }, () => req(sent++ & 0xffff))));
        await new Promise((r) => setTimeout(r, 1));
      }
      expect(srv.core.stats().readPauses).toBeGreaterThan(0);
      c.sock.resume();
      const t1 = Date.now();
      while (c.codes.length < sent + 1 && Date.now() - t1 < 30000) await new Promise((r) => setTimeout(r, 20));
      const answers = c.codes.slice(1);
      expect(answers.length).toBe(sent);
      // 2.05, or 5.03 while every exchange slot of the connection was busy (RFC 8323 answers all)
      expect(answers.every((k) => k === 0x45 || k === 0xa3)).toBe(true);
      expect(answers.filter((k) => k === 0x45).length).toBeGreaterThan(sent / 2);
      c.sock.destroy();
    }, 60000);
  });
}

for (const [feedKind, feed] of FEEDS) {
  describe(`JS stream host: the browser WebSocket host (WHATWG API, here from ws) [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
    it('connects with subprotocol coap; round trip; a refused connect is SYSERR', async () => {
      const g = globalThis as { WebSocket?: unknown };
      const saved = g.WebSocket;
      g.WebSocket = WsClient;
      try {
        const srv = wsHarness('server');
        srv.autoRespond = (p) => `browser ${p}`;
        const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
        const bws = jsStreamCore(feed, wsBrowserSocketHost);
        const cli = new Harness(bws, 'ws', 'client');
        cores.push(cli);
        const id = cli.core.connect({ host: '127.0.0.1', port: address.port });
        await cli.ready(id);
        expect(Buffer.from((await cli.response(cli.request(id, '/b'))).payload).toString()).toBe('browser b');
        const bad = cli.core.connect({ host: '127.0.0.1', port: 1 });
        const c = await cli.closed(bad);
        expect([c.flags, c.status]).toEqual([CONN_EVF_SYSERR, -111]);
        await expect(cli.core.listen({ host: '127.0.0.1', port: 0 })).rejects.toThrow(/cannot listen/);
      } finally {
        g.WebSocket = saved;
      }
    });
  });
}

// ------------------------------------------------------------------------- libcoap interop

const coapClient = findBinary('coap-client-notls');
if (coapClient === undefined) {
  if (inCI) throw new Error('CI: coap-client-notls not found (apt-get install libcoap3-bin)');
  console.warn('stream-js libcoap interop: SKIPPED (coap-client-notls not found on PATH)');
}

/** Runs a libcoap client; its stdout and exit code. */
function libcoapRun(bin: string, args: string[]): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(bin, args);
    let out = '';
    p.stdout.on('data', (d) => (out += String(d)));
    const t = setTimeout(() => p.kill('SIGKILL'), 15000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ out, code });
    });
  });
}

const coapClientTls = findBinary('coap-client-openssl');
if (coapClientTls === undefined) {
  if (inCI) throw new Error('CI: coap-client-openssl not found (apt-get install libcoap3-bin)');
  console.warn('stream-js libcoap TLS interop: SKIPPED (coap-client-openssl not found on PATH)');
}

for (const [feedKind, feed] of FEEDS) {
  describe.skipIf(coapClientTls === undefined)(`libcoap coap-client-openssl -> JS stream host (coaps+tcp) [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
    it('PSK', async () => {
      const srv = harness('tcp', 'server');
      srv.autoRespond = (p) => `psk ${p}`;
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { pskTable: new Map([['dev-7', key7]]) } });
      const r = await libcoapRun(coapClientTls as string, ['-m', 'get', '-B', '5', '-u', 'dev-7', '-k', 'secret-key-7', `coaps+tcp://127.0.0.1:${address.port}/a`]);
      expect(r.out).toContain('psk a');
      const open = await srv.waitFor((x) => x.kind === CONN_EV_OPEN, 'OPEN');
      expect(Buffer.from(open.data).toString()).toBe('dev-7');
    });

    it.skipIf(typeof pki === 'string')('certificates (-R CA)', async () => {
      const p = pki as Pki;
      const dir = mkdtempSync(join(tmpdir(), 'tc-ca-'));
      try {
        writeFileSync(join(dir, 'ca.pem'), p.ca);
        const srv = harness('tcp', 'server');
        srv.autoRespond = (x) => `pki ${x}`;
        const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0, tls: { certPem: p.cert, keyPem: p.key } });
        const r = await libcoapRun(coapClientTls as string, ['-m', 'get', '-B', '5', '-R', join(dir, 'ca.pem'), `coaps+tcp://127.0.0.1:${address.port}/b`]);
        expect(r.out).toContain('pki b');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

for (const [feedKind, feed] of FEEDS) {
  describe.skipIf(coapClient === undefined)(`libcoap coap-client-notls -> JS stream host (coap+tcp) [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
    it('GET coap+tcp:// is answered', async () => {
      const srv = harness('tcp', 'server');
      srv.autoRespond = (p) => `libcoap ${p}`;
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const r = await new Promise<{ out: string; code: number | null }>((resolve) => {
        const p = spawn(coapClient as string, ['-m', 'get', '-B', '5', `coap+tcp://127.0.0.1:${address.port}/hello/world`]);
        let out = '';
        p.stdout.on('data', (d) => (out += String(d)));
        p.on('close', (code) => resolve({ out, code }));
      });
      expect(r.out.trim()).toBe('libcoap hello/world');
      expect(r.code).toBe(0);
    });
  });
}

// ------------------------------------------------------------------- closing, timers, ws abuse

for (const [feedKind, feed] of FEEDS) {
  describe(`JS stream host: closing, timers, WebSocket misuse [${feedKind} driver]`, () => {
    const { tcp, harness, wsHarness } = kit(feed);
    void tcp; void harness; void wsHarness;
    it('two listeners on one core (OPEN STATUS = index); closeConn(abort) sends Abort with its diagnostic', async () => {
      const srv = harness('tcp', 'server');
      await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const second = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      expect(second.index).toBe(1);
      const cli = harness('tcp', 'client');
      const id = cli.core.connect({ host: '127.0.0.1', port: second.address.port });
      await cli.ready(id);
      const sopen = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'OPEN');
      expect(sopen.status).toBe(1);
      await srv.ready(sopen.conn);
      cli.core.closeConn(id, true, 'going away');
      expect((await cli.closed(id)).status).toBe(0);
      await srv.waitFor((r) => r.kind === CONN_EV_ABORT && r.conn === sopen.conn, 'ABORT at the server');
      await srv.closed(sopen.conn);
    });

    it('a peer that never reads is found dead by the idle Ping; its socket and slot are freed', async () => {
      const srv = new Harness(tcp, 'tcp', 'server', {}, (cfg) => {
        cfg[STREAM_CONFIG_CONN + CONNC_IDLE_MS] = 300;
        cfg[STREAM_CONFIG_CONN + CONNC_PING_TIMEOUT_MS] = 300;
      });
      cores.push(srv);
      const big = 'x'.repeat(16000);
      srv.autoRespond = () => big;
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const c = await rawClient(address.port);
      c.sock.pause();
      c.sock.write(Buffer.from([0x40, 0xe1, 0x23, 0x01, 0x00, 0x00]));
      let sent = 0;
      const tl = Date.now();
      // until the server paused the connection (or, on a loaded machine, found it dead first:
      // this client answers no Ping)
      while (srv.core.stats().readPauses === 0 && !srv.recs.some((r) => r.kind === CONN_EV_CLOSED) && Date.now() - tl < 10000) {
        c.sock.write(Buffer.concat(Array.from({ length: 8 }, () => Buffer.from([0x22, 0x01, (sent >> 8) & 0xff, sent++ & 0xff, 0xb1, 0x70]))));
        await new Promise((r) => setTimeout(r, 1));
      }
      const open = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'OPEN');
      const closed = await srv.closed(open.conn, 10000);
      expect(closed.status).toBe(E_TIMEOUT);
      // the server lets go of the socket (the client, not reading, does not notice yet)
      const t0 = Date.now();
      while (srv.core.stats().conns !== 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      expect(srv.core.stats().conns).toBe(0);
      c.sock.destroy();
    }, 30000);

    it('a peer that sends no CSM is aborted when the CSM wait ends (the timer)', async () => {
      const srv = new Harness(tcp, 'tcp', 'server', {}, (cfg) => {
        cfg[STREAM_CONFIG_CONN + CONNC_CSM_TIMEOUT_MS] = 150;
      });
      cores.push(srv);
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const c = await rawClient(address.port);
      await c.ended; // closed by the server
      expect(c.codes).toEqual([0xe1, 0xe5]); // CSM, then Abort
      const open = await srv.waitFor((r) => r.kind === CONN_EV_OPEN, 'OPEN');
      expect((await srv.closed(open.conn)).status).not.toBe(0);
    });

    it('WebSockets: a text message or a message over Max-Message-Size ends the connection', async () => {
      const srv = wsHarness('server');
      const { address } = await srv.core.listen({ host: '127.0.0.1', port: 0 });
      const open = (): Promise<WsClient> =>
        new Promise((r, j) => {
          const w = new WsClient(`ws://127.0.0.1:${address.port}/.well-known/coap`, 'coap');
          w.on('open', () => r(w)).on('error', j);
        });
      const a = await open();
      const aClosed = new Promise<number>((r) => a.on('close', (code) => r(code)));
      a.send('hello');
      expect(await aClosed).toBe(1003);
      const b = await open();
      const got: Buffer[] = [];
      b.on('message', (d: Buffer) => got.push(d));
      const bClosed = new Promise<number>((r) => b.on('close', (code) => r(code)));
      b.send(Buffer.from([0x00, 0xe1])); // CSM
      b.send(Buffer.concat([Buffer.from([0x00, 0x02, 0xff]), Buffer.alloc(4000)])); // POST, 4000-byte payload
      await bClosed;
      expect(got.map((m) => m[1])).toContain(0xe5); // Abort
      const e = await open();
      const egot: Buffer[] = [];
      e.on('message', (d: Buffer) => egot.push(d));
      const eClosed = new Promise<number>((r) => e.on('close', (code) => r(code)));
      e.send(Buffer.alloc(0)); // no CoAP message at all
      await eClosed;
      expect(egot.map((m) => m[1])).toContain(0xe5);
    });
  });
}

describe('JS stream host: the browser side', () => {
  it('stream-js, stream-wasm and ws-browser bundle for browsers without Node built-ins or npm ws', async () => {
    const esbuild = await import('esbuild');
    const r = await esbuild.build({
      stdin: {
        contents: "export { jsStreamCore } from './ts/transport/stream-js'; export { wasmStreamFeed } from './ts/transport/stream-wasm'; export { wsBrowserSocketHost } from './ts/transport/ws-browser';",
        resolveDir: join(__dirname, '..'),
        loader: 'ts',
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.some((f) => f.endsWith('ts/transport/ws-browser.ts'))).toBe(true);
    expect(inputs.filter((f) => f.startsWith('node:') || f.includes('node_modules/ws/') || f.endsWith('stream-node.ts') || f.endsWith('ws-node.ts'))).toEqual([]);
  });
});
