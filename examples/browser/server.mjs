#!/usr/bin/env node
// The browser example's server: serves index.html, demo.mjs, worker.mjs and the bundle
// (dist/turbocoap.browser.mjs) over HTTP, and CoAP over WebSockets on the same port
// (RFC 8323 §4: ws://HOST:PORT/.well-known/coap, so the page's URIs are coap+ws://HOST:PORT/…),
// plus coaps+ws on its own port when given a certificate.
//
//   npm run build && node examples/browser/server.mjs [--port 8080] [--host 127.0.0.1]
//                                                     [--cert cert.pem --key key.pem --wss-port 8443]
//   then open http://127.0.0.1:8080/
//
// Resources: GET /hello, GET /large (1 MiB, byte i = i & 0xff), POST /upload (answers the
// size and a checksum of the body), GET /clock (observable: a notification every --tick ms).
// Every connection the page opens is asked GET /whoami down that connection (RFC 8323 lets
// both ends send requests): a page that connect()ed with a handler answers it.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createServer, Router } from 'turbocoap';

const here = dirname(fileURLToPath(import.meta.url));
const bundle = join(here, '..', '..', 'dist', 'turbocoap.browser.mjs');

/** Sum of the bytes mod 2^32 (what /upload answers, what the page checks). */
export function checksum(b) {
  let s = 0;
  for (let i = 0; i < b.length; i++) s = (s + b[i] * ((i % 251) + 1)) >>> 0;
  return s;
}

/**
 * Starts the example. Options: port (0: any), host, tick (ms between /clock notifications),
 * cert/key (PEM: also listen on coaps+ws at wssPort), onWhoami(answer, conn) (each answer of
 * a page to GET /whoami). Resolves with { http, ws, wss, server, close() }.
 */
export async function startExample({ port = 8080, host = '127.0.0.1', tick = 1000, cert, key, wssPort = 8443, onWhoami } = {}) {
  const files = {
    '/': ['text/html', join(here, 'index.html')],
    '/index.html': ['text/html', join(here, 'index.html')],
    '/demo.mjs': ['text/javascript', join(here, 'demo.mjs')],
    '/worker.mjs': ['text/javascript', join(here, 'worker.mjs')],
    '/turbocoap.browser.mjs': ['text/javascript', bundle],
  };
  const http = createHttpServer((req, res) => {
    const f = files[(req.url ?? '/').split('?')[0]];
    if (f === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f[0], 'cache-control': 'no-store' }).end(readFileSync(f[1]));
  });
  await new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, resolve);
  });

  let ticks = 0;
  const router = new Router()
    .get('/hello', () => ({ code: '2.05', payload: 'Hello from turbocoap over a WebSocket' }))
    .get('/large', () => ({ code: '2.05', payload: Uint8Array.from({ length: 1 << 20 }, (_, i) => i & 0xff) }))
    .post('/upload', (req) => ({ code: '2.04', payload: JSON.stringify({ bytes: req.payload.length, checksum: checksum(req.payload) }) }))
    .get('/clock', () => ({ code: '2.05', payload: JSON.stringify({ tick: ticks, at: new Date().toISOString() }) }), { obs: true });
  const server = createServer(router);
  // CoAP over WebSockets on the page's own HTTP server: upgrades of /.well-known/coap
  await server.listen({ transport: 'ws', httpServer: http });
  if (cert !== undefined) await server.listen({ transport: 'wss', host, port: wssPort, cert, key });
  server.on('connection', (conn) => {
    conn.request('/whoami').then(
      (res) => {
        if (res.code === '2.05') onWhoami?.(res.text(), conn);
      },
      () => undefined, // the connection went away first
    );
  });
  const timer = setInterval(() => {
    ticks++;
    server.resource('/clock').notify();
  }, tick);

  const a = http.address();
  const authority = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    http: `http://${authority}/`,
    ws: `coap+ws://${authority}`,
    wss: cert !== undefined ? `coaps+ws://${host}:${server.address('wss').port}` : undefined,
    server,
    async close() {
      clearInterval(timer);
      await server.close();
      http.closeAllConnections?.();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'wss-port': { type: 'string', default: '8443' },
    },
  });
  const ex = await startExample({
    port: Number(values.port),
    host: values.host,
    cert: values.cert && readFileSync(values.cert, 'utf8'),
    key: values.key && readFileSync(values.key, 'utf8'),
    wssPort: Number(values['wss-port']),
    onWhoami: (answer, conn) => console.log(`GET /whoami down ${conn.transport} from ${conn.remote.address}:${conn.remote.port}: ${answer}`),
  });
  console.log(`open ${ex.http}  (CoAP: ${ex.ws}${ex.wss ? `, ${ex.wss}` : ''})`);
}
