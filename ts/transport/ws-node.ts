/**
 * WebSocket sockets for a JavaScript-hosted StreamCore on Node (RFC 8323 §4: coap+ws and
 * coaps+ws, subprotocol "coap", path /.well-known/coap, one CoAP message per binary
 * message), with the `ws` package: a standalone server (http, or https for coaps+ws), or
 * one attached to an existing node:http(s) server (`httpServer`: its 'upgrade' requests for
 * the path), and clients.
 *
 * @internal
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import type * as tls from 'node:tls';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import type { SocketAddress } from '../driver/driver';
import type { StreamConnectOptions, StreamListenOptions, TlsSettings } from './stream-core';
import type { HostConn, HostLink, HostListener, SocketHost } from './stream-js';
import { STREAM_HWM, ciphers, failStatus, hasPsk, peerCN, pem, serverPsk } from './stream-node';

/** RFC 8323 §4.1. */
export const WS_PATH = '/.well-known/coap';
export const WS_PROTOCOL = 'coap';

interface WsInternals {
  _socket?: (Duplex & { remoteAddress?: string; remotePort?: number; ref?: () => void; unref?: () => void; cork: () => void; uncork: () => void }) | null;
}

/** A ws WebSocket as a HostConn, forwarding its events to link. */
function wireWs(ws: WebSocket, link: HostLink, tlsOpts: TlsSettings | undefined, isOpen: () => boolean): HostConn {
  let status: [number, number] = [0, 0];
  const sock = (): WsInternals['_socket'] => (ws as unknown as WsInternals)._socket;
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(1003, 'CoAP over WebSockets is binary'); // RFC 8323 §4.2
      return;
    }
    link.data(data);
  });
  ws.on('error', (err: Error) => {
    if (status[0] === 0 && status[1] === 0) status = failStatus(err, tlsOpts, isOpen);
  });
  ws.on('close', () => link.closed(status[0], status[1]));
  const drainOn = (): void => {
    sock()?.on('drain', () => link.drained());
  };
  if (ws.readyState === WebSocket.OPEN) drainOn();
  else ws.once('open', drainOn);
  return {
    write: (d) => ws.send(d, { binary: true }),
    congested: () => ws.bufferedAmount > STREAM_HWM,
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    end: () => {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000);
      setTimeout(() => ws.terminate(), 2000).unref();
    },
    destroy: () => ws.terminate(),
    setRef: (on) => {
      const s = sock();
      if (on) s?.ref?.();
      else s?.unref?.();
    },
    cork: () => sock()?.cork(),
    uncork: () => sock()?.uncork(),
  };
}

function addressOf(server: http.Server): SocketAddress {
  const a = server.address();
  if (a === null || typeof a === 'string') return { address: String(a ?? ''), family: 'IPv4', port: 0 };
  return { address: a.address, family: a.family === 'IPv6' || (a.family as unknown) === 6 ? 'IPv6' : 'IPv4', port: a.port };
}

