/**
 * WebSocket sockets for a JavaScript-hosted StreamCore in browsers (and any runtime with a
 * WHATWG WebSocket): the client role of RFC 8323 §4 (coap+ws, coaps+ws: subprotocol "coap",
 * path /.well-known/coap, one CoAP message per binary message). Uses the global WebSocket
 * only: no Node built-ins, no npm packages.
 *
 * A browser WebSocket cannot stop reading (the core queues what arrives while a connection
 * is paused) and reports neither errors nor 'drain': congestion is bufferedAmount over the
 * high-water mark, polled until it falls; a connection that never opened is CLOSED with
 * CONN_EVF_SYSERR and -ECONNREFUSED, one that ended abnormally (not code 1000 / 1005) with
 * -ECONNRESET. TLS (wss:) is the browser's; its failures look like a refused connection.
 *
 * @internal
 */
import { CONN_EVF_SYSERR } from '../driver/abi';
import type { StreamConnectOptions } from './stream-core';
import type { HostConn, HostLink, HostListener, SocketHost } from './stream-js';

const PATH = '/.well-known/coap';
const PROTOCOL = 'coap';
const HWM = 64 * 1024;
const ECONNREFUSED = 111;
const ECONNRESET = 104;

interface BrowserWebSocket {
  binaryType: string;
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
type WebSocketCtor = new (url: string, protocols?: string | string[]) => BrowserWebSocket;

/** The URL of a connect: o.url, else ws(s)://host:port/.well-known/coap. */
export function wsUrl(o: StreamConnectOptions): string {
  if (o.url !== undefined) return o.url;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return `${o.tls !== undefined ? 'wss' : 'ws'}://${host}:${o.port}${PATH}`;
}

/** The browser's WebSocket for the 'ws' framing (client role only). */
export const wsBrowserSocketHost: SocketHost = {
  framing: 'ws',

  listen(): Promise<HostListener> {
    return Promise.reject(new Error('turbocoap: a browser cannot listen for WebSocket connections'));
  },

  connect(o: StreamConnectOptions, link: HostLink, maxMessage: number): void {
    const Ctor = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (Ctor === undefined) throw new Error('turbocoap: no global WebSocket in this runtime');
    const url = wsUrl(o);
    const ws = new Ctor(url, PROTOCOL);
    ws.binaryType = 'arraybuffer';
    let open = false;
    let poll: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const finish = (status: number, flags: number): void => {
      if (done) return;
      done = true;
      if (poll !== undefined) clearTimeout(poll);
      link.closed(status, flags);
    };
    const conn: HostConn = {
      write: (d) => ws.send(d),
      congested: () => {
        if (ws.bufferedAmount <= HWM) return false;
        if (poll === undefined) {
          const check = (): void => {
            poll = undefined;
            if (done) return;
            if (ws.bufferedAmount <= HWM) link.drained();
            else poll = setTimeout(check, 10);
          };
          poll = setTimeout(check, 10);
        }
        return true;
      },
      pause: () => undefined,
      resume: () => undefined,
      end: () => ws.close(1000),
      destroy: () => {
        ws.close(1000);
        finish(0, 0);
      },
    };
    link.attach(conn);
    ws.onopen = () => {
      if (ws.protocol !== PROTOCOL) {
        ws.close(1002, 'the coap subprotocol is required');
        return;
      }
      open = true;
      const u = new URL(url);
      const port = u.port !== '' ? Number(u.port) : u.protocol === 'wss:' ? 443 : 80;
      link.opened({ address: u.hostname.replace(/^\[|\]$/g, ''), port, identity: '', secured: u.protocol === 'wss:' });
    };
    ws.onmessage = (ev) => {
      const d = ev.data;
      if (!(d instanceof ArrayBuffer)) {
        ws.close(1003, 'CoAP over WebSockets is binary');
        return;
      }
      if (d.byteLength > maxMessage) {
        ws.close(1009, 'message too large');
        return;
      }
      link.data(new Uint8Array(d));
    };
    ws.onerror = () => undefined; // details never reach scripts; onclose follows
    ws.onclose = (ev) => {
      if (!open) finish(-ECONNREFUSED, CONN_EVF_SYSERR);
      else if (ev.code === 1000 || ev.code === 1005) finish(0, 0);
      else finish(-ECONNRESET, CONN_EVF_SYSERR);
    };
  },
};
