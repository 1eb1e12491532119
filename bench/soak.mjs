#!/usr/bin/env node
// Soak under abuse (issue 10): one turbocoap server on loopback, legitimate traffic from our
// client, and at the same time the attacks of the issue from raw UDP sockets:
//   slow  CON requests to a 2-second handler from peers that never ACK the separate response
//   obs   Observe registrations from many ports of one host that never ACK a notification
//   amp   small GETs of /large from sources that never answer the Echo challenge
//   up    first blocks of uploads that never continue
//   big   block-0 GETs of /large (1 MiB) from a verified source
//   dup   duplicate NON POSTs
// Every second it prints the server's RSS, legitimate answers/s, legitimate requests lost
// (no answer within 5 s), the worst amplification seen toward an unverified source, and the
// server's counters. Lost must stay 0, dropped must stay 0, amplification <= 3.
//
//   npm run soak                      60 s on the native backend
//   SOAK_SECONDS=20 SOAK_BACKEND=wasm npm run soak
import { createSocket } from 'node:dgram';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(import.meta.url), '..', '..');
const tc = await import(resolve(root, 'dist', 'index.js'));
const { createServer, Router, Agent } = tc.default ?? tc;

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const BACKEND = process.env.SOAK_BACKEND ?? 'native';
const HOST = '127.0.0.1';
const large = new Uint8Array(1 << 20).map((_, i) => i % 251);

const router = new Router();
router.get('/ok', () => ({ code: '2.05', payload: 'ok' }));
router.get('/slow', () => new Promise((r) => setTimeout(() => r({ code: '2.05', payload: 'late' }), 2000)));
router.get('/large', () => ({ code: '2.05', payload: large, maxAge: 30 }));
router.get('/obs', () => ({ code: '2.05', payload: String(Date.now()) }), { obs: true });
router.put('/up', (req) => ({ code: '2.04', payload: String(req.payload.length) }));
router.post('/p', () => ({ code: '2.04' }));
const server = createServer(router, { backend: BACKEND });
await server.listen({ port: 0, host: HOST });
const port = server.address().port;

// ------------------------------------------------------------------ raw CoAP
function enc(type, code, mid, token, opts, payload = Buffer.alloc(0)) {
  const parts = [Buffer.from([0x40 | (type << 4) | token.length, code, mid >> 8, mid & 255]), Buffer.from(token)];
  let prev = 0;
  for (const [num, val] of [...opts].sort((a, b) => a[0] - b[0])) {
    const v = Buffer.from(val);
    const d = num - prev;
    prev = num;
    const nib = (x) => (x < 13 ? [x, []] : x < 269 ? [13, [x - 13]] : [14, [(x - 269) >> 8, (x - 269) & 255]]);
    const [dn, de] = nib(d);
    const [ln, le] = nib(v.length);
    parts.push(Buffer.from([(dn << 4) | ln, ...de, ...le]), v);
  }
  if (payload.length) parts.push(Buffer.from([0xff]), payload);
  return Buffer.concat(parts);
}
const path = (p) => p.split('/').filter(Boolean).map((s) => [11, Buffer.from(s)]);
/** Echo option value of a 4.01, or undefined (options walked just enough). */
function echoOf(b) {
  if (b.length < 4 || b[1] !== 0x81) return undefined;
  let i = 4 + (b[0] & 15);
  let num = 0;
  while (i < b.length && b[i] !== 0xff) {
    let d = b[i] >> 4;
    let l = b[i] & 15;
    i++;
    if (d === 13) d = 13 + b[i++];
    else if (d === 14) (d = 269 + (b[i] << 8) + b[i + 1]), (i += 2);
    if (l === 13) l = 13 + b[i++];
    else if (l === 14) (l = 269 + (b[i] << 8) + b[i + 1]), (i += 2);
    num += d;
    if (num === 252) return b.subarray(i, i + l);
    i += l;
  }
  return undefined;
}
function sock(onMsg) {
  const s = createSocket('udp4');
  s.on('message', (m) => onMsg?.(m, s));
  s.on('error', () => {});
  s.bind(0, HOST);
  return s;
}
const send = (s, b) => s.send(b, port, HOST, () => {});

let mid = 1;
const M = () => (mid = (mid + 1) & 0xffff);
let ampSent = 0;
let ampRecv = 0;
let worstAmp = 0;

