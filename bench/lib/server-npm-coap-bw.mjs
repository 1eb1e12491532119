// An npm `coap` server with the resources of server-turbocoap-bw.mjs, for bench/blockwise.mjs
// and bench/observe.mjs:
//   GET /large  the 1 MiB body of bw-body.mjs (npm coap answers block-wise on its own: its
//               OutMessage.end() cuts a payload of 1024 bytes or more, or any response to a
//               request with Block2, into Block2 blocks)
//   GET /obs    the notification counter; a GET with Observe 0 gets an ObserveWriteStream,
//               kept until it finishes (the client stopped ACKing)
// With "notify N", notifications start once N observers registered (or 1 s after the last
// registration, if fewer come); then every kept stream is written once per event-loop turn
// (setImmediate), but
// only while the UDP socket's send queue holds less than one fan-out: npm coap hands each
// datagram to dgram.send() without backpressure, so an unpaced loop queues notifications
// faster than they leave (unbounded memory, registrations answered only after the backlog).
//   node bench/lib/server-npm-coap-bw.mjs PORT [notify [N]]
import { createRequire } from 'node:module';
import { makeBody } from './bw-body.mjs';
import { notifyLoop, port, registered, stopOnSignal } from './bw-server.mjs';

const require = createRequire(import.meta.url);
const coap = require('coap');

const BODY = makeBody();
let n = 0;
let notifyCalls = 0;
let writes = 0;
let skipped = 0;
const observers = new Set();

const server = coap.createServer({ type: 'udp4' }, (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/large') {
    res.end(BODY);
  } else if (path === '/obs') {
    if (req.headers.Observe === 0) {
      registered();
      observers.add(res);
      res.on('finish', () => observers.delete(res));
      res.on('error', () => observers.delete(res));
      res.write(String(n));
    } else {
      res.end(String(n));
    }
  } else {
    res.code = '4.04';
    res.end();
  }
});
server.listen(port, '127.0.0.1', (err) => {
  if (err) {
    process.stderr.write(`listen failed: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write('ready npm-coap\n');
});

notifyLoop(() => {
  const sock = server._sock;
  if (observers.size > 0 && sock?.getSendQueueCount?.() >= observers.size) {
    skipped++;
    return;
  }
  notifyCalls++;
  const payload = String(++n);
  for (const res of observers) {
    res.write(payload);
    writes++;
  }
});

stopOnSignal(
  () => ({ notifyCalls, skipped, writes, observers: observers.size }),
  () => new Promise((done) => server.close(done)),
);
