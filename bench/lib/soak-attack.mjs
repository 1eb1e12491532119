// The attackers of bench/soak.mjs, in their own process: the abuse of issue 10 from raw UDP
// sockets on loopback, every 100 ms until told to stop.
//   node bench/lib/soak-attack.mjs PORT
//   slow  CON requests to a 2-second handler from 64 ports that never ACK the separate response
//   obs   Observe registrations from a new port of one host every tick, each answering the Echo
//         challenge once and never acknowledging a notification; the oldest port is closed once
//         200 are open, so the distinct peers seen by the server keep growing (vanished observers)
//   amp   small GETs of /large from 16 ports that never answer the Echo challenge
//   up    a first block of an upload from a new port every tick, never continued (ports rotate
//         like obs)
//   big   block-0 GETs of /large (1 MiB) from a source that answers the Echo challenge
//   dup   duplicate NON POSTs
//   paths GETs with Observe 0 of 100 new paths /s/N per tick from the verified source
// Over IPC, { stats: id } is answered with { id, ampSent, ampRecv, worstAmp, sent, peers, rss }:
// bytes sent to and received from the server by the amp sockets, the worst ratio of one amp
// socket, datagrams sent in all, distinct source ports used, and this process's RSS.
import { createSocket } from 'node:dgram';

const HOST = '127.0.0.1';
const port = Number(process.argv[2]);

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
let sent = 0;
let peers = 64 + 16 + 2; // slow, amp, big, dup
const send = (s, b) => {
  sent++;
  s.send(b, port, HOST, () => {});
};

let mid = 1;
let pathN = 0;
const M = () => (mid = (mid + 1) & 0xffff);

const slow = Array.from({ length: 64 }, () => sock()); // never ACK anything
const amp = Array.from({ length: 16 }, () => {
  const a = { sent: 0, recv: 0 };
  a.s = sock((m) => {
    a.recv += m.length;
  });
  return a;
});
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
  for (const a of amp) {
    const b = enc(1, 1, M(), [2], path('/large'));
    a.sent += b.length;
    send(a.s, b);
  }
  if (obsSocks.length >= 200) obsSocks.shift().close();
  {
    peers++;
    const s = sock((m, me) => {
      const e = echoOf(m);
      if (e) send(me, enc(0, 1, M(), [3], [[6, Buffer.alloc(0)], ...path('/obs'), [252, e]]));
    });
    obsSocks.push(s);
    send(s, enc(0, 1, M(), [3], [[6, Buffer.alloc(0)], ...path('/obs')]));
  }
  if (upSocks.length >= 200) upSocks.shift().close();
  {
    peers++;
    const s = sock();
    upSocks.push(s);
    send(s, enc(0, 3, M(), [4], [...path('/up'), [27, Buffer.from([0x08 | 2])]], Buffer.alloc(64)));
  }
  for (let i = 0; i < 20; i++) send(big, enc(0, 1, M(), [5], [...path('/large'), [23, Buffer.from([6])]]));
  for (let i = 0; i < 5; i++) send(dup, dupMsg);
  for (let i = 0; i < 100; i++) send(big, enc(1, 1, M(), [6], [[6, Buffer.alloc(0)], ...path(`/s/${++pathN}`)]));
}

const timer = setInterval(attack, 100);
function stop() {
  clearInterval(timer);
  for (const s of [...slow, ...amp.map((a) => a.s), ...obsSocks, ...upSocks, big, dup]) s.close();
  process.exit(0);
}
process.on('message', (m) => {
  if (m?.stop) return stop();
  if (m?.stats === undefined) return;
  let ampSent = 0;
  let ampRecv = 0;
  let worstAmp = 0;
  for (const a of amp) {
    ampSent += a.sent;
    ampRecv += a.recv;
    if (a.sent > 0) worstAmp = Math.max(worstAmp, a.recv / a.sent);
  }
  process.send?.({ id: m.stats, ampSent, ampRecv, worstAmp, sent, peers, rss: process.memoryUsage.rss() });
});
process.once('SIGTERM', stop);
process.once('disconnect', stop);
process.stdout.write('ready\n');
