/**
 * Sockets for a JavaScript-hosted StreamCore on Node: CoAP over TCP (node:net) and over TLS
 * (node:tls: certificates, mutual authentication, TLS 1.2 PSK, ALPN "coap"), RFC 8323. The
 * connection driver runs in a feed (stream-feed.ts); this file only moves bytes and maps
 * Node's errors to the CLOSED record's STATUS (a negative errno with CONN_EVF_SYSERR, a
 * TC_TLS_E_* code with CONN_EVF_TLSERR).
 *
 * @internal
 */
import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import * as tls from 'node:tls';
import {
  CONN_EVF_SYSERR,
  CONN_EVF_TLSERR,
  TLS_E_ALPN,
  TLS_E_HANDSHAKE,
  TLS_E_PEER_CERT_REQUIRED,
  TLS_E_PROTOCOL,
  TLS_E_PSK,
  TLS_E_VERIFY,
} from '../driver/abi';
import type { SocketAddress } from '../driver/driver';
import { ipFamily } from '../net/ip';
import type { StreamConnectOptions, StreamListenOptions, TlsSettings } from './stream-core';
import type { HostConn, HostLink, HostListener, SocketHost } from './stream-js';

/** A socket's own buffer beyond which the driver keeps its output (and 'drain' resumes). */
export const STREAM_HWM = 64 * 1024;

/** TLS 1.2 PSK cipher suites (RFC 7925's CCM_8 first) offered when PSK is configured. */
const PSK_CIPHERS = 'PSK-AES128-CCM8:PSK-AES128-CCM:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305:PSK-AES128-CBC-SHA256';
const EIO = 5;

/** A Node error as CLOSED STATUS / FLAGS: an errno code -> [-errno, SYSERR]. */
export function sysError(err: unknown): [number, number] | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  const n = (osConstants.errno as Record<string, number>)[code];
  return typeof n === 'number' ? [-n, CONN_EVF_SYSERR] : undefined;
}

/**
 * A TLS failure as a TC_TLS_E_* code: certificate verification (ours of the peer's, or the
 * peer's alert about ours) VERIFY, a missing client certificate PEER_CERT_REQUIRED, PSK
 * (unknown identity; a wrong key shows as a failed Finished: decrypt error / bad record MAC
 * in a PSK handshake) PSK, no common ALPN protocol ALPN, anything else during the handshake
 * HANDSHAKE, after it PROTOCOL.
 */
export function tlsError(err: unknown, psk: boolean, open: boolean): number {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = String(e?.code ?? '');
  const text = code + ' ' + String(e?.message ?? '');
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(text)) return TLS_E_PEER_CERT_REQUIRED;
  if (/PSK/i.test(text)) return TLS_E_PSK;
  if (psk && /DECRYPT|BAD_RECORD_MAC|bad record mac|decrypt/i.test(text)) return TLS_E_PSK;
  if (/NO_APPLICATION_PROTOCOL|ALPN/i.test(text)) return TLS_E_ALPN;
  if (
    /^(UNABLE_TO_|CERT_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_CERT_ALTNAME|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE|CERT_UNTRUSTED|CERT_REJECTED)/.test(code) ||
    /ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_|UNSUPPORTED_CERTIFICATE)|certificate verify failed/i.test(text)
  )
    return TLS_E_VERIFY;
  return open ? TLS_E_PROTOCOL : TLS_E_HANDSHAKE;
}