const slow = Array.from({ length: 64 }, () => sock()); // never ACK anything
const amp = Array.from({ length: 16 }, () =>
  sock((m) => {
    ampRecv += m.length;
  }),
);
const obsSocks = [];
const upSocks = [];
const big = sock((m, s) => {
  const e = echoOf(m);
  if (e) send(s, enc(0, 1, M(), [9], [...path('/large'), [252, e]]));
});
const dup = sock();
const dupMsg = enc(1, 2, 777, [7], path('/p'));

function attack() {
  for (const s of slow) send(s, enc(0, 1, M(), [1], path('/slow')));
  for (const s of amp) {
    const b = enc(1, 1, M(), [2], path('/large'));
    ampSent += b.length;
    send(s, b);
  }
  if (obsSocks.length < 200) {
    // a new observer port: answers the Echo challenge once, then never acknowledges anything
    const s = sock((m, me) => {
      const e = echoOf(m);
      if (e) send(me, enc(0, 1, M(), [3], [[6, Buffer.alloc(0)], ...path('/obs'), [252, e]]));
    });
    obsSocks.push(s);
    send(s, enc(0, 1, M(), [3], [[6, Buffer.alloc(0)], ...path('/obs')]));
  }
  if (upSocks.length < 200) {
    const s = sock();
    upSocks.push(s);
    send(s, enc(0, 3, M(), [4], [...path('/up'), [27, Buffer.from([0x08 | 2])]], Buffer.alloc(64)));
  }
  for (let i = 0; i < 20; i++) send(big, enc(0, 1, M(), [5], [...path('/large'), [23, Buffer.from([6])]]));
  for (let i = 0; i < 5; i++) send(dup, dupMsg);
  server.resource('/obs').notify();
}

// ------------------------------------------------------------------ legitimate traffic
const agent = new Agent({ backend: BACKEND, nstart: 16 });
let answered = 0;
let lost = 0;
let stop = false;
async function legit() {
  while (!stop) {
    try {
      const r = await Promise.race([
        agent.request(`coap://${HOST}:${port}/ok`),
        new Promise((_, rej) => setTimeout(() => rej(new Error('lost')), 5000)),
      ]);
      if (r.code === '2.05') answered++;
      else lost++;
    } catch {
      lost++;
    }
  }
}

const t0 = Date.now();
const timer = setInterval(attack, 100);
const workers = Array.from({ length: 16 }, legit);
console.log(`soak: ${BACKEND} backend, ${SECONDS} s, server on ${HOST}:${port}`);
console.log('   t  rss MB  answers/s  lost  dropped  non  echo  observers refused  uploads refused reclaimed  reused  worst amp');
let last = 0;
for (let t = 1; t <= SECONDS; t++) {
  await new Promise((r) => setTimeout(r, 1000 - ((Date.now() - t0) % 1000)));
  if (ampSent > 0) worstAmp = Math.max(worstAmp, ampRecv / ampSent);
  const st = server.stats() ?? {};
  const rss = process.memoryUsage().rss / 1048576;
  console.log(
    `${String(t).padStart(4)}  ${rss.toFixed(0).padStart(6)}  ${String(answered - last).padStart(9)}  ${String(lost).padStart(4)}  ${String(st.responsesDropped).padStart(7)}  ${String(st.responsesNon).padStart(4)}  ${String(st.echoChallenges).padStart(4)}  ${String(st.observers).padStart(9)} ${String(st.observersRefused).padStart(7)}  ${String(st.uploads).padStart(7)} ${String(st.uploadsRefused).padStart(7)} ${String(st.uploadsReclaimed).padStart(9)}  ${String(st.blocksReused).padStart(6)}  ${worstAmp.toFixed(2).padStart(9)}`,
  );
  last = answered;
}
stop = true;
clearInterval(timer);
await Promise.allSettled(workers);
const st = server.stats() ?? {};
const ok = lost === 0 && st.responsesDropped === 0 && worstAmp <= 3;
console.log(`soak: ${answered} legitimate answers, ${lost} lost, ${st.responsesDropped} dropped, worst amplification ${worstAmp.toFixed(2)}x: ${ok ? 'OK' : 'NOT OK'}`);
for (const s of [...slow, ...amp, ...obsSocks, ...upSocks, big, dup]) s.close();
await agent.close();
await server.close();
process.exit(ok ? 0 : 1);
