/**
 * The native stream host (native/binding/stream.c through ts/transport/stream-native.ts):
 * CoAP over TCP and TLS (RFC 8323) between two hosts on the libuv loop, host records (OPEN,
 * CLOSED with SYSERR / TLSERR), bounds, a misbehaving peer, and libcoap's client against a
 * native listener. Skips (one line) where the addon does not load; with CI=true that fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as abi from '../ts/driver/abi';
import { endpointConfig } from '../ts/transport/udp-records';
import { nativeStreamFactory, type StreamAddon } from '../ts/transport/stream-native';
import { nativeStreamFeed, type StreamFeedAddon } from '../ts/transport/stream-feed-native';
import { OUT_CLOSE, OUT_WRITE, TCS_DELIVER, type StreamFeed } from '../ts/transport/stream-feed';
import type { StreamCore, TlsSettings } from '../ts/transport/stream-core';
import { loadNativeAddon } from '../ts/backend/native';
import { hasNative, nativeMissing, nativePath } from './support/backends';
import { findBinary, inCI } from './support/peers';

if (!hasNative) console.log(`stream-native: skipped: ${nativeMissing}`);
const addon = hasNative ? (loadNativeAddon(nativePath) as StreamAddon) : undefined;
const factory = addon !== undefined ? nativeStreamFactory(addon) : undefined;

/* ------------------------------------------------------------------ config */

interface Limits {
  maxConns?: number;
  perHost?: number;
  csmTimeoutMs?: number;
  /** TC_TCP (1, default) or TC_WS (2) */
  transport?: number;
  pingTimeoutMs?: number;
}

function streamConfig(l: Limits = {}): Uint32Array {
  const maxConns = l.maxConns ?? 64;
  const cfg = new Uint32Array(abi.STREAM_CONFIG_WORDS);
  const c = abi.STREAM_CONFIG_CONN;
  cfg[c + abi.CONNC_TRANSPORT] = l.transport ?? 1; // TC_TCP
  cfg[c + abi.CONNC_FLAGS] = 1; // BERT
  cfg[c + abi.CONNC_MAX_MESSAGE_SIZE] = 8192;
  cfg[c + abi.CONNC_OUT_BYTES] = 65536;
  cfg[c + abi.CONNC_MAX_EXCHANGES] = 16;
  cfg[c + abi.CONNC_MAX_REQUESTS] = 16;
  cfg[c + abi.CONNC_REQUEST_TIMEOUT_MS] = 10000;
  cfg[c + abi.CONNC_CSM_TIMEOUT_MS] = l.csmTimeoutMs ?? 5000;
  cfg[c + abi.CONNC_IDLE_MS] = 30000;
  cfg[c + abi.CONNC_PING_TIMEOUT_MS] = l.pingTimeoutMs ?? 10000;
  cfg[c + abi.CONNC_OVERLOAD_MAX_AGE] = 2;
  const udp = endpointConfig({}, 'server');
  cfg.set(udp.subarray(abi.EP_CONFIG_WORDS), abi.STREAM_CONFIG_SRV);
  const srv = (x: number) => abi.STREAM_CONFIG_SRV + x - abi.EP_CONFIG_WORDS;
  cfg[srv(abi.SRVC_MAX_IN_PROGRESS)] = Math.max(cfg[srv(abi.SRVC_MAX_IN_PROGRESS)]!, maxConns * 16);
  cfg[srv(abi.SRVC_MAX_MESSAGE_SIZE)] = 8192;
  const lim = abi.STREAM_CONFIG_LIMITS;
  cfg[lim + abi.SLIM_MAX_CONNS] = maxConns;
  cfg[lim + abi.SLIM_MAX_PER_HOST] = l.perHost ?? maxConns;
  cfg[lim + abi.SLIM_RX_WORDS] = 1 << 16;
  cfg[lim + abi.SLIM_RX_BYTES] = 1 << 20;
  return cfg;
}

/* ------------------------------------------------------------------ records */

interface Rec {
  kind: number;
  id: number;
  status: number;
  flags: number;
  family: number;
  port: number;
  code: number;
  payload: Buffer;
  data: Buffer;
  path: string;
}

const dec = new TextDecoder();

class Host {
  readonly core: StreamCore;
  readonly recs: Rec[] = [];
  private waiters: (() => void)[] = [];
  /** answers REQUEST records: path -> payload (2.05) */
  routes = new Map<string, string>();
  /** RESPOND records that failed (TC_E_FULL for a peer that does not read) */
  failed = 0;