function reject(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** WebSockets on Node (npm `ws`) for the 'ws' framing (wss when the options carry tls). */
export const wsNodeSocketHost: SocketHost = {
  framing: 'ws',

  async listen(o: StreamListenOptions, accept: (address: string) => HostLink | undefined, maxMessage: number): Promise<HostListener> {
    const path = o.path ?? WS_PATH;
    const t = o.tls;
    const ids = new WeakMap<object, string>();
    const own = o.httpServer === undefined;
    let server: http.Server;
    if (!own) server = o.httpServer as http.Server;
    else if (t !== undefined) {
      server = https.createServer({
        cert: pem(t.certPem),
        key: pem(t.keyPem),
        ca: pem(t.caPem),
        requestCert: t.requestCert === true,
        rejectUnauthorized: t.requestCert === true && t.rejectUnauthorized !== false,
        ciphers: ciphers(t),
        maxVersion: t.certPem === undefined && hasPsk(t) ? 'TLSv1.2' : undefined,
        pskCallback: serverPsk(t, ids),
      } as https.ServerOptions);
    } else server = http.createServer();
    if (own) {
      server.on('request', (_req, res) => {
        res.writeHead(426, { Upgrade: 'websocket' });
        res.end();
      });
    }
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxMessage,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false),
    });
    const conns = new Set<WebSocket>();
    let refd = true;
    const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      if ((q >= 0 ? url.slice(0, q) : url) !== path) {
        if (own) reject(socket, '404 Not Found'); // else: another handler's path
        return;
      }
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((s) => s.trim());
      if (!offered.includes(WS_PROTOCOL)) {
        reject(socket, '400 Bad Request');
        return;
      }
      const raw = req.socket as tls.TLSSocket;
      const remote = { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 };
      const link = accept(remote.address);
      if (link === undefined) {
        reject(socket, '503 Service Unavailable');
        return;
      }
      const secured = (raw as { encrypted?: boolean }).encrypted === true;
      // a handshake ws refuses (bad headers) never calls back: the slot ends with the socket
      let upgraded = false;
      socket.once('close', () => {
        if (!upgraded) link.closed(0, 0);
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        conns.add(ws);
        ws.on('close', () => conns.delete(ws));
        link.attach(wireWs(ws, link, t, () => true));
        if (!refd) (ws as unknown as WsInternals)._socket?.unref?.();
        const identity = secured ? (ids.get(raw) ?? (t?.requestCert === true || t === undefined ? peerCN(raw) : '')) : '';
        link.opened({ ...remote, identity, secured });
      });
    };
    server.on('upgrade', onUpgrade);
    if (own) {
      await new Promise<void>((resolve, rej) => {
        server.once('error', rej);
        server.listen({ host: o.host, port: o.port, ipv6Only: o.ipv6Only === true }, () => {
          server.off('error', rej);
          resolve();
        });
      });
    }
    return {
      address: addressOf(server),
      close: async () => {
        server.off('upgrade', onUpgrade);
        for (const ws of conns) ws.terminate();
        wss.close();
        if (own) await new Promise<void>((res) => server.close(() => res()));
      },
      setRef(on: boolean) {
        refd = on;
        if (own) {
          if (on) server.ref();
          else server.unref();
        }
        for (const ws of conns) {
          const s = (ws as unknown as WsInternals)._socket;
          if (on) s?.ref?.();
          else s?.unref?.();
        }
      },
    };
  },

  connect(o: StreamConnectOptions, link: HostLink, maxMessage: number): void {
    const t = o.tls;
    const host = o.host.includes(':') ? `[${o.host}]` : o.host;
    const url = o.url ?? `${t !== undefined ? 'wss' : 'ws'}://${host}:${o.port}${WS_PATH}`;
    let open = false;
    const opts: ClientOptions & tls.ConnectionOptions = { perMessageDeflate: false, maxPayload: maxMessage };
    if (t !== undefined) {
      const psk = t.pskKey !== undefined;
      opts.ca = pem(t.caPem);
      opts.cert = pem(t.certPem);
      opts.key = pem(t.keyPem);
      opts.rejectUnauthorized = psk && t.caPem === undefined ? false : t.rejectUnauthorized !== false;
      if (t.servername !== undefined) opts.servername = t.servername;
      opts.ciphers = ciphers(t);
      if (psk) {
        opts.maxVersion = 'TLSv1.2';
        const key = Buffer.from(t.pskKey!.buffer, t.pskKey!.byteOffset, t.pskKey!.byteLength);
        opts.pskCallback = () => ({ identity: t.pskIdentity ?? '', psk: key });
      }
    }
    const ws = new WebSocket(url, WS_PROTOCOL, opts);
    link.attach(wireWs(ws, link, t, () => open));
    ws.on('unexpected-response', (_req, res) => {
      // the server answered HTTP, not a WebSocket: refused
      ws.emit('error', Object.assign(new Error(`HTTP ${res.statusCode}`), { code: 'ECONNREFUSED' }));
      ws.terminate();
    });
    ws.once('open', () => {
      if (ws.protocol !== WS_PROTOCOL) {
        ws.emit('error', Object.assign(new Error('the server did not select the coap subprotocol'), { code: 'EPROTO' }));
        ws.terminate();
        return;
      }
      open = true;
      const s = (ws as unknown as WsInternals)._socket as unknown as tls.TLSSocket | undefined;
      const identity = t === undefined ? '' : t.pskKey !== undefined ? (t.pskIdentity ?? '') : s !== undefined && typeof s.getPeerCertificate === 'function' ? peerCN(s) : '';
      link.opened({ address: s?.remoteAddress ?? o.host, port: s?.remotePort ?? o.port, identity, secured: t !== undefined });
    });
  },
};
