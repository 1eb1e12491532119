// What the example page does, as functions that run on the page's main thread and in a
// Worker alike (index.html calls them from buttons; worker.mjs on request). `base` is the
// CoAP origin: coap+ws://host:port (or coaps+ws://...), RFC 8323 §4.
import { connect, observe, request, Router } from './turbocoap.browser.mjs';

/** The example server's checksum (server.mjs). */
function checksum(b) {
  let s = 0;
  for (let i = 0; i < b.length; i++) s = (s + b[i] * ((i % 251) + 1)) >>> 0;
  return s;
}

/** GET /hello. */
export async function hello(base) {
  const res = await request(`${base}/hello`);
  return { code: res.code, text: res.text() };
}

/** GET /large: 1 MiB block-wise (Block2). */
export async function download(base) {
  let blocks = 0;
  const t0 = performance.now();
  const res = await request(`${base}/large`, { maxBodySize: 2 << 20, onProgress: () => blocks++ });
  const p = res.payload;
  let intact = p.length === 1 << 20;
  for (let i = 0; intact && i < p.length; i++) intact = p[i] === (i & 0xff);
  return { code: res.code, bytes: p.length, intact, blocks, ms: Math.round(performance.now() - t0) };
}

/** POST /upload of `size` bytes: block-wise (Block1). */
export async function upload(base, size = 300_000) {
  const body = Uint8Array.from({ length: size }, (_, i) => (i * 7) & 0xff);
  let blocks = 0;
  const res = await request(`${base}/upload`, { method: 'POST', payload: body, onProgress: () => blocks++ });
  const got = res.json();
  return { code: res.code, bytes: got.bytes, checksumOk: got.checksum === checksum(body), blocks };
}

/** Observes /clock for `count` notifications, then cancels. */
export async function watch(base, count = 3, onNotification) {
  const obs = observe(`${base}/clock`);
  const seen = [];
  for await (const n of obs) {
    const v = { observe: n.observe, ...n.json() };
    seen.push(v);
    onNotification?.(v);
    if (seen.length >= count) break; // deregisters (as obs.cancel() does)
  }
  return seen;
}

/**
 * Opens a connection that serves requests from the other end (RFC 8323: both ends may send
 * requests): answers GET /whoami until the server asked once, then closes.
 */
export async function serve(base) {
  let asked;
  const answered = new Promise((resolve) => (asked = resolve));
  const who = `a page (${typeof window === 'undefined' ? 'worker' : 'main thread'})`;
  const conn = await connect(base, {
    handler: new Router().get('/whoami', (req) => {
      asked(req.path);
      return { code: '2.05', payload: who };
    }),
  });
  const path = await answered;
  await conn.close();
  return { path, answered: who, transport: conn.transport };
}