  constructor(l: Limits = {}) {
    this.core = factory!('tcp', streamConfig(l), randomBytes(abi.SEED_BYTES), (u32, u8, count, base) => this.onBatch(u32, u8, count, base), 'server');
    this.core.setRef(true);
  }

  private onBatch(u32: Uint32Array, u8: Uint8Array, count: number, base: number): void {
    let p = 0;
    let nw = 0;
    let nb = 0;
    for (let n = 0; n < count; n++) {
      const kind = u32[p + abi.RX_KIND]!;
      const opts = kind === abi.EV_REQUEST || kind === abi.EV_RESPONSE ? u32[p + abi.RX_OPT_COUNT]! : 0;
      const off = (x: number) => base + x;
      let path = '';
      for (let k = 0; k < opts; k++) {
        const o = p + abi.RX_WORDS + 3 * k;
        if (u32[o] === 11) path += (path ? '/' : '') + dec.decode(u8.subarray(off(u32[o + 1]!), off(u32[o + 1]!) + u32[o + 2]!));
      }
      const po = off(u32[p + abi.RX_PAYLOAD_OFF]!);
      const r: Rec = {
        kind,
        id: u32[p + abi.RX_ID]!,
        status: u32[p + abi.RX_STATUS]! | 0,
        flags: u32[p + abi.RX_FLAGS]!,
        family: u32[p + abi.RX_FAMILY]!,
        port: u32[p + abi.RX_PORT]!,
        code: u32[p + abi.RX_CODE]!,
        payload: Buffer.from(u8.subarray(po, po + (opts > 0 || kind === abi.EV_RESPONSE ? u32[p + abi.RX_PAYLOAD_LEN]! : 0))),
        data: Buffer.from(u8.subarray(off(u32[p + abi.RX_DATA]!), off(u32[p + abi.RX_DATA]!) + u32[p + abi.RX_LEN]!)),
        path,
      };
      this.recs.push(r);
      if (kind === abi.EV_REQUEST && this.routes.has(path)) {
        const body = Buffer.from(this.routes.get(path)!);
        const w = this.core.txWords;
        w.fill(0, nw, nw + abi.TX_RESPOND_WORDS);
        w[nw + abi.TX_RESPOND_KIND] = abi.TX_RESPOND;
        w[nw + abi.TX_RESPOND_ID] = r.id;
        w[nw + abi.TX_RESPOND_CODE] = 0x45;
        w[nw + abi.TX_RESPOND_PAYLOAD_OFF] = nb;
        w[nw + abi.TX_RESPOND_PAYLOAD_LEN] = body.length;
        this.core.txBytes.set(body, nb);
        nb += body.length;
        nw += abi.TX_RESPOND_WORDS;
      }
      p += abi.RX_WORDS + 3 * opts;
    }
    if (nw > 0) this.failed += this.core.flush(nw, nb);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** A GET for path on connection conn; the TX record's RC. */
  get(conn: number, path: string): number {
    const w = this.core.txWords;
    const n = abi.TX_REQUEST_WORDS + 3;
    w.fill(0, 0, n);
    w[abi.TX_REQUEST_KIND] = abi.TX_REQUEST;
    w[abi.TX_REQUEST_CODE] = 1;
    w[abi.TX_REQUEST_FAMILY] = abi.FAMILY_CONN;
    w[abi.TX_REQUEST_PORT] = conn;
    w[abi.TX_REQUEST_TOKEN] = 4;
    w[abi.TX_REQUEST_OPT_COUNT] = 1;
    const b = Buffer.from(path);
    this.core.txBytes.set(b, 0);
    w[abi.TX_REQUEST_WORDS] = 11;
    w[abi.TX_REQUEST_WORDS + 1] = 0;
    w[abi.TX_REQUEST_WORDS + 2] = b.length;
    w[abi.TX_REQUEST_PAYLOAD_OFF] = b.length;
    this.core.flush(n, b.length);
    return w[abi.TX_REQUEST_RC]! | 0;
  }

  /** Waits (bounded) for a record matching pred. */
  async wait(pred: (r: Rec) => boolean, what: string, ms = 5000): Promise<Rec> {
    const end = Date.now() + ms;
    for (;;) {
      const r = this.recs.find(pred);
      if (r !== undefined) return r;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; records: ${JSON.stringify(this.recs.map((x) => [x.kind, x.port, x.id, x.status, x.flags]))}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  close(): Promise<void> {
    return this.core.close();
  }
}

const isOpen = (id: number) => (r: Rec) => r.kind === abi.CONN_EV_OPEN && r.id === id;
const isKind = (kind: number, conn: number) => (r: Rec) => r.kind === kind && r.family === abi.FAMILY_CONN && r.port === conn;

/** Connects client to server's listener, waits for READY on both; returns both ids. */
async function pair(server: Host, client: Host, port: number, tls?: TlsSettings): Promise<{ cid: number; sid: number }> {
  const seen = new Set(server.recs.filter((r) => r.kind === abi.CONN_EV_OPEN).map((r) => r.id));
  const cid = client.core.connect({ host: '127.0.0.1', port, ...(tls ? { tls } : {}) });
  const open = await client.wait(isOpen(cid), 'client OPEN');
  expect(open.family).toBe(4);
  expect(open.port).toBe(port);
  await client.wait(isKind(abi.CONN_EV_READY, cid), 'client READY');
  const sopen = await server.wait(
    (r) => r.kind === abi.CONN_EV_OPEN && !seen.has(r.id) && server.recs.some((x) => x.kind === abi.CONN_EV_READY && x.port === r.id),
    'server OPEN+READY',
  );
  return { cid, sid: sopen.id };
}

async function roundTrip(server: Host, client: Host, cid: number, path = 'hello'): Promise<Rec> {
  server.routes.set(path, `hi ${path}`);
  const before = client.recs.length;
  expect(client.get(cid, path)).toBe(0);
  const resp = await client.wait((r) => client.recs.indexOf(r) >= before && r.kind === abi.EV_RESPONSE && r.port === cid, 'response');
  expect(resp.code).toBe(0x45);
  expect(resp.payload.toString()).toBe(`hi ${path}`);
  return resp;
}

/* ------------------------------------------------------------------ certificates */

let certDir = '';
let pki: { ca: string; cert: string; key: string; otherCa: string; cliCert: string; cliKey: string } | undefined;

function makePki(): void {
  const openssl = findBinary('openssl');
  if (openssl === undefined) return;
  certDir = mkdtempSync(join(tmpdir(), 'turbocoap-stream-'));
  const f = (n: string) => join(certDir, n);
  const run = (...args: string[]) => execFileSync(openssl, args, { stdio: 'pipe' });
  for (const ca of ['ca', 'other']) {
    run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${ca}.key`));
    run('req', '-x509', '-new', '-key', f(`${ca}.key`), '-days', '2', '-subj', `/CN=turbocoap test ${ca}`, '-out', f(`${ca}.pem`));
  }
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('srv.key'));
  run('req', '-new', '-key', f('srv.key'), '-subj', '/CN=turbocoap-test-server', '-out', f('srv.csr'));
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('srv.pem'));
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('cli.key'));
  run('req', '-new', '-key', f('cli.key'), '-subj', '/CN=turbocoap-test-client', '-out', f('cli.csr'));
  run('x509', '-req', '-in', f('cli.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-out', f('cli.pem'));
  pki = {
    cliCert: readFileSync(f('cli.pem'), 'utf8'),
    cliKey: readFileSync(f('cli.key'), 'utf8'),
    ca: readFileSync(f('ca.pem'), 'utf8'),
    cert: readFileSync(f('srv.pem'), 'utf8'),
    key: readFileSync(f('srv.key'), 'utf8'),
    otherCa: readFileSync(f('other.pem'), 'utf8'),
  };
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/* ------------------------------------------------------------------ tests */

beforeAll(() => {
  if (hasNative) makePki();
});
afterAll(() => {
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

describe.skipIf(!hasNative)('native stream host', () => {
  const hosts: Host[] = [];
  const host = (l?: Limits) => {
    const h = new Host(l);
    hosts.push(h);
    return h;
  };
  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.close()));
  });

  it('TCP: OPEN and READY on both sides, a request through, the response back, stats', async () => {
    const server = host();
    const client = host();
    const { index, address } = await server.core.listen({ host: '127.0.0.1', port: 0 });
    expect(index).toBe(0);
    expect(address.family).toBe('IPv4');
    const { cid, sid } = await pair(server, client, address.port);
    const sopen = server.recs.find(isOpen(sid))!;
    expect(sopen.status).toBe(0); // listener index
    expect(sopen.flags & abi.CONN_EVF_TLS).toBe(0);
    expect(sopen.data.length).toBe(0); // no identity over TCP
    await roundTrip(server, client, cid);
    const req = server.recs.find((r) => r.kind === abi.EV_REQUEST)!;
    expect(req.family).toBe(abi.FAMILY_CONN);
    expect(req.port).toBe(sid);
    // a second listener: its OPEN records carry index 1
    const second = await server.core.listen({ host: '127.0.0.1', port: 0 });
    expect(second.index).toBe(1);
    const c2 = client.core.connect({ host: '127.0.0.1', port: second.address.port });
    await client.wait(isKind(abi.CONN_EV_READY, c2), 'READY on the second listener');
    await server.wait((r) => r.kind === abi.CONN_EV_OPEN && r.status === 1, 'OPEN with listener index 1');
    const st = server.core.stats();
    expect(st.accepted).toBe(2);
    expect(st.conns).toBe(2);
    expect(st.rxBytes).toBeGreaterThan(0);
    expect(st.txBytes).toBeGreaterThan(0);
    expect(client.core.stats().connects).toBe(2);
    // graceful close from the client: CLOSED on both sides
    client.core.closeConn(cid, false);
    await client.wait(isKind(abi.CONN_EV_CLOSED, cid), 'client CLOSED');
    const closed = await server.wait(isKind(abi.CONN_EV_CLOSED, sid), 'server CLOSED on EOF');
    expect(closed.status).toBe(0);
    expect(closed.flags & (abi.CONN_EVF_SYSERR | abi.CONN_EVF_TLSERR)).toBe(0);
  });

  it('TLS with PSK (table and callback): OPEN carries the TLS flag and the identity', async () => {
    const server = host();
    const client = host();
    const key = Buffer.from('secret-psk-key-1');
    const seen: string[] = [];
    const { address } = await server.core.listen({
      host: '127.0.0.1',
      port: 0,
      tls: {
        pskTable: new Map([['client-1', key]]),
        pskCallback: (id) => {
          seen.push(id);
          return id === 'client-2' ? Buffer.from('another-key') : undefined;
        },
      },
    });
    const { cid, sid } = await pair(server, client, address.port, { pskIdentity: 'client-1', pskKey: key });
    const sopen = server.recs.find(isOpen(sid))!;
    expect(sopen.flags & abi.CONN_EVF_TLS).toBe(abi.CONN_EVF_TLS);
    expect(sopen.data.toString()).toBe('client-1');
    expect(client.recs.find(isOpen(cid))!.flags & abi.CONN_EVF_TLS).toBe(abi.CONN_EVF_TLS);
    await roundTrip(server, client, cid, 'psk');
    const c2 = await pair(server, client, address.port, { pskIdentity: 'client-2', pskKey: Buffer.from('another-key') });
    expect(server.recs.find(isOpen(c2.sid))!.data.toString()).toBe('client-2');
    expect(seen).toContain('client-2');
    await roundTrip(server, client, c2.cid, 'cb');
  });

  it('TLS: a wrong PSK key closes with TLSERR before any OPEN', async () => {
    const server = host();
    const client = host();
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0, tls: { pskTable: new Map([['client-1', Buffer.from('right')]]) } });
    const cid = client.core.connect({ host: '127.0.0.1', port: address.port, tls: { pskIdentity: 'client-1', pskKey: Buffer.from('wrong') } });
    const closed = await client.wait(isKind(abi.CONN_EV_CLOSED, cid), 'client CLOSED');
    expect(closed.flags & abi.CONN_EVF_TLSERR).toBe(abi.CONN_EVF_TLSERR);
    expect(closed.status).toBeLessThanOrEqual(-100);
    expect(client.recs.some(isOpen(cid))).toBe(false);
    // the server's side ends too, without an OPEN
    await server.wait((r) => r.kind === abi.CONN_EV_CLOSED, 'server CLOSED');
    expect(server.recs.some((r) => r.kind === abi.CONN_EV_OPEN)).toBe(false);
  });

  it('TLS with certificates made by openssl: verified by IP, the peer CN as identity; an untrusted CA fails VERIFY', async (ctx) => {
    if (pki === undefined) {
      if (inCI) throw new Error('CI: openssl not found');
      ctx.skip();
      return;
    }
    const server = host();
    const client = host();
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0, tls: { certPem: pki.cert, keyPem: pki.key } });
    const { cid } = await pair(server, client, address.port, { caPem: pki.ca });
    const open = client.recs.find(isOpen(cid))!;
    expect(open.flags & abi.CONN_EVF_TLS).toBe(abi.CONN_EVF_TLS);
    expect(open.data.toString()).toBe('turbocoap-test-server');
    await roundTrip(server, client, cid, 'cert');
    // a client trusting another CA
    const bad = client.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: pki.otherCa } });
    const closed = await client.wait(isKind(abi.CONN_EV_CLOSED, bad), 'CLOSED (verify)');
    expect(closed.flags & abi.CONN_EVF_TLSERR).toBe(abi.CONN_EVF_TLSERR);
    expect(closed.status).toBe(-105); // TC_TLS_E_VERIFY
  });

  it('TLS: mutual authentication (requestCert) gives the client CN; SNI servername checked by DNS name', async (ctx) => {
    if (pki === undefined) {
      if (inCI) throw new Error('CI: openssl not found');
      ctx.skip();
      return;
    }
    const server = host();
    const client = host();
    const { address } = await server.core.listen({
      host: '127.0.0.1',
      port: 0,
      tls: { certPem: pki.cert, keyPem: pki.key, caPem: pki.ca, requestCert: true, rejectUnauthorized: true },
    });
    const { cid, sid } = await pair(server, client, address.port, { caPem: pki.ca, certPem: pki.cliCert, keyPem: pki.cliKey, servername: 'localhost' });
    expect(server.recs.find(isOpen(sid))!.data.toString()).toBe('turbocoap-test-client');
    await roundTrip(server, client, cid, 'mutual');
    // without a client certificate the server refuses the handshake
    const anon = client.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: pki.ca } });
    const closed = await client.wait(isKind(abi.CONN_EV_CLOSED, anon), 'CLOSED (no client certificate)');
    expect(closed.flags & abi.CONN_EVF_TLSERR).toBe(abi.CONN_EVF_TLSERR);
    await server.wait((r) => r.kind === abi.CONN_EV_CLOSED && (r.flags & abi.CONN_EVF_TLSERR) !== 0, 'server CLOSED with TLSERR');
    // a servername the certificate does not name fails verification
    const wrong = client.core.connect({ host: '127.0.0.1', port: address.port, tls: { caPem: pki.ca, certPem: pki.cliCert, keyPem: pki.cliKey, servername: 'example.org' } });
    const c2 = await client.wait(isKind(abi.CONN_EV_CLOSED, wrong), 'CLOSED (name mismatch)');
    expect(c2.status).toBe(-105);
  });

  it('a refused connect gives CLOSED with SYSERR -111 (ECONNREFUSED)', async () => {
    const client = host();
    const port = await freePort();
    const cid = client.core.connect({ host: '127.0.0.1', port });
    const closed = await client.wait(isKind(abi.CONN_EV_CLOSED, cid), 'CLOSED');
    expect(closed.flags & abi.CONN_EVF_SYSERR).toBe(abi.CONN_EVF_SYSERR);
    expect(closed.status).toBe(-111);
    expect(client.core.stats().connectErrors).toBe(1);
    // a bad address: CLOSED too (EINVAL), no throw
    const bad = client.core.connect({ host: 'not-an-ip', port: 1 });
    const c2 = await client.wait(isKind(abi.CONN_EV_CLOSED, bad), 'CLOSED (bad address)');
    expect(c2.flags & abi.CONN_EVF_SYSERR).toBe(abi.CONN_EVF_SYSERR);
    expect(c2.status).toBe(-22);
  });

  it('the connection bound: over it, the accepted socket is closed at once', async () => {
    const server = host({ maxConns: 2 });
    const client = host();
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0 });
    await pair(server, client, address.port);
    await pair(server, client, address.port);
    const third = client.core.connect({ host: '127.0.0.1', port: address.port });
    const closed = await client.wait(isKind(abi.CONN_EV_CLOSED, third), 'third closed by the server');
    expect(closed.status === 0 || (closed.flags & abi.CONN_EVF_SYSERR) !== 0).toBe(true);
    expect(client.recs.some(isKind(abi.CONN_EV_READY, third))).toBe(false);
    const st = server.core.stats();
    expect(st.refused).toBe(1);
    expect(st.conns).toBe(2);
    expect(server.recs.filter((r) => r.kind === abi.CONN_EV_OPEN).length).toBe(2);
  });

  it('a peer that sends garbage instead of a CSM gets an Abort signal, then the close', async () => {
    const server = host();
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0 });
    const got: Buffer[] = [];
    await new Promise<void>((res, rej) => {
      const s = netConnect(address.port, '127.0.0.1', () => s.write(Buffer.from([0x01, 0x01, 0xff, 0x00, 0x13, 0x37, 0x99])));
      s.on('data', (d) => got.push(d));
      s.on('error', rej);
      s.on('close', () => res());
      setTimeout(() => rej(new Error('not closed')), 5000).unref();
    });
    // parse the frames: the server's CSM (7.01), then Abort (7.05)
    const all = Buffer.concat(got);
    const codes: number[] = [];
    let p = 0;
    while (p < all.length) {
      const len = all[p]! >> 4;
      const tkl = all[p]! & 15;
      const ext = len === 13 ? 1 : len === 14 ? 2 : len === 15 ? 4 : 0;
      const body = ext === 0 ? len : ext === 1 ? all[p + 1]! + 13 : ext === 2 ? all.readUInt16BE(p + 1) + 269 : all.readUInt32BE(p + 1) + 65805;
      codes.push(all[p + 1 + ext]!);
      p += 1 + ext + 1 + tkl + body;
    }
    expect(codes[0]).toBe(0xe1);
    expect(codes).toContain(0xe5);
    const closed = await server.wait((r) => r.kind === abi.CONN_EV_CLOSED, 'server CLOSED');
    expect(closed.status).toBeLessThan(0); // the connection error it aborted with
  });

  it('a peer that never reads: its input pauses, others are still served; closed, its socket goes after the linger', async () => {
    const server = host({ pingTimeoutMs: 400 });
    const client = host();
    server.routes.set('big', 'x'.repeat(7000));
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0 });
    // a raw peer: its CSM (Max-Message-Size 65535), then thousands of GET /big, never reading
    const csm = Buffer.from([0x30, 0xe1, 0x22, 0xff, 0xff]); // Len 3, 7.01, option 2 (MMS) = 65535
    const get = Buffer.from([0x41, 0x01, 0x7a, 0xb3, 0x62, 0x69, 0x67]); // Len 4, TKL 1, GET, token, Uri-Path "big"
    const wave = Buffer.concat(Array.from({ length: 16 }, () => get)); // the exchange bound: 16
    const raw = netConnect(address.port, '127.0.0.1');
    raw.pause(); // never reads
    raw.on('error', () => {});
    await new Promise<void>((res) => raw.on('connect', () => res()));
    raw.write(csm);
    const served = () => server.recs.filter((r) => r.kind === abi.EV_REQUEST && r.path === 'big').length;
    // waves of 16 requests, each answered with 7000 bytes, until the kernel's buffers are full
    // and the server stops reading the peer
    for (let w = 0; w < 300 && server.core.stats().readPauses === 0; w++) {
      const before = served();
      raw.write(wave);
      const end = Date.now() + 300;
      while (served() < before + 16 && server.core.stats().readPauses === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
    }
    const st = server.core.stats();
    expect(st.readPauses).toBeGreaterThan(0);
    // another connection is served meanwhile
    const { cid } = await pair(server, client, address.port);
    await roundTrip(server, client, cid, 'other');
    // requests the peer keeps sending are not read: nothing more reaches the application
    const n = served();
    raw.write(Buffer.concat(Array.from({ length: 64 }, () => wave)));
    await new Promise((r) => setTimeout(r, 200));
    expect(served()).toBeLessThanOrEqual(n + 16);
    // closed by the application: its output cannot drain (the peer reads nothing); after the
    // linger (ping_timeout_ms) the socket is closed and the slot is free
    const rawId = server.recs.find((r) => r.kind === abi.CONN_EV_OPEN)!.id;
    expect(server.core.stats().conns).toBe(2);
    server.core.closeConn(rawId, false);
    await server.wait(isKind(abi.CONN_EV_CLOSED, rawId), 'CLOSED of the slow peer');
    const until = Date.now() + 3000;
    while (server.core.stats().conns > 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(server.core.stats().conns).toBe(1);
    await roundTrip(server, client, cid, 'still');
    raw.destroy();
  });

  it('close() with connections open: every handle closes, the promise resolves', async () => {
    const server = new Host();
    const client = new Host();
    const key = Buffer.from('k1');
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0, tls: { pskTable: new Map([['a', key]]) } });
    await pair(server, client, address.port, { pskIdentity: 'a', pskKey: key });
    const pending = client.core.connect({ host: '127.0.0.1', port: address.port, tls: { pskIdentity: 'a', pskKey: key } });
    expect(pending).toBeGreaterThan(0);
    await Promise.all([server.close(), client.close()]);
    expect(server.core.stats().conns).toBe(0);
    expect(server.core.flush(0, 0)).toBe(abi.E_STALE);
  });

  it('closeConn with abort sends Abort with the diagnostic; the client sees ABORT then CLOSED', async () => {
    const server = host();
    const client = host();
    const { address } = await server.core.listen({ host: '127.0.0.1', port: 0 });
    const { cid, sid } = await pair(server, client, address.port);
    server.core.closeConn(sid, true, 'going away');
    await server.wait(isKind(abi.CONN_EV_CLOSED, sid), 'server CLOSED');
    await client.wait(isKind(abi.CONN_EV_ABORT, cid), 'client ABORT');
    await client.wait(isKind(abi.CONN_EV_CLOSED, cid), 'client CLOSED');
  });
});

/* ------------------------------------------------------------------ libcoap */

const coapClient = findBinary('coap-client-openssl');
if (hasNative && coapClient === undefined) {
  if (inCI) throw new Error('CI: coap-client-openssl not found (apt-get install libcoap3-bin)');
  console.log('stream-native libcoap: skipped: coap-client-openssl not found (apt-get install libcoap3-bin)');
}

function runClient(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(coapClient!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += String(d)));
    p.stderr.on('data', (d) => (out += String(d)));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`coap-client timed out: ${out}`));
    }, 10000);
    p.on('close', () => {
      clearTimeout(t);
      res(out);
    });
  });
}

describe.skipIf(!hasNative || coapClient === undefined)('libcoap coap-client-openssl against a native listener', () => {
  const hosts: Host[] = [];
  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.close()));
  });

  it('GET coap+tcp:// and coaps+tcp:// (PSK) answered by RESPOND records', async () => {
    const server = new Host();
    hosts.push(server);
    server.routes.set('hello', 'world over tcp');
    const tcp = await server.core.listen({ host: '127.0.0.1', port: 0 });
    const out = await runClient(['-m', 'get', '-B', '5', `coap+tcp://127.0.0.1:${tcp.address.port}/hello`]);
    expect(out).toContain('world over tcp');
    const tls = await server.core.listen({ host: '127.0.0.1', port: 0, tls: { pskTable: new Map([['libcoap', Buffer.from('sesame')]]) } });
    const out2 = await runClient(['-m', 'get', '-B', '5', '-u', 'libcoap', '-k', 'sesame', `coaps+tcp://127.0.0.1:${tls.address.port}/hello`]);
    expect(out2).toContain('world over tcp');
    const open = server.recs.find((r) => r.kind === abi.CONN_EV_OPEN && r.status === tls.index);
    expect(open?.data.toString()).toBe('libcoap');
  });

  it('GET coaps+tcp:// with certificates made by openssl (-R CA)', async (ctx) => {
    if (pki === undefined) {
      if (inCI) throw new Error('CI: openssl not found');
      ctx.skip();
      return;
    }
    const server = new Host();
    hosts.push(server);
    server.routes.set('hello', 'world over tls');
    const tls = await server.core.listen({ host: '127.0.0.1', port: 0, tls: { certPem: pki.cert, keyPem: pki.key } });
    const out = await runClient(['-m', 'get', '-B', '5', '-R', join(certDir, 'ca.pem'), `coaps+tcp://127.0.0.1:${tls.address.port}/hello`]);
    expect(out).toContain('world over tls');
    expect(server.recs.some((r) => r.kind === abi.CONN_EV_OPEN && (r.flags & abi.CONN_EVF_TLS) !== 0)).toBe(true);
  });
});

/* ------------------------------------------------------------------ feed (JS-owned sockets) */

describe.skipIf(!hasNative)('native stream feed (sockets JavaScript owns)', () => {
  /** Two feeds joined in memory: a's connection 1 is b's connection 101. */
  function link(transport: number) {
    const feedOf = nativeStreamFeed(addon as unknown as StreamFeedAddon);
    const a = feedOf(streamConfig({ transport }), randomBytes(abi.SEED_BYTES));
    const b = feedOf(streamConfig({ transport }), randomBytes(abi.SEED_BYTES));
    const got: { side: string; words: Uint32Array; data: Uint8Array; count: number }[] = [];
    const addr = (port: number) => new Uint32Array([4, port, 0x0100007f, 0, 0, 0, 0]);
    const take = (f: StreamFeed, side: string) => {
      if (f.batchCount() > 0) got.push({ side, ...f.takeBatch() });
    };
    // move every pending message from `from` to `to` (whole messages for ws)
    const pump = () => {
      for (let round = 0; round < 50; round++) {
        let moved = 0;
        for (const [from, to, fromSide, toId, toSide] of [
          [a, b, 'a', 101, 'b'],
          [b, a, 'b', 1, 'a'],
        ] as const) {
          const n = from.collect();
          for (let i = 0; i < n; i++) {
            if (from.outOp(i) !== OUT_WRITE) continue;
            const bytes = from.outBytes(i).slice();
            let at = 0;
            while (at < bytes.length || at === 0) {
              const r = to.recv(Date.now(), toId, bytes, at);
              at += to.used;
              if (r === TCS_DELIVER) take(to, toSide);
              else if (to.used === 0) break;
              if (at >= bytes.length) break;
            }
            from.setDone(i, bytes.length);
            moved++;
          }
          from.wrote(n);
          take(to, toSide);
          void fromSide;
        }
        if (moved === 0) break;
      }
    };
    expect(b.open(Date.now(), 101, addr(40000))).toBe(1);
    expect(a.open(Date.now(), 1, addr(5683))).toBe(1);
    return { a, b, got, pump, take };
  }

  for (const [name, transport] of [
    ['tcp', 1],
    ['ws', 2],
  ] as const) {
    it(`${name} framing: CSM both ways (READY), a request through, the response back, graceful close`, () => {
      const { a, b, got, pump, take } = link(transport);
      pump();
      const kinds = (side: string) => got.filter((g) => g.side === side).flatMap((g) => {
        const out: number[] = [];
        let p = 0;
        for (let n = 0; n < g.count; n++) {
          const k = g.words[p + abi.RX_KIND]!;
          out.push(k);
          p += abi.RX_WORDS + (k === abi.EV_REQUEST || k === abi.EV_RESPONSE ? 3 * g.words[p + abi.RX_OPT_COUNT]! : 0);
        }
        return out;
      });
      expect(kinds('a')).toContain(abi.CONN_EV_READY);
      expect(kinds('b')).toContain(abi.CONN_EV_READY);
      // a GET from a
      const w = a.txWords;
      w.fill(0, 0, abi.TX_REQUEST_WORDS);
      w[abi.TX_REQUEST_KIND] = abi.TX_REQUEST;
      w[abi.TX_REQUEST_CODE] = 1;
      w[abi.TX_REQUEST_FAMILY] = abi.FAMILY_CONN;
      w[abi.TX_REQUEST_PORT] = 1;
      w[abi.TX_REQUEST_TOKEN] = 2;
      a.flushStart(abi.TX_REQUEST_WORDS, 0);
      expect(a.flushRun(Date.now())).toBe(0);
      expect(a.flushEnd(abi.TX_REQUEST_WORDS)).toBe(0);
      pump();
      const req = got.find((g) => g.side === 'b' && g.words[abi.RX_KIND] === abi.EV_REQUEST)!;
      expect(req).toBeDefined();
      const r = b.txWords;
      r.fill(0, 0, abi.TX_RESPOND_WORDS);
      r[abi.TX_RESPOND_KIND] = abi.TX_RESPOND;
      r[abi.TX_RESPOND_ID] = req.words[abi.RX_ID]!;
      r[abi.TX_RESPOND_CODE] = 0x45;
      r[abi.TX_RESPOND_PAYLOAD_LEN] = 2;
      b.txBytes.set([0x6f, 0x6b]);
      b.flushStart(abi.TX_RESPOND_WORDS, 2);
      expect(b.flushRun(Date.now())).toBe(0);
      expect(b.flushEnd(abi.TX_RESPOND_WORDS)).toBe(0);
      pump();
      const resp = got.find((g) => g.side === 'a' && g.words[abi.RX_KIND] === abi.EV_RESPONSE)!;
      expect(resp.words[abi.RX_CODE]).toBe(0x45);
      const po = resp.words[abi.RX_PAYLOAD_OFF]!;
      expect(Buffer.from(resp.data.subarray(po, po + 2)).toString()).toBe('ok');
      // graceful close of a's connection: CLOSED now, then OUT_CLOSE once drained
      expect(a.shutdown(Date.now(), 1)).toBe(1);
      take(a, 'a');
      expect(kinds('a')).toContain(abi.CONN_EV_CLOSED);
      const n = a.collect();
      expect(Array.from({ length: n }, (_, i) => a.outOp(i))).toContain(OUT_CLOSE);
      a.wrote(n);
      expect(a.close(Date.now(), 1, 0, 0)).toBe(0);
      expect(b.close(Date.now(), 101, 0, 0)).toBe(0);
      take(b, 'b');
      expect(kinds('b').filter((k) => k === abi.CONN_EV_CLOSED).length).toBe(1);
      expect(b.stats([3]).getBigUint64(abi.SST_ACCEPTED, true)).toBe(3n);
      a.free();
      b.free();
      expect(a.collect()).toBe(0);
    });
  }
});