export function pem(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** The subject CN of the peer's certificate, or ''. */
export function peerCN(s: tls.TLSSocket): string {
  try {
    const c = s.getPeerCertificate();
    const cn = c?.subject?.CN;
    return typeof cn === 'string' ? cn : Array.isArray(cn) ? String(cn[0] ?? '') : '';
  } catch {
    return '';
  }
}

export function hasPsk(t: TlsSettings): boolean {
  return t.pskTable !== undefined || t.pskCallback !== undefined || t.pskKey !== undefined;
}

export function ciphers(t: TlsSettings): string | undefined {
  if (!hasPsk(t)) return undefined;
  return t.certPem !== undefined ? `${tls.DEFAULT_CIPHERS}:${PSK_CIPHERS}` : PSK_CIPHERS;
}

/** A net/tls socket as a HostConn, forwarding its events to link. */
export function wire(sock: net.Socket, link: HostLink, onFail: (err: Error) => [number, number]): HostConn {
  let status: [number, number] = [0, 0];
  sock.setNoDelay(true);
  sock.on('data', (b: Buffer) => link.data(b));
  sock.on('drain', () => link.drained());
  sock.on('error', (err: Error) => {
    if (status[0] === 0 && status[1] === 0) status = onFail(err);
  });
  sock.on('close', () => link.closed(status[0], status[1]));
  return {
    write: (d) => void sock.write(d),
    congested: () => sock.writableLength > STREAM_HWM,
    pause: () => void sock.pause(),
    resume: () => void sock.resume(),
    end: () => {
      if (!sock.destroyed) sock.end();
      // a peer that never reads must not keep the socket: bounded wait for the FIN
      setTimeout(() => sock.destroy(), 2000).unref();
    },
    destroy: () => void sock.destroy(),
    setRef: (on) => void (on ? sock.ref() : sock.unref()),
    cork: () => sock.cork(),
    uncork: () => sock.uncork(),
  };
}

export function failStatus(err: unknown, t: TlsSettings | undefined, open: () => boolean): [number, number] {
  const sys = sysError(err);
  if (sys !== undefined) return sys;
  if (t !== undefined) return [tlsError(err, hasPsk(t), open()), CONN_EVF_TLSERR];
  return [-EIO, CONN_EVF_SYSERR];
}

function serverContext(t: TlsSettings): tls.SecureContext {
  return tls.createSecureContext({
    cert: pem(t.certPem),
    key: pem(t.keyPem),
    ca: pem(t.caPem),
    ciphers: ciphers(t),
    maxVersion: t.certPem === undefined && hasPsk(t) ? 'TLSv1.2' : undefined,
  });
}

export function serverPsk(t: TlsSettings, ids: WeakMap<object, string>) {
  if (t.pskTable === undefined && t.pskCallback === undefined) return undefined;
  return (socket: tls.TLSSocket, identity: string): Buffer | null => {
    const key = t.pskTable?.get(identity) ?? t.pskCallback?.(identity);
    if (key === undefined) return null;
    ids.set(socket, identity);
    return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  };
}

function listenAddress(server: net.Server): SocketAddress {
  const a = server.address() as net.AddressInfo;
  return { address: a.address, family: a.family === 'IPv6' || (a.family as unknown) === 6 ? 'IPv6' : 'IPv4', port: a.port };
}

/** node:net / node:tls sockets for the 'tcp' framing (TLS when the options carry tls). */
export const tcpSocketHost: SocketHost = {
  framing: 'tcp',

  listen(o: StreamListenOptions, accept: (address: string) => HostLink | undefined): Promise<HostListener> {
    const t = o.tls;
    const ctx = t !== undefined ? serverContext(t) : undefined;
    const ids = new WeakMap<object, string>();
    const psk = t !== undefined ? serverPsk(t, ids) : undefined;
    const sockets = new Set<net.Socket>();
    let refd = true;
    const server = net.createServer({ noDelay: true }, (raw) => {
      const link = accept(raw.remoteAddress ?? '');
      if (link === undefined) {
        raw.destroy();
        return;
      }
      sockets.add(raw);
      raw.on('close', () => sockets.delete(raw));
      if (!refd) raw.unref();
      const remote = { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 };
      if (t === undefined || ctx === undefined) {
        link.attach(wire(raw, link, (e) => failStatus(e, undefined, () => true)));
        link.opened({ ...remote, identity: '', secured: false });
        return;
      }
      let open = false;
      const s = new tls.TLSSocket(raw, {
        isServer: true,
        secureContext: ctx,
        requestCert: t.requestCert === true,
        rejectUnauthorized: t.requestCert === true && t.rejectUnauthorized !== false,
        ALPNProtocols: ['coap'],
        pskCallback: psk,
      } as tls.TLSSocketOptions);
      link.attach(wire(s, link, (e) => failStatus(e, t, () => open)));
      // a handshake that never ends holds a slot: bounded
      const hs = setTimeout(() => s.destroy(), 10000);
      hs.unref();
      s.once('secure', () => {
        clearTimeout(hs);
        if (t.requestCert === true) {
          // what tls.Server does for its sockets (onServerSocketSecure): the handshake
          // accepted any certificate; the verification result decides here
          const ve = (s as unknown as { _handle?: { verifyError?: () => Error | null } })._handle?.verifyError?.() ?? null;
          if (ve !== null && t.rejectUnauthorized !== false) {
            s.destroy(ve);
            return;
          }
        }
        open = true;
        const identity = ids.get(s) ?? (t.requestCert === true ? peerCN(s) : '');
        link.opened({ ...remote, identity, secured: true });
      });
    });
    return new Promise<HostListener>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: o.host, port: o.port, ipv6Only: o.ipv6Only === true }, () => {
        server.off('error', reject);
        resolve({
          address: listenAddress(server),
          close: () =>
            new Promise<void>((res) => {
              server.close(() => res());
            }),
          setRef(on: boolean) {
            refd = on;
            if (on) server.ref();
            else server.unref();
            for (const s of sockets) if (on) s.ref();
            else s.unref();
          },
        });
      });
    });
  },

  connect(o: StreamConnectOptions, link: HostLink): void {
    const t = o.tls;
    if (t === undefined) {
      const s = net.connect({ host: o.host, port: o.port, noDelay: true });
      link.attach(wire(s, link, (e) => failStatus(e, undefined, () => open)));
      let open = false;
      s.once('connect', () => {
        open = true;
        link.opened({ address: s.remoteAddress ?? o.host, port: s.remotePort ?? o.port, identity: '', secured: false });
      });
      return;
    }
    const psk = t.pskKey !== undefined;
    const ip = ipFamily(o.host) !== 0;
    const name = t.servername ?? (ip ? undefined : o.host);
    let open = false;
    const opts: tls.ConnectionOptions = {
      host: o.host,
      port: o.port,
      servername: name !== undefined && ipFamily(name) === 0 ? name : undefined,
      ca: pem(t.caPem),
      cert: pem(t.certPem),
      key: pem(t.keyPem),
      rejectUnauthorized: psk && t.caPem === undefined ? false : t.rejectUnauthorized !== false,
      ALPNProtocols: ['coap'],
      ciphers: ciphers(t),
      maxVersion: psk ? 'TLSv1.2' : undefined,
      // an IP literal is checked against the certificate's IP SANs (Node's default checks
      // the servername, which is empty for IP literals)
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name ?? o.host, cert),
    };
    if (psk) {
      const key = Buffer.from(t.pskKey!.buffer, t.pskKey!.byteOffset, t.pskKey!.byteLength);
      opts.pskCallback = () => ({ identity: t.pskIdentity ?? '', psk: key });
    }
    const s = tls.connect(opts);
    s.setNoDelay(true);
    link.attach(wire(s, link, (e) => failStatus(e, t, () => open)));
    s.once('secureConnect', () => {
      open = true;
      const identity = psk ? (t.pskIdentity ?? '') : peerCN(s);
      link.opened({ address: s.remoteAddress ?? o.host, port: s.remotePort ?? o.port, identity, secured: true });
    });
  },
};
